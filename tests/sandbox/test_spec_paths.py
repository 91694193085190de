"""hcs_sandbox.sandbox.hostpath: the path rules shared by SandboxSpec and the .wsb reader."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hcs_sandbox.errors import SpecError
from hcs_sandbox.sandbox import hostpath


@pytest.mark.parametrize(
    ("path", "unc"),
    [
        ("\\\\server\\share", True),
        ("//server/share", True),
        ("\\/server/share", True),
        ("\\\\?\\UNC\\server\\share", True),
        ("\\\\?\\C:\\x", True),
        ("\\\\.\\pipe\\x", True),
        ("C:\\x", False),
        ("/srv/x", False),
        ("\\x", False),
        ("", False),
    ],
)
def test_is_unc(path: str, unc: bool) -> None:
    assert hostpath.is_unc(path) is unc


def test_absolute_flavours() -> None:
    assert hostpath.is_windows_absolute("C:\\x")
    assert hostpath.is_windows_absolute("z:/x")
    assert not hostpath.is_windows_absolute("C:x")
    assert not hostpath.is_windows_absolute("CC:\\x")
    assert hostpath.is_posix_absolute("/x")
    assert not hostpath.is_posix_absolute("//x")
    assert hostpath.is_absolute_host_path("/")
    assert not hostpath.is_absolute_host_path("x/y")


def test_host_path_problem_accepts_common_paths() -> None:
    for path in ("C:\\Users\\me\\Downloads\\", "D:\\Tools & Scripts", "/tmp/x y", "C:/a/b"):
        assert hostpath.host_path_problem(path) is None, path


def test_guest_normalisation_and_comparison() -> None:
    assert hostpath.normalise_guest_path("c:/Data//Sub/") == "C:\\Data\\Sub"
    assert hostpath.guest_key("c:/Data//Sub/") == hostpath.guest_key("C:\\DATA\\sub")
    assert hostpath.nested_or_same("C:\\a", "c:\\A\\")
    assert hostpath.nested_or_same("C:\\a", "C:\\a\\b")
    assert hostpath.nested_or_same("C:\\a\\b", "C:\\A")
    assert not hostpath.nested_or_same("C:\\a", "C:\\ab")
    assert not hostpath.nested_or_same("C:\\a", "D:\\a")


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("C:\\Test", "Test"),
        ("C:\\Users\\me\\Downloads\\", "Downloads"),
        ("/srv/data/", "data"),
        ("C:\\", ""),
        ("/", ""),
    ],
)
def test_host_basename(path: str, name: str) -> None:
    assert hostpath.host_basename(path) == name


def test_join_host_path() -> None:
    assert hostpath.join_host_path("C:\\work\\box", ".\\tools") == "C:\\work\\box\\tools"
    assert hostpath.join_host_path("C:\\work\\box", "..\\out") == "C:\\work\\out"
    assert hostpath.join_host_path("/srv/box", ".\\tools\\bin") == "/srv/box/tools/bin"
    assert hostpath.join_host_path("/srv/box", "../out") == "/srv/out"


def test_expand_variables() -> None:
    env = {"UserProfile": "C:\\Users\\me", "ProgramFiles(x86)": "C:\\PF86"}
    assert hostpath.expand_variables("%USERPROFILE%\\x", env) == "C:\\Users\\me\\x"
    assert hostpath.expand_variables("%programfiles(X86)%", env) == "C:\\PF86"
    assert hostpath.expand_variables("100% sure", env) == "100% sure"
    assert hostpath.expand_variables("a%%b", env) == "a%%b"
    with pytest.raises(SpecError, match="%NOPE% is not defined") as info:
        hostpath.expand_variables("%NOPE%\\x", env)
    assert info.value.value == "NOPE"
    assert "define NOPE" in (info.value.remedy or "")


def test_has_variable_reference() -> None:
    assert hostpath.has_variable_reference("C:\\%TEMP%\\x")
    assert not hostpath.has_variable_reference("C:\\100%\\x")


@given(st.text(max_size=40))
def test_guest_path_problem_never_crashes(path: str) -> None:
    problem = hostpath.guest_path_problem(path)
    if problem is None:
        # a valid guest path normalises to a valid guest path with the same key
        norm = hostpath.normalise_guest_path(path)
        assert hostpath.guest_path_problem(norm) is None
        assert hostpath.guest_key(norm) == hostpath.guest_key(path)


@given(st.text(max_size=40))
def test_host_path_problem_never_crashes(path: str) -> None:
    problem = hostpath.host_path_problem(path)
    if problem is None:
        assert hostpath.is_absolute_host_path(path)
        assert not hostpath.is_unc(path)
