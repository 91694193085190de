"""Session 17: every setting that loosens isolation is said when the sandbox is made.

QA analyst F2/F3/F11, tester F1: ``create`` and ``run`` printed only the .wsb reader's
warnings (the planner's reached only ``plan`` and ``inspect``), a logon command was never a
warning, a .wsb's desktop display was not said, and ``plan`` told a POSIX host to use a
drive letter "on this host".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cli_support import Result

Cli = Callable[..., Result]

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello.wsb"


def _warnings(result: Result) -> list[str]:
    return [line for line in result.err_lines if line.startswith("warning: ")]


def _planned(cli: Cli, *argv: str) -> list[str]:
    """The planner's warnings for these flags (``plan --json``), as ``warning:`` lines."""
    result = cli("plan", *argv, "--json")
    assert result.code == 0, result.err
    return [f"warning: {w}" for w in result.json()["warnings"]]


def test_create_prints_the_planners_warning_for_each_loosening_flag(
    cli: Cli, tmp_path: Path
) -> None:
    host = tmp_path / "hostdir"
    host.mkdir()
    cases = [
        ("--gpu",),
        ("--clipboard", "--display", "desktop"),
        ("--printer",),
        ("--network", "nat", "-p", "8081:80"),
        ("--display", "desktop"),
        ("--map", f"{host}:C:\\m:rw"),
        ("--logon-command", "cmd /c echo hi"),
    ]
    for k, flags in enumerate(cases):
        made = cli("create", "--name", f"w{k}", *flags)
        assert made.code == 0, made.err
        got = _warnings(made)
        assert got, flags
        assert len(got) == len(set(got)), got  # once each
        # The same lines plan shows (the placeholder SID aside: desktop names the real one).
        # (plan plans for a Windows host: a POSIX --map path is a warning there alone.)
        planned = [w for w in _planned(cli, *flags) if "not a Windows path" not in w]
        assert len(got) == len(planned), (got, planned)
        inspected = cli("inspect", f"w{k}").json()[0]["warnings"]
        assert got == [f"warning: {w}" for w in inspected]
    assert cli("rm", *(f"w{k}" for k in range(len(cases)))).code == 0


def test_the_warnings_of_the_flags_name_what_they_loosen(cli: Cli, tmp_path: Path) -> None:
    host = tmp_path / "rw"
    host.mkdir()
    made = cli("create", "--name", "rwmap", "--map", f"{host}:C:\\m:rw", "--json")
    assert made.code == 0, made.err
    assert json.loads(made.out)["name"] == "rwmap"  # stdout: the one JSON document
    assert f"warning: host folder {host} is writable from the sandbox at C:\\m" in made.err
    ran = cli("run", "--rm", "--gpu", "--", "cmd", "/c", "ver")
    assert ran.code == 0, ran.err
    assert any("the virtual GPU is on" in w for w in _warnings(ran))
    detached = cli("run", "-d", "--name", "net", "--network", "nat")
    assert detached.code == 0, detached.err
    assert any(w.startswith("warning: networking is on (nat)") for w in _warnings(detached))
    assert cli("rm", "-f", "rwmap", "net").code == 0


def test_a_sandbox_without_loosening_settings_gets_no_warning(cli: Cli) -> None:
    made = cli("create", "--name", "closed")
    assert made.code == 0, made.err
    assert _warnings(made) == []
    assert cli("rm", "closed").code == 0


def test_a_minimal_wsb_warns_once_per_setting_and_says_the_desktop(
    cli: Cli, tmp_path: Path
) -> None:
    wsb = tmp_path / "min.wsb"
    wsb.write_text("<Configuration></Configuration>", encoding="utf-8")
    made = cli("create", "--name", "minimal", str(wsb))
    assert made.code == 0, made.err
    got = _warnings(made)
    assert len(got) == len(set(got))
    # Each setting once: the .wsb's line (file, how to turn it off), not the planner's too.
    for planner_words in (
        "networking is on",
        "the virtual GPU is on",
        "clipboard sharing is on",
        "audio input is on",
        "desktop display is on: processes running as",
    ):
        assert not any(w.startswith(f"warning: {planner_words}") for w in got), got
    display = [w for w in got if "desktop display is on" in w]
    assert len(display) == 1
    assert display[0].startswith(f"warning: {wsb}: ")
    assert "use --display headless" in display[0]
    # The planner's experimental notes have no .wsb counterpart: they are printed.
    assert any(w.startswith("warning: experimental: the shared NAT network") for w in got)
    # inspect keeps every planner warning.
    inspected = cli("inspect", "minimal").json()[0]["warnings"]
    assert any(w.startswith("desktop display is on") for w in inspected)
    assert cli("rm", "minimal").code == 0


def test_a_flag_over_the_wsb_leaves_the_planners_warning(cli: Cli, tmp_path: Path) -> None:
    wsb = tmp_path / "quiet.wsb"
    wsb.write_text(
        "<Configuration><Networking>Disable</Networking><VGpu>Disable</VGpu>"
        "<AudioInput>Disable</AudioInput><ClipboardRedirection>Disable"
        "</ClipboardRedirection></Configuration>",
        encoding="utf-8",
    )
    made = cli("create", "--name", "over", str(wsb), "--network", "nat", "--display", "headless")
    assert made.code == 0, made.err
    got = _warnings(made)
    assert [w for w in got if "networking" in w] == [
        "warning: networking is on (nat): the sandbox can reach the internet and your LAN"
    ]
    assert not any("desktop" in w for w in got)  # --display headless replaced it
    assert cli("rm", "over").code == 0


def test_the_hello_example_turns_everything_off_with_display_headless(cli: Cli) -> None:
    text = HELLO.read_text(encoding="utf-8")
    # Its comment says how the desktop goes off (an XML comment cannot hold "--").
    assert "display headless" in text
    made = cli("create", "--name", "hello", "--display", "headless", str(HELLO))
    assert made.code == 0, made.err
    assert _warnings(made) == []
    assert cli("inspect", "hello").json()[0]["warnings"] == []
    bare = cli("create", "--name", "hello2", str(HELLO))
    assert bare.code == 0, bare.err
    [line] = _warnings(bare)
    assert "desktop display is on" in line
    assert "--display headless" in line
    assert cli("rm", "hello", "hello2").code == 0


def test_a_logon_command_is_a_warning_in_plan_create_and_inspect(cli: Cli, tmp_path: Path) -> None:
    planned = cli("plan", "--logon-command", "cmd /c echo hi", "--json")
    assert planned.code == 0
    assert any(
        "a logon command is set" in w and "no quota" in w for w in planned.json()["warnings"]
    )
    assert any("a logon command is set" in w for w in _warnings(planned))
    made = cli("create", "--name", "lc", "--logon-command", "cmd /c echo hi")
    assert any("a logon command is set" in w for w in _warnings(made))
    assert any("a logon command is set" in w for w in cli("inspect", "lc").json()[0]["warnings"])
    wsb = tmp_path / "lc.wsb"
    wsb.write_text(
        "<Configuration><Networking>Disable</Networking><VGpu>Disable</VGpu>"
        "<AudioInput>Disable</AudioInput><ClipboardRedirection>Disable"
        "</ClipboardRedirection><LogonCommand><Command>cmd /c echo hi</Command>"
        "</LogonCommand></Configuration>",
        encoding="utf-8",
    )
    from_wsb = cli("plan", str(wsb), "--display", "headless", "--json")
    assert any("a logon command is set" in w for w in from_wsb.json()["warnings"])
    assert cli("rm", "lc").code == 0


def test_plan_does_not_tell_this_host_to_use_a_drive_letter(cli: Cli, tmp_path: Path) -> None:
    host = tmp_path / "hostdir"
    host.mkdir()
    planned = cli("plan", "--map", f"{host}:C:\\x")
    assert planned.code == 0, planned.err
    line = next(w for w in planned.out.splitlines() if f"mapped folder {host}" in w)
    assert "on this host" not in line
    assert "the host planned for is Windows" in line


def test_plan_says_each_setting_of_a_wsb_once(cli: Cli, tmp_path: Path) -> None:
    wsb = tmp_path / "min.wsb"
    wsb.write_text("<Configuration></Configuration>", encoding="utf-8")
    planned = cli("plan", str(wsb), "--json")
    assert planned.code == 0, planned.err
    warnings = planned.json()["warnings"]
    assert not any(w.startswith(("networking is on", "desktop display is on")) for w in warnings)
    assert sum("networking is enabled" in w for w in warnings) == 1
    assert sum("desktop display is on" in w for w in warnings) == 1
    # --network none replaces the .wsb's: neither line is left.
    replaced = cli("plan", str(wsb), "--network", "none", "--json").json()["warnings"]
    assert not any("networking" in w for w in replaced)
