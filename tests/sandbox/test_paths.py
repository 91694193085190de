"""The state directory: where it is, how it is protected, and its layout."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hcs_sandbox.errors import HcsSandboxError, SpecError, StoreError
from hcs_sandbox.sandbox.paths import (
    WINDOWS_STATE_DIR_SDDL,
    database_path,
    default_state_dir,
    ensure_sandbox_dir,
    ensure_state_dir,
    sandbox_dir,
    sandbox_files,
    sddl_is_restricted,
    state_dir,
    template_dir,
    templates_dir,
)

GUID = "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")


# -- where ------------------------------------------------------------------------------


def test_explicit_argument_wins_over_environment(tmp_path: Path) -> None:
    env = {"HCS_SANDBOX_STATE_DIR": str(tmp_path / "env")}
    assert state_dir(tmp_path / "arg", environ=env) == tmp_path / "arg"


def test_environment_overrides_default(tmp_path: Path) -> None:
    env = {"HCS_SANDBOX_STATE_DIR": str(tmp_path / "env"), "HOME": "/home/x"}
    assert state_dir(environ=env) == tmp_path / "env"


def test_blank_environment_value_is_ignored() -> None:
    env = {"HCS_SANDBOX_STATE_DIR": "  ", "HOME": "/home/x"}
    assert state_dir(environ=env) == Path(default_state_dir(environ=env))


def test_relative_override_becomes_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = state_dir(environ={"HCS_SANDBOX_STATE_DIR": "rel/state"})
    assert result.is_absolute()
    assert result == tmp_path / "rel" / "state"


def test_process_environment_is_used_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HCS_SANDBOX_STATE_DIR", str(tmp_path / "s"))
    assert state_dir() == tmp_path / "s"


def test_windows_default_is_programdata() -> None:
    got = default_state_dir(platform="win32", environ={"PROGRAMDATA": "D:\\PD\\"})
    assert got == "D:\\PD\\hcs-sandbox"  # environment names are case-insensitive on Windows


def test_windows_default_falls_back_to_c_programdata() -> None:
    assert default_state_dir(platform="win32", environ={}) == "C:\\ProgramData\\hcs-sandbox"


def test_linux_default_uses_absolute_xdg_state_home() -> None:
    env = {"XDG_STATE_HOME": "/xdg/state", "HOME": "/home/u"}
    assert default_state_dir(platform="linux", environ=env) == "/xdg/state/hcs-sandbox"


def test_linux_default_ignores_relative_xdg_and_uses_home() -> None:
    env = {"XDG_STATE_HOME": "relative", "HOME": "/home/u"}
    got = default_state_dir(platform="linux", environ=env)
    assert got == "/home/u/.local/state/hcs-sandbox"


# -- layout -----------------------------------------------------------------------------


def test_layout_helpers(tmp_path: Path) -> None:
    assert database_path(tmp_path) == tmp_path / "state.db"
    assert sandbox_dir(tmp_path, GUID.upper()) == tmp_path / "sandboxes" / GUID
    assert templates_dir(tmp_path) == tmp_path / "templates"
    assert template_dir(tmp_path, "{" + GUID + "}") == tmp_path / "templates" / GUID
    files = sandbox_files(tmp_path, GUID)
    assert files.directory == tmp_path / "sandboxes" / GUID
    assert files.scratch_vhdx.name == "sandbox.vhdx"
    assert files.guest_state.name == "sandbox.vmgs"
    assert files.runtime_state.name == "sandbox.vmrs"
    assert files.saved_state.parent == files.directory
    assert files.logs == files.directory / "logs"


@pytest.mark.parametrize("bad", ["../../etc", "", "not-a-guid", GUID + "/x", "..\\x"])
def test_sandbox_dir_refuses_non_guid_ids(tmp_path: Path, bad: str) -> None:
    with pytest.raises(SpecError, match="not a GUID") as info:
        sandbox_dir(tmp_path, bad)
    assert info.value.remedy  # says what a GUID looks like


@given(st.text(max_size=60))
def test_sandbox_dir_never_escapes_the_state_dir(text: str) -> None:
    base = Path("/state")
    try:
        result = sandbox_dir(base, text)
    except SpecError:
        return
    assert result.parent == base / "sandboxes"
    assert len(result.name) == 36


# -- protection (POSIX) -----------------------------------------------------------------


@posix_only
def test_ensure_creates_private_directory(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "state"
    assert ensure_state_dir(target) == target
    assert stat.S_IMODE(target.stat().st_mode) == 0o700


@posix_only
def test_ensure_tightens_an_open_directory(tmp_path: Path) -> None:
    target = tmp_path / "state"
    target.mkdir()
    os.chmod(target, 0o755)
    ensure_state_dir(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o700


@posix_only
def test_ensure_is_idempotent(tmp_path: Path) -> None:
    target = tmp_path / "state"
    ensure_state_dir(target)
    (target / "keep").write_text("x")
    ensure_state_dir(target)
    assert (target / "keep").read_text() == "x"


def test_ensure_refuses_a_file(tmp_path: Path) -> None:
    target = tmp_path / "state"
    target.write_text("not a dir")
    with pytest.raises(StoreError, match="not a directory") as info:
        ensure_state_dir(target)
    assert "HCS_SANDBOX_STATE_DIR" in str(info.value.remedy) or "move" in str(info.value.remedy)


@posix_only
@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to chown")
def test_ensure_refuses_a_directory_of_another_user(tmp_path: Path) -> None:
    target = tmp_path / "state"
    target.mkdir(mode=0o700)
    os.chown(target, 65534, 65534)
    with pytest.raises(StoreError, match="another user"):
        ensure_state_dir(target)


@posix_only
def test_ensure_refuses_another_users_directory_simulated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "state"
    target.mkdir(mode=0o700)
    real = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real + 1)
    with pytest.raises(StoreError, match="another user") as info:
        ensure_state_dir(target)
    assert "HCS_SANDBOX_STATE_DIR" in str(info.value)


@posix_only
def test_ensure_sandbox_dir_is_private(tmp_path: Path) -> None:
    state = ensure_state_dir(tmp_path / "state")
    directory = ensure_sandbox_dir(state, GUID)
    assert directory == state / "sandboxes" / GUID
    assert directory.is_dir()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert ensure_sandbox_dir(state, GUID) == directory  # idempotent


def test_ensure_sandbox_dir_reports_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("file")  # the state "directory" is a file
    with pytest.raises(StoreError, match="cannot create the sandbox folder"):
        ensure_sandbox_dir(blocker, GUID)


# -- protection (Windows SDDL check, pure) ----------------------------------------------


def test_the_sddl_we_write_is_restricted() -> None:
    assert sddl_is_restricted(WINDOWS_STATE_DIR_SDDL)


@pytest.mark.parametrize(
    "sddl",
    [
        "O:BAD:PAI(A;OICI;FA;;;BA)(A;OICI;FA;;;SY)",  # auto-inherited flag as Windows reports
        "O:SYD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)",  # other order, owner SYSTEM
        "O:BAG:SYD:P(A;OICI;FA;;;BA)(A;OICI;FA;;;SY)",  # with a group
    ],
)
def test_restricted_variants(sddl: str) -> None:
    assert sddl_is_restricted(sddl)


@pytest.mark.parametrize(
    "sddl",
    [
        "O:S-1-5-21-1-2-3-1001D:P(A;OICI;FA;;;BA)(A;OICI;FA;;;SY)",  # a user owns it
        "O:BAD:AI(A;OICI;FA;;;BA)(A;OICI;FA;;;SY)",  # not protected
        "O:BAD:P(A;OICI;FA;;;BA)(A;OICI;FA;;;SY)(A;OICI;0x1200a9;;;BU)",  # users can read
        "O:BAD:P(A;OICI;FA;;;BA)",  # SYSTEM missing
        "O:BAD:P(A;OICIID;FA;;;BA)(A;OICI;FA;;;SY)",  # inherited ACE
        "O:BAD:P(A;OICI;FA;;;BA)(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)",  # duplicate
        "O:BAD:NO_ACCESS_CONTROL",
        "garbage",
        "",
    ],
)
def test_too_open_or_unknown_sddl_is_not_restricted(sddl: str) -> None:
    assert not sddl_is_restricted(sddl)


@given(st.text(max_size=80))
def test_sddl_check_never_raises(text: str) -> None:
    assert sddl_is_restricted(text) in (True, False)


def test_windows_calls_are_refused_elsewhere() -> None:
    if sys.platform == "win32":
        pytest.skip("the real calls exist here")
    from hcs_sandbox.native import fs

    with pytest.raises(OSError, match="Windows"):
        fs.get_file_sddl("C:\\x")
    with pytest.raises(OSError, match="Windows"):
        fs.create_directory_with_sddl("C:\\x", WINDOWS_STATE_DIR_SDDL)
    with pytest.raises(OSError, match="Windows"):
        fs.set_file_sddl("C:\\x", WINDOWS_STATE_DIR_SDDL)


def test_errors_are_in_the_tree(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("")
    with pytest.raises(HcsSandboxError):
        ensure_state_dir(target)


def test_sandbox_files_is_immutable_and_compared_by_value(tmp_path: Path) -> None:
    a = sandbox_files(tmp_path, GUID)
    b = sandbox_files(str(tmp_path), GUID.upper())
    assert a == b
    assert hash(a) == hash(b)
    assert "scratch_vhdx=" in repr(a)
    with pytest.raises(AttributeError):
        a.logs = tmp_path


# -- text fast paths equal the pathlib ones ------------------------------------------------

_STATE_SHAPES = [
    "/var/state",
    "/var/state/",
    "/var//state/./x",
    "/",
    "//server/share",
    "relative/dir",
    "relative/dir/",
    ".",
    "./x",
    "x/..",
    "~/state",
    Path("/var/state"),
    Path("relative"),
]


@pytest.mark.parametrize("state", _STATE_SHAPES, ids=str)
@pytest.mark.parametrize(
    "sandbox_id", [GUID, GUID.upper(), "{" + GUID + "}", GUID.replace("-", "")]
)
def test_sandbox_dir_text_is_str_of_sandbox_dir(state: str | Path, sandbox_id: str) -> None:
    from hcs_sandbox.sandbox.paths import sandbox_dir_text

    assert sandbox_dir_text(state, sandbox_id) == str(sandbox_dir(state, sandbox_id))
    assert sandbox_dir_text(state, sandbox_id) == str(sandbox_files(state, sandbox_id).directory)


@given(st.text(alphabet="ab/.~ ", min_size=1, max_size=12))
def test_sandbox_dir_text_any_text(state: str) -> None:
    from hcs_sandbox.sandbox.paths import sandbox_dir_text

    assert sandbox_dir_text(state, GUID) == str(sandbox_dir(state, GUID))


def test_sandbox_dir_text_refuses_what_sandbox_dir_refuses() -> None:
    from hcs_sandbox.sandbox.paths import sandbox_dir_text

    with pytest.raises(SpecError):
        sandbox_dir_text("/s", "../escape")
    with pytest.raises(SpecError):
        sandbox_dir("/s", "../escape")


def test_ensure_sandbox_dir_text(tmp_path: Path) -> None:
    from hcs_sandbox.sandbox.paths import ensure_sandbox_dir_text

    made = ensure_sandbox_dir_text(tmp_path, GUID)  # makes <state>/sandboxes first
    assert made == str(sandbox_dir(tmp_path, GUID))
    assert os.path.isdir(made)
    assert ensure_sandbox_dir_text(tmp_path, GUID) == made  # exists: fine
    assert ensure_sandbox_dir(tmp_path, GUID) == sandbox_dir(tmp_path, GUID)


@pytest.mark.parametrize("explicit", [None, "/var/state", "rel", "~/x", Path("/p")], ids=str)
def test_state_dir_text_is_str_of_state_dir(explicit: str | Path | None) -> None:
    from hcs_sandbox.sandbox.paths import state_dir_text

    assert state_dir_text(explicit) == str(state_dir(explicit))
