"""A tiny test-only backend made of CFUNCTYPE thunks, for the native layer's marshalling tests.

It is independent of the simulator: each test declares the few exports it needs, with the
C types the *simulator side* would use, and the binding is called through
``hcs_sandbox.native.api`` exactly as the hcs layer does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from native_fakes import FakeBackend

from hcs_sandbox.native import loader


@pytest.fixture
def fake_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBackend]:
    """Install a :class:`FakeBackend` as the process backend for one test."""
    backend = FakeBackend()
    monkeypatch.setattr(loader, "_backend", backend)
    monkeypatch.setattr(loader, "_forced_simulator", None)
    yield backend
    assert not backend.bad_frees, f"double or foreign frees: {backend.bad_frees}"
