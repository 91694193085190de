"""``exec -i`` when the guest command ends while our stdin is still open (a terminal without
Ctrl+D, a pipe whose writer runs on): the guest's exit code, not a crash at interpreter
shutdown (review RV-api2 A1: the forwarding thread, blocked in a buffered read, held the
BufferedReader's lock: "Fatal Python error: _enter_buffered_busy", exit 134)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from cli_support import CliEnv, Result, cli_command

Cli = Callable[..., Result]


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX pipe held open")
def test_exec_i_returns_the_guest_code_while_stdin_stays_open(cli_env: CliEnv, cli: Cli) -> None:
    assert cli("run", "-d", "--name", "open-stdin").code == 0
    try:
        proc = subprocess.Popen(
            [*cli_command(), "exec", "-i", "open-stdin", "--", "cmd", "/c", "exit", "3"],
            env=cli_env.env,
            stdin=subprocess.PIPE,  # held open: never written to, closed only afterwards
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            code = proc.wait(timeout=60)
            err = proc.stderr.read() if proc.stderr is not None else b""
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            assert proc.stdin is not None
            proc.stdin.close()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        assert code == 3, err
        assert b"Fatal Python error" not in err, err
    finally:
        assert cli("rm", "-f", "open-stdin").code == 0
