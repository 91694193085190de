"""Session 17 (QA s17): reads that make no state directory (agent F8), an explicitly empty
``state_dir`` (tester F7), handles a Sandbox keeps closed quietly when it is collected
(agent F4) and exec when the sandbox stops under the command (tester F5)."""

from __future__ import annotations

import logging
import os
import stat
import sys
from pathlib import Path

import pytest

import hcs_sandbox
from hcs_sandbox import Sandbox, SandboxSpec, errors
from hcs_sandbox.sandbox import paths

# -- reads make no state directory (agent F8) -----------------------------------------------


def _reads(where: str | Path | None) -> None:
    assert Sandbox.list(state_dir=where) == []
    assert Sandbox.list(all=False, state_dir=where) == []
    with pytest.raises(errors.SandboxNotFoundError) as info:
        Sandbox.get("web", state_dir=where)
    assert "does not exist" in info.value.message
    assert paths.state_dir_text(where) in info.value.message
    report = hcs_sandbox.reconcile(state_dir=where)
    assert report == type(report)()
    pruned = hcs_sandbox.prune(state_dir=where)
    assert pruned == type(pruned)()
    dry = hcs_sandbox.prune(state_dir=where, dry_run=True)
    assert dry == type(dry)(dry_run=True)


def test_reads_of_a_missing_state_dir_make_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "state"
    _reads(missing)
    _reads(str(missing))
    assert not (tmp_path / "typo").exists()


def test_reads_of_a_missing_relative_state_dir_make_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    _reads("relative")
    monkeypatch.setenv(paths.ENV_STATE_DIR, "relstate")
    _reads(None)
    assert os.listdir(work) == []


def test_reads_see_what_a_create_made(state_dir: Path) -> None:
    assert not state_dir.exists()
    assert Sandbox.list() == []
    assert not state_dir.exists()
    sb = Sandbox.create(SandboxSpec(name="made"))
    try:
        assert state_dir.is_dir()  # the create made it
        if sys.platform != "win32":
            assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
        assert [s.name for s in Sandbox.list()] == ["made"]
        assert Sandbox.get("made").id == sb.id
        assert hcs_sandbox.reconcile().records == 1
    finally:
        sb.remove(force=True)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_a_read_still_checks_an_existing_state_dir(tmp_path: Path) -> None:
    """An existing state directory open to others is tightened by a read, as before."""
    state = tmp_path / "open"
    state.mkdir()
    os.chmod(state, 0o755)
    assert Sandbox.list(state_dir=state) == []
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX files")
def test_a_read_refuses_a_state_dir_that_is_a_file(tmp_path: Path) -> None:
    state = tmp_path / "file"
    state.write_text("x")
    with pytest.raises(errors.StoreError, match="not a directory"):
        Sandbox.list(state_dir=state)
    with pytest.raises(errors.StoreError, match="not a directory"):
        hcs_sandbox.prune(state_dir=state)


# -- an explicitly empty state_dir (tester F7) -------------------------------------------


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_state_dir_argument_is_a_spec_error(state_dir: Path, value: str) -> None:
    for call in (
        lambda: Sandbox.list(state_dir=value),
        lambda: Sandbox.get("x", state_dir=value),
        lambda: Sandbox.create(SandboxSpec(), state_dir=value),
        lambda: hcs_sandbox.prune(state_dir=value),
    ):
        with pytest.raises(errors.SpecError) as info:
            call()
        assert info.value.field == "state_dir"
        assert "empty" in info.value.message
    assert not state_dir.exists()
