"""Real paths that have no drive letter are judged by Windows rules (RV30 F3).

``os.path.realpath`` runs only on Windows for these paths, so it is replaced by a table of
what CPython's ``ntpath.realpath`` returns there: a mapped network drive resolves to its UNC
path (python/cpython#82174, closed as by design), ``\\\\?\\UNC\\`` becomes ``\\\\``, and a
path given with the ``\\\\?\\`` prefix keeps it (Lib/ntpath.py ``realpath``, ``had_prefix``).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox import files, hostpath
from hcs_sandbox.sandbox.spec import MappedFolder, SandboxSpec


@pytest.fixture
def real(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """``{written: real}``: what ``os.path.realpath`` answers for a Windows path."""
    table: dict[str, str] = {}
    realpath = os.path.realpath

    def fake(path: Any, *args: Any, **kwargs: Any) -> Any:
        return table.get(os.fspath(path)) or realpath(path, *args, **kwargs)

    monkeypatch.setattr(os.path, "realpath", fake)
    # The folder exists on the Windows host this stands for.
    monkeypatch.setattr(hostpath, "directory_problem", lambda path: None)
    return table


@pytest.mark.parametrize(
    ("written", "resolved"),
    [
        ("Z:\\proj", "\\\\fileserver\\share\\proj"),  # a mapped network drive
        ("C:\\Users\\me\\netlink", "\\\\fileserver\\share\\x"),  # a folder link to a share
        ("C:\\Users\\me\\unc", "\\\\?\\UNC\\fileserver\\share\\x"),
        ("Z:\\HCS-STATE", "\\\\fileserver\\share\\HCS-STATE"),
    ],
)
def test_a_folder_whose_real_path_is_a_network_share_is_refused(
    real: dict[str, str], written: str, resolved: str
) -> None:
    real[written] = resolved
    found = files.host_folder_problem(written, protected=("D:\\hcs-state",))
    assert found is not None
    why, remedy = found
    assert why.startswith(f"its real path {hostpath.without_device_prefix(resolved)} is on")
    assert "network share" in why
    assert "mapped network drive" in why
    assert remedy == "copy the files to a local folder and map that"


def test_the_refusal_names_the_folder_and_the_remedy(real: dict[str, str]) -> None:
    real["Z:\\proj"] = "\\\\fileserver\\share\\proj"
    spec = SandboxSpec(mapped_folders=(MappedFolder("Z:\\proj", "C:\\p"),))
    with pytest.raises(errors.SpecError) as caught:
        spec.check_host_paths(state_dir="/srv/state")
    assert caught.value.message == (
        "host folder Z:\\proj of mapped_folders[0] cannot be mapped: its real path "
        "\\\\fileserver\\share\\proj is on a network share (a mapped network drive or a link "
        "to a share leads there), and network shares are not mapped"
    )
    assert caught.value.remedy == "copy the files to a local folder and map that"


def test_a_real_path_on_a_volume_without_a_drive_letter_is_refused(
    real: dict[str, str],
) -> None:
    real["C:\\mnt\\vol"] = "\\\\?\\Volume{0b6f2c3e-0000-0000-0000-100000000000}\\data"
    found = files.host_folder_problem("C:\\mnt\\vol")
    assert found is not None
    assert "is a device path, not a folder on a drive letter" in found[0]


def test_a_real_path_is_checked_by_the_host_path_rules(real: dict[str, str]) -> None:
    real["C:\\work\\link"] = "C:\\work\\CON"
    found = files.host_folder_problem("C:\\work\\link")
    assert found is not None
    assert found[0] == (
        "its real path C:\\work\\CON: component 'CON' is a reserved Windows device name"
    )


@pytest.mark.parametrize("written", ["D:\\hcs-state", "d:\\HCS-STATE\\sandboxes"])
def test_a_state_dir_given_with_the_device_prefix_is_still_protected(
    real: dict[str, str], written: str
) -> None:
    # HCS_SANDBOX_STATE_DIR=\\?\D:\hcs-state: abspath and realpath keep the prefix.
    real[written] = written
    protected = ("\\\\?\\D:\\hcs-state",)
    found = files.host_folder_problem(written, protected=protected)
    assert found is not None
    assert "the hcs-sandbox state directory \\\\?\\D:\\hcs-state" in found[0]


def test_the_checked_real_path_loses_the_device_prefix(real: dict[str, str]) -> None:
    real["D:\\work"] = "\\\\?\\D:\\Work"
    assert files.check_host_folder("D:\\work") == "D:\\Work"


def test_device_prefixed_system_folders_are_system_folders() -> None:
    assert files.system_dir_problem("\\\\?\\C:\\Windows\\System32") is not None
    assert files.system_dir_problem("\\\\.\\d:\\program files") is not None


def test_unc_paths_compare_by_windows_rules() -> None:
    # cp's link check and map's overlap check on a share: case-blind, backslash-separated.
    assert files._inside_or_same("\\\\srv\\share\\proj\\sub", "\\\\srv\\share\\proj")
    assert files._inside_or_same("\\\\SRV\\Share\\PROJ", "\\\\srv\\share\\proj")
    assert files._inside_or_same("\\\\?\\UNC\\srv\\share\\proj\\x", "\\\\srv\\share\\proj")
    assert not files._inside_or_same("\\\\srv\\share\\project", "\\\\srv\\share\\proj")


def test_a_windows_host_folds_every_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "_windows_host", lambda: False)
    assert not files._inside_or_same("/a/B/c", "/a/b")  # POSIX rules on a POSIX host
    monkeypatch.setattr(files, "_windows_host", lambda: True)
    assert files._inside_or_same("\\a\\B\\c", "\\A\\b")


@pytest.mark.parametrize(
    ("path", "plain"),
    [
        ("\\\\?\\D:\\hcs-state", "D:\\hcs-state"),
        ("\\\\.\\c:/x", "c:/x"),
        ("\\\\?\\UNC\\srv\\share\\x", "\\\\srv\\share\\x"),
        ("\\\\?\\Volume{1}\\x", "\\\\?\\Volume{1}\\x"),  # no drive letter: kept
        ("\\\\?\\C:", "\\\\?\\C:"),  # the volume itself, not a folder: kept
        ("C:\\x", "C:\\x"),
        ("/srv/x", "/srv/x"),
    ],
)
def test_without_device_prefix(path: str, plain: str) -> None:
    assert hostpath.without_device_prefix(path) == plain
