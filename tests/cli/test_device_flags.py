"""Device switches and --logon-command: off by default; --no-X overrides a .wsb."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from cli_support import Result

Cli = Callable[..., Result]

DEVICES = ("gpu", "clipboard", "audio_input", "video_input", "printer")


def _spec(cli: Cli, *argv: str) -> dict[str, object]:
    result = cli("plan", *argv, "--json")
    assert result.code == 0, result.err
    spec = result.json()["spec"]
    assert isinstance(spec, dict)
    return spec


def test_devices_are_off_by_default(cli: Cli) -> None:
    spec = _spec(cli)
    assert [spec[d] for d in DEVICES] == [False] * len(DEVICES)


def test_each_switch_turns_its_device_on_and_says_it_loosens_isolation(cli: Cli) -> None:
    spec = _spec(cli, "--gpu", "--clipboard", "--audio-input", "--video-input", "--printer")
    assert [spec[d] for d in DEVICES] == [True] * len(DEVICES)
    helptext = cli("run", "--help").out
    for flag in ("--gpu", "--clipboard", "--audio-input", "--video-input", "--printer"):
        line = helptext[helptext.index(flag) :][:400]
        assert "LOOSENS ISOLATION" in " ".join(line.split()), flag


def test_no_switch_overrides_a_wsb_default(cli: Cli, tmp_path: Path) -> None:
    wsb = tmp_path / "defaults.wsb"
    wsb.write_text("<Configuration></Configuration>", encoding="utf-8")
    assert _spec(cli, str(wsb))["clipboard"] is True  # Windows Sandbox's own default
    assert _spec(cli, str(wsb), "--no-clipboard", "--no-audio-input")["clipboard"] is False


def test_logon_command_output_reaches_logs(cli: Cli) -> None:
    made = cli("run", "-d", "--name", "greeter", "--logon-command", "cmd /c echo hello-logon")
    assert made.code == 0, made.err
    deadline = time.monotonic() + 20
    logs = ""
    while time.monotonic() < deadline:
        logs = cli("logs", "greeter").out
        if "hello-logon" in logs:
            break
        time.sleep(0.2)
    assert "hello-logon" in logs
    assert cli("rm", "-f", "greeter").code == 0
