"""Paths longer than Windows' MAX_PATH on the host (review RV40 findings 1, 2, 4, 5).

Windows is emulated as RV40's ``maxpath.py`` does: the project's own file calls on a path
(made absolute) longer than 259 characters (247 for a new folder: CreateDirectory allows
MAX_PATH - 12 with the NUL) raise ``FileNotFoundError`` (what CPython raises there: PC/errmap.h
maps ERROR_PATH_NOT_FOUND and ERROR_FILENAME_EXCED_RANGE to ENOENT); calls made from the
simulator (HCS, VSMB and the guest's stand-in) are not limited; ``shutil.rmtree`` walks by
path as on Windows; and ``hostpath`` is told it runs on Windows without long paths.
"""

from __future__ import annotations

import builtins
import errno
import logging
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_support import Result

from hcs_sandbox.sandbox import doctor, files, hostpath, paths

Cli = Callable[..., Result]
LIMIT = 259
DIR_LIMIT = 247
#: 247 - len("\\sandboxes\\<36>\\logs\\guest") (paths.MAX_STATE_DIR_LENGTH: room for a
#: sandbox's own files; a cp batch folder goes deeper and cp checks its own paths)
STATE_MAX = 189


def _from_sim() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if f"{os.sep}hcs_sandbox{os.sep}sim{os.sep}" in frame.f_code.co_filename:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _emulate(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Emulate MAX_PATH (see the module docstring); returns the list of refusals made."""
    refused: list[tuple[str, int]] = []

    def wrap(module: Any, name: str, limit: int = LIMIT) -> None:
        real = getattr(module, name)

        def limited(*args: Any, **kwargs: Any) -> Any:
            path = args[0] if args else kwargs.get("path", kwargs.get("file"))
            if path is not None and not isinstance(path, int):
                text = os.path.abspath(os.fsdecode(os.fspath(path)))
                if len(text) > limit and not _from_sim():
                    refused.append((name, len(text)))
                    raise FileNotFoundError(
                        errno.ENOENT, "The system cannot find the path specified", text
                    )
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, limited)

    for name in ("open", "stat", "lstat", "scandir", "listdir", "unlink", "remove", "rmdir"):
        wrap(os, name)
    for name in ("chmod", "utime", "rename", "replace"):
        wrap(os, name)
    wrap(os, "mkdir", DIR_LIMIT)
    wrap(builtins, "open")
    monkeypatch.setattr(shutil, "_use_fd_functions", False)
    monkeypatch.setattr(hostpath, "_on_windows", lambda: True, raising=False)
    return refused


@pytest.fixture
def max_path(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    return _emulate(monkeypatch)


def _deep_tree(root: Path, staged_prefix: int, *, at_least: int = 270) -> Path:
    """A folder ``root/proj`` whose deepest file is ``at_least`` characters long once staged
    under a folder of ``staged_prefix`` characters; returns ``root/proj``."""
    top = root / "proj"
    folder = top
    while staged_prefix + 1 + len(os.path.relpath(folder, root)) + 6 < at_least:
        folder = folder / ("d" * 30)
    folder.mkdir(parents=True)
    (folder / "f.txt").write_text("x")
    return top


def _staging_prefix(cli: Cli, name: str) -> int:
    """The length of a cp batch folder of sandbox ``name`` (<sandbox>/transfer/<32 hex>)."""
    result = cli("inspect", name, "--json")
    assert result.code == 0, result.err
    directory = result.json()[0]["directory"]
    return len(os.path.join(directory, "transfer", "0" * 32))


def _transfer_batches(cli: Cli, name: str) -> list[str]:
    result = cli("inspect", name, "--json")
    folder = Path(result.json()[0]["directory"]) / "transfer"
    return sorted(os.listdir(folder)) if folder.is_dir() else []


# -- finding 1: cp of a deep folder into a sandbox ------------------------------------------


def test_cp_in_of_a_too_deep_tree_is_refused_before_copying(
    cli: Cli, web: str, tmp_path: Path, max_path: list[tuple[str, int]], monkeypatch: Any
) -> None:
    source = _deep_tree(tmp_path / "src", _staging_prefix(cli, web))
    assert len(str(max(source.rglob("*"), key=lambda p: len(str(p))))) < LIMIT
    copied: list[object] = []
    real_copy = files._copy_file

    def counting(src: Any, dst: Any) -> int:
        copied.append(dst)
        return real_copy(src, dst)

    monkeypatch.setattr(files, "_copy_file", counting)
    result = cli("cp", str(source), f"{web}:C:\\work")
    assert result.code == 2, result.err
    assert "internal error" not in result.err
    assert "longer than Windows allows without long paths (260 characters" in result.err
    assert "LongPathsEnabled" in result.err
    assert "shallower folder, or an archive" in result.err
    assert "proj\\" + "d" * 30 in result.err  # the part of the user's tree that is too deep
    assert copied == []  # refused before anything was copied
    assert max_path == []  # no file call failed: the refusal came first
    assert _transfer_batches(cli, web) == []


def test_cp_in_error_while_staging_names_the_limit(
    cli: Cli, web: str, tmp_path: Path, max_path: list[tuple[str, int]], monkeypatch: Any
) -> None:
    """When the copy itself fails on a too-long path (the walk could not know), the error
    is the same clear one, not an internal error."""
    source = _deep_tree(tmp_path / "src", _staging_prefix(cli, web))
    monkeypatch.setattr(files, "_refuse_too_deep", lambda *a: None, raising=False)
    result = cli("cp", str(source), f"{web}:C:\\work")
    assert result.code == 2, result.err
    assert "internal error" not in result.err
    assert "longer than Windows allows without long paths" in result.err
    assert max_path  # the emulated Windows refused a call
    assert _transfer_batches(cli, web) == []


def test_cp_in_of_a_deep_tree_is_unchanged_off_windows(cli: Cli, web: str, tmp_path: Path) -> None:
    source = _deep_tree(tmp_path / "src", _staging_prefix(cli, web))
    result = cli("cp", str(source), f"{web}:C:\\work")
    assert result.code == 0, result.err


# -- finding 2: cp out of a sandbox ----------------------------------------------------------


def test_cp_out_of_a_too_deep_tree_names_the_limit_and_logs_what_stays(
    cli: Cli,
    web: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = _deep_tree(tmp_path / "src", _staging_prefix(cli, web) - len("proj") + len("work"))
    assert cli("cp", str(source), f"{web}:C:\\work").code == 0  # not emulated: it fits
    out = tmp_path / "out"
    out.mkdir()
    _emulate(monkeypatch)
    caplog.set_level(logging.WARNING, logger="hcs_sandbox.sandbox")
    result = cli("cp", f"{web}:C:\\work", str(out))
    assert "internal error" not in result.err
    assert result.code == 1, result.err
    assert "cannot copy out of the sandbox: the copy of work\\" in result.err
    assert "longer than Windows allows without long paths" in result.err
    assert "shallower guest folder, or an archive" in result.err
    assert list(out.iterdir()) == []
    # The batch folder could not be deleted: said, with where it is and what deletes it.
    left = _transfer_batches(cli, web)
    assert len(left) == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "could not delete 1 item(s)" in warnings[0]
    assert "could not delete" in warnings[0]
    assert left[0] in warnings[0]
    assert "removing the sandbox deletes them" in warnings[0]


def test_cp_batch_folder_that_cannot_be_deleted_is_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Off Windows too: a batch folder rmtree cannot delete is logged, not ignored."""
    batch = tmp_path / "sandbox" / "transfer" / "b"
    batch.mkdir(parents=True)
    (batch / "f").write_text("x")

    def refuse(path: Any, *args: Any, **kwargs: Any) -> None:
        raise PermissionError(errno.EACCES, "Access is denied", os.fspath(path))

    monkeypatch.setattr(os, "unlink", refuse)
    caplog.set_level(logging.WARNING, logger="hcs_sandbox.sandbox")
    files._remove_batch(batch, tmp_path / "sandbox")
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "could not delete" in record.getMessage()
    assert "Access is denied" in record.getMessage()
    assert str(tmp_path / "sandbox") in record.getMessage()


# -- finding 4: an existing but too-long path is not "missing" --------------------------------


@pytest.fixture
def long_dir(tmp_path: Path) -> Path:
    """An existing folder whose path is 270 characters (made before the emulation)."""
    folder = tmp_path / "h"
    while len(str(folder)) < 270:
        folder = folder / ("h" * max(1, min(40, 270 - len(str(folder)) - 1)))  # never ""
    folder.mkdir(parents=True)
    (folder / "f.txt").write_text("x")
    assert len(str(folder)) >= 260
    return folder


def test_cp_in_of_a_too_long_host_path_is_not_missing(
    cli: Cli, web: str, long_dir: Path, max_path: list[tuple[str, int]]
) -> None:
    result = cli("cp", str(long_dir / "f.txt"), f"{web}:C:\\in.txt")
    assert result.code == 2, result.err
    assert "does not exist" not in result.err
    assert "characters long, longer than Windows allows without long paths" in result.err


def test_cp_out_into_a_too_long_host_folder_is_not_missing(
    cli: Cli, web: str, tmp_path: Path, long_dir: Path, max_path: list[tuple[str, int]]
) -> None:
    (tmp_path / "p.txt").write_text("x")
    assert cli("cp", str(tmp_path / "p.txt"), f"{web}:C:\\p.txt").code == 0
    result = cli("cp", f"{web}:C:\\p.txt", str(long_dir))
    assert result.code == 2, result.err
    assert "cannot find the path" not in result.err
    assert f"cannot copy to {long_dir}: it is {len(str(long_dir))} characters long" in result.err
    assert "LongPathsEnabled" in result.err


def test_map_of_a_too_long_folder_is_not_missing(
    cli: Cli, long_dir: Path, max_path: list[tuple[str, int]]
) -> None:
    result = cli("run", "-d", "--name", "w3", "--map", f"{long_dir}:C:\\m")
    assert result.code == 2, result.err
    assert "does not exist" not in result.err
    assert "longer than Windows allows without long paths" in result.err
    assert "LongPathsEnabled" in result.err


def test_doctor_report_path_within_max_path_is_accepted(
    tmp_path: Path, max_path: list[tuple[str, int]]
) -> None:
    """A report path of 250 characters fits; its probe and temporary file must too."""
    folder = tmp_path / ("r" * (250 - len(str(tmp_path)) - 1 - len("/report.json")))
    folder.mkdir()
    target = folder / "report.json"
    assert len(str(target)) == 250
    doctor.check_report_path(target)  # the probe fits
    assert max_path == []
    assert os.listdir(folder) == []


def test_doctor_report_path_too_long_says_so(
    tmp_path: Path, long_dir: Path, max_path: list[tuple[str, int]]
) -> None:
    with pytest.raises(doctor.errors.SpecError) as caught:
        doctor.check_report_path(long_dir / "report.json")
    assert "longer than Windows allows without long paths" in str(caught.value)
    assert "LongPathsEnabled" in (caught.value.remedy or "")


def test_too_long_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    long = "/" + "a" * 259
    assert not hostpath.too_long(long)  # off Windows: never
    monkeypatch.setattr(hostpath, "_on_windows", lambda: True, raising=False)
    assert hostpath.too_long(long)
    assert not hostpath.too_long(long[:-1])  # 259 characters fit
    assert not hostpath.too_long("\\\\?\\C:\\" + "a" * 300)  # extended-length
    monkeypatch.setattr(hostpath, "long_paths_enabled", lambda: True)
    assert not hostpath.too_long(long)


# -- finding 5: a long --state-dir ------------------------------------------------------------


def test_state_dir_budget_is_computed_from_the_paths_made_under_it() -> None:
    # <state>\sandboxes\<36>\logs\guest: 58 characters, and a folder may have 247;
    # ...\logon.done: 69, and a file may have 259.
    assert paths.MAX_STATE_DIR_LENGTH == min(247 - 58, 259 - 69) == STATE_MAX


def test_too_long_state_dir_is_refused(
    cli: Cli, tmp_path: Path, max_path: list[tuple[str, int]]
) -> None:
    state = tmp_path / ("s" * (STATE_MAX + 1 - len(str(tmp_path)) - 1))
    assert len(str(state)) == STATE_MAX + 1
    result = cli("--state-dir", str(state), "run", "-d", "--name", "deep")
    assert result.code == 2, result.err
    assert f"is {STATE_MAX + 1} characters long" in result.err
    assert f"at most {STATE_MAX} characters" in result.err
    assert "shorter --state-dir" in result.err
    assert not state.exists()
    fits = tmp_path / ("t" * (STATE_MAX - len(str(tmp_path)) - 1))
    result = cli("--state-dir", str(fits), "run", "-d", "--name", "fits")
    assert result.code == 0, result.err


def test_cp_out_to_a_destination_too_deep_names_the_limit(
    cli: Cli, web: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The staged copy fits but its place on the host does not: said, not 'cannot find'."""
    source = tmp_path / "src" / "work" / ("d" * 30) / ("e" * 30)
    source.mkdir(parents=True)
    (source / "f.txt").write_text("x")
    assert cli("cp", str(tmp_path / "src" / "work"), f"{web}:C:\\work").code == 0
    out = tmp_path / "o"
    while len(str(out)) < 200:
        out = out / ("o" * min(40, 200 - len(str(out)) - 1))
    out.mkdir(parents=True)
    assert _staging_prefix(cli, web) + len("/work/" + "d" * 30 + "/" + "e" * 30 + "/f.txt") < LIMIT
    _emulate(monkeypatch)
    result = cli("cp", f"{web}:C:\\work", str(out))
    assert result.code == 1, result.err
    assert "cannot find the path" not in result.err
    assert "characters long, longer than Windows allows without long paths" in result.err
    assert "LongPathsEnabled" in result.err


def test_an_existing_longer_state_dir_keeps_working(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review RV42 #1: the limit held for every verb, so a user whose state directory was
    already longer could no longer list, stop or remove its sandboxes.  Now only a new
    sandbox (or a new state directory) is refused."""
    state = tmp_path / ("s" * (STATE_MAX + 6 - len(str(tmp_path)) - 1))
    assert len(str(state)) == STATE_MAX + 6
    assert cli("--state-dir", str(state), "run", "-d", "--name", "old1").code == 0  # before
    _emulate(monkeypatch)
    listed = cli("--state-dir", str(state), "ls", "-q")
    assert listed.code == 0, listed.err
    assert listed.out.split()
    assert cli("--state-dir", str(state), "stop", "old1").code == 0
    refused = cli("--state-dir", str(state), "run", "-d", "--name", "new1")
    assert refused.code == 2, refused.err
    assert f"at most {STATE_MAX} characters" in refused.err
    removed = cli("--state-dir", str(state), "rm", "-f", "old1")
    assert removed.code == 0, removed.err
    assert cli("--state-dir", str(state), "ls", "-aq").out.split() == []


def test_doctor_reports_a_too_long_new_state_dir_as_a_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review RV42 #2: the refusal escaped doctor (exit 2, no checks; --json printed null):
    it is the state_dir check's FAIL now."""
    state = tmp_path / ("s" * (STATE_MAX + 1 - len(str(tmp_path)) - 1))
    monkeypatch.setattr(hostpath, "_on_windows", lambda: True, raising=False)
    check = doctor._check_state_dir(str(state))
    assert check.status == doctor.FAIL, check
    assert f"at most {STATE_MAX} characters" in check.detail
    assert "shorter --state-dir" in (check.fix or "")


def test_a_too_long_path_inside_a_copied_tree_says_so(
    cli: Cli, web: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review RV42 #4: a folder inside the source whose own path is too long to read was
    'not a regular file or folder'; it is too long, and the remedy says what to do."""
    top = tmp_path / "src" / ("p" * 120)
    deep = top / ("a" * 60) / ("b" * 60)
    deep.mkdir(parents=True)
    (deep / "index.js").write_text("x")
    assert len(str(deep)) > LIMIT
    _emulate(monkeypatch)  # after making the tree: Windows could not have made it either
    result = cli("cp", str(top), f"{web}:C:\\work")
    assert result.code == 2, result.err
    assert "not a regular file or folder" not in result.err
    assert "longer than Windows allows without long paths" in result.err
    assert "LongPathsEnabled" in result.err


def test_cp_with_a_state_dir_too_long_for_its_batch_folder_says_so(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review RV43 #1: a state directory of 159-189 characters holds sandboxes, but a cp
    batch folder (89 characters deeper) does not fit: every cp ended in "internal error"."""
    state = tmp_path / ("c" * (STATE_MAX - 19 - len(str(tmp_path)) - 1))
    assert len(str(state)) == STATE_MAX - 19  # 170: more than 247 - 89
    _emulate(monkeypatch)
    assert cli("--state-dir", str(state), "run", "-d", "--name", "c170").code == 0
    small = tmp_path / "small.txt"
    small.write_text("x")
    result = cli("--state-dir", str(state), "cp", str(small), "c170:C:\\small.txt")
    assert result.code == 2, result.err
    assert "internal error" not in result.err
    assert "the transfer folder" in result.err
    assert "248 characters for a new folder" in result.err
    assert "shorter --state-dir" in result.err


def test_doctor_fails_the_state_dir_check_for_an_existing_one_too_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review RV43 #2: an existing state directory under which every new sandbox is refused
    was 'ready' (and doctor 'all good')."""
    state = tmp_path / ("s" * (STATE_MAX + 1 - len(str(tmp_path)) - 1))
    state.mkdir(mode=0o700)
    monkeypatch.setattr(hostpath, "_on_windows", lambda: True, raising=False)
    check = doctor._check_state_dir(str(state))
    assert check.status == doctor.FAIL, check
    assert "new sandboxes cannot be created here" in check.detail
