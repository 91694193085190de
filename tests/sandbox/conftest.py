"""Fixtures for the sandbox-layer tests: each test gets its own state directory (through
``HCS_SANDBOX_STATE_DIR``) and the simulator (the root conftest points it at a fresh
directory and checks leaks after the test)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hcs_sandbox.native import loader


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh hcs-sandbox state directory for this test."""
    state = tmp_path / "hcs-state"
    monkeypatch.setenv("HCS_SANDBOX_STATE_DIR", str(state))
    forced = False
    if not loader.simulator_requested():  # the root conftest normally did this already
        loader.use_simulator(str(tmp_path / "sim"))
        forced = True
    yield state
    if forced:
        loader.reset_backend()


@pytest.fixture
def sim() -> object:
    """The process's simulator (fault injection, latency, leaks)."""
    from hcs_sandbox.sim import get_simulator

    return get_simulator()


def owned_systems() -> list[dict[str, object]]:
    """Compute systems HCS reports with Owner hcs-sandbox."""
    from hcs_sandbox.hcs.system import enumerate_compute_systems

    return enumerate_compute_systems({"Owners": ["hcs-sandbox"]})


def files_under(state: Path) -> list[str]:
    """Every file and folder under the state dir's sandboxes/ folder."""
    root = state / "sandboxes"
    if not root.exists():
        return []
    return sorted(os.path.relpath(p, root) for p in root.rglob("*"))


def endpoints() -> list[str]:
    from hcs_sandbox.hcs import network

    return network.enumerate_endpoints(None)


def records(state: Path) -> list[str]:
    from hcs_sandbox.sandbox.store import open_store

    with open_store(state) as store:
        return [f"{r.name}:{r.state}" for r in store.list(all=True, kind=None)]


def assert_nothing_left(state: Path) -> None:
    """Zero systems, files, endpoints and records."""
    assert owned_systems() == []
    assert files_under(state) == []
    assert endpoints() == []
    assert records(state) == []


NAT_ID = "6f1b5c3e-0000-4000-8000-68637373616e"


class Inspector:
    """What exists right now: systems, files, endpoints, records (a fixture)."""

    def __init__(self, state: Path) -> None:
        self.state = state

    def systems(self) -> list[dict[str, object]]:
        return owned_systems()

    def files(self) -> list[str]:
        return files_under(self.state)

    def endpoints(self) -> list[str]:
        return endpoints()

    def records(self) -> list[str]:
        return records(self.state)

    def assert_nothing_left(self) -> None:
        assert_nothing_left(self.state)

    def marked_id(self, state: Path | None = None) -> str:
        """A new id in the form hcs-sandbox gives a sandbox made by the store in the state
        directory ``state`` (default: this test's; opened first, so that it has its
        mark), built here from the documented rule, not by the library: a random
        version-4 GUID whose 4th group is the tag ``9c5b`` and whose last 6 bytes are the
        store's mark, read from its database (meta ``state_mark``).  For a compute system
        or an endpoint name (``hcs-sandbox-<id>``) of this store's (its prune takes one
        for its orphan when a folder in its sandboxes/ is named by it too)."""
        head = str(uuid.uuid4())[:18]  # 8-4-4: the random part and the version
        return f"{head}-9c5b-{store_mark(self.state if state is None else state)}"

    def mark(self, state: Path | None = None) -> str:
        """The mark of the store in ``state`` (default: this test's): :func:`store_mark`."""
        return store_mark(self.state if state is None else state)


def store_mark(state: Path) -> str:
    """The mark kept in the state database of ``state`` (made by opening the store),
    read with sqlite3 directly."""
    import sqlite3

    from hcs_sandbox.sandbox.store import open_store

    open_store(state).close()
    conn = sqlite3.connect(state / "state.db")
    try:
        (mark,) = conn.execute("SELECT value FROM meta WHERE key = 'state_mark'").fetchone()
    finally:
        conn.close()
    assert isinstance(mark, str)
    return mark


@pytest.fixture
def world(state_dir: Path) -> Inspector:
    return Inspector(state_dir)
