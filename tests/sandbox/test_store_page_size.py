"""The page size of the state database: 1 KiB for a new database, an existing one keeps its
own (sqlite cannot change it in WAL mode), and records larger than a page (overflow pages)
are stored and read back whole."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hcs_sandbox.sandbox import store as store_module
from hcs_sandbox.sandbox.store import close_cached_connections, open_store


def _page_size(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()


def _lifecycle(state: Path, spec: dict[str, object]) -> None:
    """reserve, three updates with log lines, a read, the removing mark, delete."""
    with open_store(state) as store:
        record = store.reserve("page-test", spec=spec, files=[str(state / "a" / "b.vhdx")])
        record = store.update(record.id, known=record, state="created", log_line="created")
        record = store.update(
            record.id, known=record, state="running", started_at=1.0, log_line="started"
        )
        record = store.update(
            record.id, known=record, state="stopped", merge_extra={"exit": {"Status": 0}}
        )
        again = store.get(record.id)
        assert again == record
        assert again.spec == spec
        assert [line for _, line in store.log_lines(record.id)] == ["created", "started"]
        record = store.update(record.id, known=record, state="removing")
        store.delete(record.id)
        assert store.list() == []
        assert store.integrity_check() == "ok"


def test_a_new_database_has_1_kib_pages(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    _lifecycle(state, {"name": "page-test"})
    close_cached_connections()
    assert _page_size(state / "state.db") == 1024


def test_an_existing_database_keeps_its_page_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database made before (sqlite's default 4096) is used as it is, from this process
    and after a reopen."""
    state = tmp_path / "state"
    state.mkdir()
    with monkeypatch.context() as patch:
        patch.setattr(store_module, "_NEW_DATABASE_PAGE_SIZE", 4096)
        _lifecycle(state, {"name": "old"})
    close_cached_connections()
    assert _page_size(state / "state.db") == 4096
    _lifecycle(state, {"name": "page-test"})
    close_cached_connections()
    assert _page_size(state / "state.db") == 4096


@pytest.mark.parametrize("page_size", [1024, 4096])
def test_records_larger_than_a_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page_size: int
) -> None:
    """A record of ~9 KB (many mapped folders, a long logon command) spans overflow pages:
    written, updated, read back and deleted whole."""
    monkeypatch.setattr(store_module, "_NEW_DATABASE_PAGE_SIZE", page_size)
    state = tmp_path / "state"
    state.mkdir()
    spec: dict[str, object] = {
        "name": "page-test",
        "mapped_folders": [
            {
                "host_path": f"C:\\\\Users\\\\someone\\\\src\\\\project{i}",
                "guest_path": f"C:\\\\p{i}",
            }
            for i in range(80)
        ],
        "logon_command": "cmd /c " + "x" * 3000,
    }
    _lifecycle(state, spec)
    close_cached_connections()
    assert _page_size(state / "state.db") == page_size
