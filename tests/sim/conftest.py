"""Fixtures for the simulator tests (helpers live in simapi.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from simapi import Api

from hcs_sandbox.sim import get_simulator
from hcs_sandbox.sim.core import Simulator


@pytest.fixture
def api() -> Api:
    return Api()


@pytest.fixture
def sim() -> Iterator[Simulator]:
    return get_simulator()


@pytest.fixture
def share_dir(tmp_path: Path) -> Path:
    path = tmp_path / "share"
    path.mkdir()
    (path / "hello.txt").write_text("hello from host\n")
    return path
