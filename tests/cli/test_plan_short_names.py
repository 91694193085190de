"""``plan`` and 8.3 short names (RV30 F4).

``plan`` judges host folders as written and cannot expand a short name (the folder may be
another machine's); ``create`` judges the real path, in which ``os.path.realpath`` expands
short names on Windows.  A short name is a legal way to name any folder, so ``plan`` does
not refuse one: it warns when the short name may name a protected folder, and exits 0.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cli_support import Result

from hcs_sandbox.sandbox import files

Cli = Callable[..., Result]


@pytest.mark.parametrize(
    ("host", "protected"),
    [
        ("C:\\PROGRA~1", "system folder C:\\Program Files"),
        ("C:\\WINDOW~1\\System32", "system folder C:\\Windows"),
        ("d:\\progra~2\\app", "system folder D:\\Program Files"),
    ],
)
def test_plan_warns_about_a_short_name_that_may_be_a_system_folder(
    cli: Cli, host: str, protected: str
) -> None:
    result = cli("plan", "--map", f"{host}:C:\\data", "--json")
    assert result.code == 0, result.err
    short = host.split("\\")[1]
    expected = (
        f"mapped folder {host}: {short!r} looks like an 8.3 short name, which plan cannot "
        f"expand, and the folder may "
    )
    found = [w for w in result.json()["warnings"] if w.startswith(expected)]
    assert len(found) == 1, result.json()["warnings"]
    assert protected in found[0]
    assert found[0].endswith(
        "create expands short names and refuses protected folders (write the long name "
        "to have plan check it)"
    )
    assert f"warning: {found[0]}" in result.err_lines


def test_a_short_name_around_the_state_dir_is_warned_about() -> None:
    # (The CLI's state directory is a POSIX path on this host: the pure function here.)
    found = files.short_name_warning("D:\\HCS~1", protected=("D:\\hcs\\state",))
    assert found is not None
    assert "may hold the hcs-sandbox state directory D:\\hcs\\state;" in found
    found = files.short_name_warning("D:\\hcs\\STATE~1\\x", protected=("\\\\?\\D:\\hcs\\state",))
    assert found is not None
    assert "may be inside the hcs-sandbox state directory \\\\?\\D:\\hcs\\state;" in found


@pytest.mark.parametrize(
    "host",
    [
        "C:\\Users\\me\\PROJEC~1",  # a short name that cannot be a protected folder
        "C:\\Users\\me\\tools",
        "C:\\a~b",  # not shaped like a short name (at the top, where protected folders are)
        "C:\\x~1.long",  # an extension of more than 3 characters
        "C:\\PROJEC~1",  # shaped like one, but no protected folder's name starts so
        "D:\\DATA~1",
        "D:\\work~2",
        "D:\\backup~1\\2024",
    ],
)
def test_plan_does_not_warn_otherwise(cli: Cli, host: str) -> None:
    result = cli("plan", "--map", f"{host}:C:\\data", "--json")
    assert result.code == 0, result.err
    assert not [w for w in result.json()["warnings"] if "8.3" in w]


@pytest.mark.parametrize(
    ("name", "short"),
    [
        ("PROGRA~1", True),
        ("PR1A2B~1", True),
        ("LONGFI~1.TXT", True),
        ("a~12", True),
        ("PROGRAMF~1", False),  # a base of more than 8 characters
        ("~1", False),
        ("a~", False),
        ("a~b", False),
        ("A~1.", False),
        ("A~1.ABCD", False),
    ],
)
def test_the_short_name_shape(name: str, short: bool) -> None:
    assert files._looks_short(name) is short


@pytest.mark.parametrize(
    ("short", "long", "fits"),
    [
        ("progra~1", "program files", True),
        ("progra~2", "program files (x86)", True),
        ("progr~10", "program files", True),  # a shorter base before a longer number
        ("pr1a2b~1", "program files", True),  # the hash form: two letters, hex digits
        ("pr1a2b~1", "windows", False),
        ("wi1a2b~1", "windows", True),
        ("projec~1", "program files", False),
        ("data~1", "windows", False),
        ("hcs_sa~1", "hcs-sandbox", True),  # _ stands for a character 8.3 does not allow
        ("a~b", "a b", False),  # not a short name's shape
    ],
)
def test_which_long_name_a_short_name_can_be(short: str, long: str, fits: bool) -> None:
    assert files._short_fits(short, long) is fits


def test_the_deepest_protected_folder_is_named() -> None:
    # PROGRA~3 may be Program Files or ProgramData: the state directory inside ProgramData
    # is what the whole path may be, so it is the one named (review RV32 #2).
    found = files.short_name_warning(
        "C:\\PROGRA~3\\hcs-sandbox", protected=("C:\\ProgramData\\hcs-sandbox",)
    )
    assert found is not None
    assert "may be the hcs-sandbox state directory C:\\ProgramData\\hcs-sandbox;" in found
