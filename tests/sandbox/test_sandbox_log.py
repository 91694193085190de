"""The lifecycle log: rows of the store (``sandbox_log``), one line per step, read by ``logs()``;
the log file of older versions (``sandbox.log``, ``logs/sandbox.log``) is still read."""

from __future__ import annotations

import calendar
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from hcs_sandbox.errors import StateConflictError
from hcs_sandbox.sandbox.sandbox import LOG_NAME, Sandbox, _log_text
from hcs_sandbox.sandbox.spec import SandboxSpec
from hcs_sandbox.sandbox.store import open_store


def _rows(sb: Sandbox) -> int:
    conn = sqlite3.connect(sb._db().path)
    try:
        return int(conn.execute("SELECT count(*) FROM sandbox_log").fetchone()[0])
    finally:
        conn.close()


def test_lines_are_in_the_store_and_no_file_is_made(sim: Any) -> None:
    sb = Sandbox.create(SandboxSpec(name="logged"))
    try:
        sb.start()
        sb.pause()
        sb.resume()
        sb.stop(timeout=5)
        directory = Path(sb.directory)
        lines = sb.logs().splitlines()
        assert [line.split(" ", 1)[1] for line in lines] == [
            "created",
            "started",
            "paused",
            "resumed",
            "stopped",
        ]
        assert all(line.split(" ", 1)[0].endswith("Z") for line in lines)
        assert not (directory / LOG_NAME).exists()  # no file made for the log
        assert not (directory / "logs").exists()
        # Another object (another process) reads the same.
        assert Sandbox.get("logged").logs().splitlines() == lines
    finally:
        sb.remove(force=True)
        sb.close()


def test_state_lines_share_the_state_change_s_commit(sim: Any) -> None:
    sb = Sandbox.create(SandboxSpec(name="one-commit"))
    try:
        store = sb._db()
        record = store.get(sb.id)
        # A refused compare-and-set writes no line either (one transaction).
        with pytest.raises(StateConflictError):
            store.update(record.id, expect_state="running", state="stopped", log_line="nope")
        assert "nope" not in sb.logs()
        new = store.update(record.id, state="stopped", log_line="stopped by hand")
        assert store.log_lines(record.id)[-1] == (new.updated_at, "stopped by hand")
    finally:
        sb.remove(force=True)
        sb.close()


def test_lines_go_with_the_record_and_none_after_it(sim: Any) -> None:
    sb = Sandbox.create(SandboxSpec(name="gone"))
    directory = Path(sb.directory)
    try:
        sb._log_line("mapped something")  # files.py / ports.py / logon.py lines
        assert sb.logs().splitlines()[-1].endswith(" mapped something")
        assert _rows(sb) == 2
        sb.remove(force=True)
        assert not directory.exists()
        assert _rows(sb) == 0  # deleted with the record
        sb._log_line("late")  # e.g. a logon thread finishing after remove
        assert not directory.exists()
        assert _rows(sb) == 0  # no orphan row
        assert sb.logs() == ""
    finally:
        sb.close()


def test_an_older_version_s_log_file_is_merged_by_time(sim: Any) -> None:
    sb = Sandbox.create(SandboxSpec(name="upgraded"))
    try:
        directory = Path(sb.directory)
        (created,) = sb._db().log_lines(sb.id)
        early = _log_text(created[0] - 7200, "created by an old version")
        # A line with a line break inside stays whole in the merge.
        middle = _log_text(created[0] - 3600, "logon command not started: one\ntwo")
        late = _log_text(created[0] + 3600, "stopped by an old process")
        (directory / "logs").mkdir()
        (directory / "logs" / LOG_NAME).write_text(early, encoding="utf-8")
        (directory / LOG_NAME).write_text(middle + late.rstrip("\n"), encoding="utf-8")
        assert sb.logs() == early + middle + _log_text(*created) + late
    finally:
        sb.remove(force=True)
        sb.close()


def test_log_text_is_the_file_s_format() -> None:
    when = calendar.timegm((2026, 11, 26, 3, 25, 17, 0, 0, 0))
    assert _log_text(when + 0.75, "created") == "2026-11-26T03:25:17Z created\n"


def test_store_log_api(tmp_path: Path) -> None:
    with open_store(tmp_path) as s:
        rec = s.reserve("x", None, {})
        assert s.log_lines(rec.id) == []
        assert s.add_log_line(rec.id.upper(), "one") is True  # any spelling of the id
        s.update(rec.id, state="created", log_line="two")
        assert [line for _, line in s.log_lines(rec.id)] == ["one", "two"]
        other = s.reserve("y", None, {})
        s.add_log_line(other.id, "other's")
        s.delete(rec.id)
        assert s.log_lines(rec.id) == []
        assert s.add_log_line(rec.id, "late") is False
        assert [line for _, line in s.log_lines(other.id)] == ["other's"]
