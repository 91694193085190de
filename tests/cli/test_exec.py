"""``hcs-sandbox exec``: streaming, exit codes, timeout (124), options, errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cli_support import Result

Cli = Callable[..., Result]


def test_exec_streams_and_exits_with_the_guest_code(cli: Cli, web: str) -> None:
    result = cli("exec", web, "--", "cmd", "/c", "echo out & echo err 1>&2 & exit 3")
    assert result.code == 3
    assert result.out == "out \r\n"
    assert "err" in result.err


def test_exec_options(cli: Cli, web: str) -> None:
    assert cli("exec", web, "--", "cmd", "/c", "mkdir", "C:\\w").code == 0
    result = cli(
        "exec",
        "-e",
        "GREETING=hi",
        "-w",
        "C:\\w",
        "-u",
        "sandbox\\me",
        web,
        "--",
        "cmd",
        "/c",
        "echo %GREETING% & cd & whoami",
    )
    assert result.code == 0, result.err
    assert [line.strip() for line in result.out.splitlines()] == ["hi", "C:\\w", "sandbox\\me"]


def test_exec_timeout_is_124(cli: Cli, web: str) -> None:
    result = cli("exec", "--timeout", "0.5", web, "--", "timeout", "/t", "60")
    assert result.code == 124
    assert "did not finish within 0.5 s" in result.err
    assert len(result.err_lines) == 1


def test_exec_json(cli: Cli, web: str) -> None:
    result = cli("exec", "--json", web, "--", "cmd", "/c", "echo hi")
    assert result.code == 0
    assert result.json()["stdout"] == "hi\n"
    assert result.json()["exit_code"] == 0


def test_exec_interactive_stdin(cli: Cli, web: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    fake = io.TextIOWrapper(io.BytesIO(b"piped input\r\n"))
    monkeypatch.setattr(sys, "stdin", fake)
    result = cli("exec", "-i", web, "--", "more")
    assert result.code == 0
    assert result.out == "piped input\r\n"


class _BrokenStdin:
    """A stdin whose reading fails after the first chunk (an I/O error on our own input)."""

    def __init__(self) -> None:
        self.buffer = self
        self.reads = 0

    def read1(self, size: int) -> bytes:
        self.reads += 1
        if self.reads == 1:
            return b"partial "
        raise OSError(5, "Input/output error")


def test_exec_interactive_stdin_that_fails_stops_the_guest_not_a_hang(
    cli: Cli, web: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The forwarder thread died without closing the guest's stdin: ``more`` waited for an
    # end-of-file forever (here until --timeout: 124).  Now the guest is stopped (it would
    # take truncated input for complete) and the failure is the error.
    import sys
    import time

    monkeypatch.setattr(sys, "stdin", _BrokenStdin())
    started = time.monotonic()
    result = cli("exec", "-i", "--timeout", "20", web, "--", "more")
    assert time.monotonic() - started < 10
    assert result.code == 1, result.err
    assert "forwarding stdin to guest process" in result.err
    assert "OSError: [Errno 5] Input/output error" in result.err
    assert len(result.err_lines) == 1


def test_exec_interactive_without_a_stdin_sends_end_of_file(
    cli: Cli, web: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No stdin at all (sys.stdin is None: started with stdin closed) is empty input, not a
    # dead forwarder thread and a guest waiting for input.
    import sys

    monkeypatch.setattr(sys, "stdin", None)
    result = cli("exec", "-i", "--timeout", "20", web, "--", "more")
    assert result.code == 0, result.err
    assert result.out == ""


def test_exec_tty(cli: Cli, web: str) -> None:
    result = cli("exec", "-t", web, "--", "cmd", "/c", "echo a & echo b 1>&2")
    assert result.code == 0
    assert "a" in result.out  # one merged stream: stderr arrives on stdout
    assert "b" in result.out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["exec", "web"], "no command given"),
        (["exec", "--timeout", "0", "web", "--", "x"], "invalid seconds"),
        (["exec", "--json", "-t", "web", "--", "x"], "cannot be combined"),
        (["exec", "-e", "NOEQUALS", "web", "--", "x"], "NOEQUALS"),
        (["exec", "nosuch", "--", "cmd"], "nosuch"),
    ],
)
def test_exec_bad_input(cli: Cli, web: str, argv: list[str], needle: str) -> None:
    result = cli(*argv)
    assert result.code == 2
    assert needle in result.err
    assert "Traceback" not in result.err


def test_exec_stopped_sandbox(cli: Cli) -> None:
    assert cli("create", "--name", "cold").code == 0
    result = cli("exec", "cold", "--", "cmd", "/c", "ver")
    assert result.code != 0
    assert "it is created" in result.err
    assert len(result.err_lines) == 1


def test_host_exit_code_mapping() -> None:
    import sys

    from hcs_sandbox.cli.common import host_exit_code

    assert host_exit_code(0) == 0
    assert host_exit_code(255) == 255
    if sys.platform != "win32":
        assert host_exit_code(9009) == 1
        assert host_exit_code(0xC000013A) == 1
