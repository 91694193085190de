"""``hcs-sandbox logs``: lifecycle lines and the logon command's output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cli_support import Result

Cli = Callable[..., Result]


def test_logs_show_lifecycle_and_logon_output(cli: Cli, tmp_path: Path) -> None:
    wsb = tmp_path / "logon.wsb"
    wsb.write_text(
        "<Configuration><Networking>Disable</Networking>"
        "<LogonCommand><Command>cmd /c echo logon says hi</Command></LogonCommand>"
        "</Configuration>",
        encoding="utf-8",
    )
    assert cli("run", "-d", "--name", "lg", str(wsb)).code == 0
    import time

    from hcs_sandbox.sandbox.sandbox import Sandbox

    deadline = time.monotonic() + 10
    while "logon command exited" not in Sandbox.get("lg").logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    result = cli("logs", "lg")
    assert result.code == 0
    assert "started" in result.out
    assert "logon command exited with code 0" in result.out
    assert "logon says hi" in result.out
    # --follow ends by itself once the sandbox has stopped.
    assert cli("stop", "lg").code == 0
    followed = cli("logs", "-f", "--interval", "0.05", "lg")
    assert followed.code == 0
    assert "logon says hi" in followed.out


def test_logs_unknown_sandbox(cli: Cli) -> None:
    result = cli("logs", "nosuch")
    assert result.code == 2
    assert len(result.err_lines) == 1
