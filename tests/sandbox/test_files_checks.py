"""Pure path checks for mapped folders and cp."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hcs_sandbox import errors
from hcs_sandbox.sandbox import files


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/etc",
        "/etc/ssh",
        "/usr/local",
        "/proc/1",
        "C:\\",
        "C:\\Windows",
        "c:\\windows\\System32",
        "C:\\Program Files\\App",
        "D:\\Program Files (x86)",
        "C:\\ProgramData",
    ],
)
def test_system_dirs_refused(path: str) -> None:
    assert files.system_dir_problem(path) is not None


@pytest.mark.parametrize("path", ["/home/me/src", "/tmp/x", "C:\\src", "D:\\work\\a"])
def test_ordinary_dirs_allowed(path: str) -> None:
    assert files.system_dir_problem(path) is None


def test_protected_extra_folder_and_its_parents() -> None:
    assert files.system_dir_problem("/srv/state/x", extra=("/srv/state",))
    assert files.system_dir_problem("/srv", extra=("/srv/state",))
    assert files.system_dir_problem("/srv/other", extra=("/srv/state",)) is None


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        "CON",
        "nul.txt",
        "com1",
        "a:b",
        "file.txt:stream",
        "a<b",
        "q?",
        "end.",
        "end ",
        "a\\b",
        "a/b",
        "tab\tx",
    ],
)
def test_bad_windows_names(name: str) -> None:
    assert files.windows_name_problem(name) is not None


@pytest.mark.parametrize("name", ["a.txt", "CONFIG", "nullish", ".hidden", "x y"])
def test_good_windows_names(name: str) -> None:
    assert files.windows_name_problem(name) is None


@given(st.text(max_size=12))
def test_name_check_never_crashes_and_refuses_separators(name: str) -> None:
    problem = files.windows_name_problem(name)
    if any(c in name for c in '\\/:<>"|?*') or name in ("", ".", ".."):
        assert problem is not None


@pytest.mark.parametrize(
    "path", ["relative\\x", "C:\\a\\..\\b", "C:\\a\\CON", "C:\\a:b", "\\\\server\\share", "C:x"]
)
def test_guest_paths_refused(path: str) -> None:
    with pytest.raises(errors.SpecError):
        files.check_guest_path(path)


def test_guest_path_normalised_and_root() -> None:
    assert files.check_guest_path("c:/data//x/") == "C:\\data\\x"
    with pytest.raises(errors.SpecError):
        files.check_guest_path("C:\\")
    assert files.check_guest_path("c:/", allow_root=True) == "C:\\"


def test_host_folder_checks(tmp_path: Path) -> None:
    assert files.check_host_folder(str(tmp_path)) == str(tmp_path.resolve())
    with pytest.raises(errors.SpecError, match="does not exist"):
        files.check_host_folder(str(tmp_path / "missing"))
    (tmp_path / "f").write_text("x")
    with pytest.raises(errors.SpecError, match="not a directory"):
        files.check_host_folder(str(tmp_path / "f"))
    with pytest.raises(errors.SpecError, match="UNC"):
        files.check_host_folder("//server/share")
    with pytest.raises(errors.SpecError, match="not absolute"):
        files.check_host_folder("relative/dir")
    with pytest.raises(errors.SpecError, match="cannot be mapped"):
        files.check_host_folder("/etc")
    link = tmp_path / "link"
    link.symlink_to("/usr")
    with pytest.raises(errors.SpecError, match="cannot be mapped"):
        files.check_host_folder(str(link))  # resolved before the check


def test_share_options_follow_hcsshim() -> None:
    assert files.share_options(True) == {
        "ReadOnly": True,
        "ShareRead": True,
        "CacheIo": True,
        "PseudoOplocks": True,
    }
    assert files.share_options(False) == {}
    assert files.vsmb_path("s1", "a") == (
        "\\\\?\\VMSMB\\VSMB-{dcc079ae-60ba-4d07-847c-3493609c0870}\\s1\\a"
    )
