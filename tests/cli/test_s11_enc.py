"""Round s11, task "enc": review RV35, guest text in encodings other than UTF-8.

1. ``exec``, ``run -- COMMAND`` and ``logs`` take ``--encoding CODEC``: the guest's output is
   decoded with it for ``--json`` (``ExecResult.to_dict(encoding)``) and ``logs``; an unknown
   codec is a usage error naming the flag; without it nothing changes (UTF-8, replaced);
2. ``exec`` to a Windows console (or to a terminal with ``--encoding``) decodes each stream
   with an incremental decoder and writes text: a character split between two pipe reads
   waits for its tail, and cp850 bytes are shown as the characters they are;
3. ``logs -f`` follows the logon output by its byte offset: a poll that catches half of a
   character no longer makes it print the whole log again.

Each test of a change fails on the code before it (a11dfe7).  The guest's bytes come from
the simulator's ``type FILE``, which writes a file's bytes as stored (the files are encoded
the way a guest program would write them).
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import Result, wait_for

from hcs_sandbox.cli.exec_ import _pump
from hcs_sandbox.cli.main import main
from hcs_sandbox.sandbox.guest import ExecResult, OutputChunk

Cli = Callable[..., Result]

GERMAN = "Datenträger Größe café\r\n"  # what cmd's dir/echo write on a German guest: cp850
JAPANESE = "ボリューム 日本 表\r\n"  # cp932 (ja-JP's OEM and ANSI code page)
UTF16 = "Datenträger 日本\r\n"  # cmd /u: UTF-16LE
FILES = {
    "oem850.txt": GERMAN.encode("cp850"),
    "sjis.txt": JAPANESE.encode("cp932"),
    "u16.txt": UTF16.encode("utf-16-le"),
}


@pytest.fixture
def share(tmp_path: Path) -> Path:
    folder = tmp_path / "share"
    folder.mkdir()
    for name, data in FILES.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def enc(cli: Cli, share: Path) -> str:
    """A running sandbox with the files mapped at C:\\data."""
    started = cli("run", "-d", "--name", "enc", "--map", f"{share}:C:\\data")
    assert started.code == 0, started.err
    return "enc"


# ------------------------------------------------------------------ 1. --encoding, --json


@pytest.mark.parametrize(
    ("name", "codec", "meant"),
    [
        ("oem850.txt", "cp850", GERMAN),
        ("sjis.txt", "cp932", JAPANESE),
        ("u16.txt", "utf-16-le", UTF16),
    ],
)
def test_exec_json_decodes_with_the_encoding(
    cli: Cli, enc: str, name: str, codec: str, meant: str
) -> None:
    result = cli("exec", "--json", "--encoding", codec, enc, "--", "type", f"C:\\data\\{name}")
    assert result.code == 0, result.err
    assert result.json()["stdout"] == meant.replace("\r\n", "\n")
    assert result.json()["stderr"] == ""


def test_exec_json_without_encoding_is_unchanged(cli: Cli, enc: str) -> None:
    # Existing users keep what they had: UTF-8 with replacement (RV35's first line).
    result = cli("exec", "--json", enc, "--", "type", "C:\\data\\oem850.txt")
    assert result.code == 0, result.err
    assert result.json()["stdout"] == "Datentr\ufffdger Gr\ufffd\ufffde caf\ufffd\n"


def test_exec_json_timeout_object_uses_the_encoding(cli: Cli, enc: str) -> None:
    result = cli(
        "exec",
        "--json",
        "--encoding",
        "cp850",
        "--timeout",
        "0.5",
        enc,
        "--",
        "cmd",
        "/c",
        "type C:\\data\\oem850.txt & timeout /t 60",
    )
    assert result.code == 124
    assert result.json()["timed_out"] is True
    assert result.json()["stdout"].startswith("Datenträger Größe café\n")


def test_run_json_decodes_with_the_encoding(cli: Cli, share: Path) -> None:
    result = cli(
        "run",
        "--rm",
        "--json",
        "--encoding",
        "cp932",
        "--map",
        f"{share}:C:\\data",
        "--",
        "type",
        "C:\\data\\sjis.txt",
    )
    assert result.code == 0, result.err
    assert result.json()["stdout"] == JAPANESE.replace("\r\n", "\n")
    assert result.json()["removed"] is True


def test_library_to_dict_takes_the_encoding() -> None:
    result = ExecResult(0, GERMAN.encode("cp850"), "Ungültig\r\n".encode("cp850"))
    assert result.to_dict("cp850")["stdout"] == "Datenträger Größe café\n"
    assert result.to_dict("cp850")["stderr"] == "Ungültig\n"
    assert result.to_dict() == result.to_dict("utf-8")  # the default is unchanged
    assert result.to_dict()["stdout"] == result.stdout_text


def _logon_sandbox(cli: Cli, share: Path, name: str) -> None:
    started = cli(
        "run",
        "-d",
        "--name",
        name,
        "--map",
        f"{share}:C:\\data",
        "--logon-command",
        "type C:\\data\\oem850.txt",
    )
    assert started.code == 0, started.err
    from hcs_sandbox.sandbox.sandbox import Sandbox

    wait_for(lambda: "logon command exited" in Sandbox.get(name).logs())


def test_logs_decode_the_logon_output_with_the_encoding(cli: Cli, share: Path) -> None:
    _logon_sandbox(cli, share, "lenc")
    text = cli("logs", "--encoding", "cp850", "lenc")
    assert text.code == 0, text.err
    assert "\nDatenträger Größe café\n" in text.out
    as_json = cli("logs", "--json", "--encoding", "cp850", "lenc")
    assert as_json.code == 0, as_json.err
    logon = [e["line"] for e in as_json.json() if e["source"] == "logon"]
    assert logon == ["Datenträger Größe café"]
    # Without the option: UTF-8 with replacement, as before.
    assert "Datentr\ufffdger" in cli("logs", "lenc").out


def test_library_logs_take_the_encoding(cli: Cli, share: Path) -> None:
    _logon_sandbox(cli, share, "lib")
    from hcs_sandbox.sandbox.sandbox import Sandbox

    with Sandbox.get("lib") as sandbox:
        assert sandbox.logs("cp850").endswith("Datenträger Größe café\n")
        assert sandbox.logs().endswith("Datentr\ufffdger Gr\ufffd\ufffde caf\ufffd\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["exec", "--encoding", "nosuch", "x", "--", "cmd"], "unknown encoding 'nosuch'"),
        (["logs", "--encoding", "nosuch", "x"], "unknown encoding 'nosuch'"),
        (["run", "--encoding", "nosuch", "--", "cmd"], "unknown encoding 'nosuch'"),
        (["exec", "--encoding", "base64", "x", "--", "cmd"], "'base64' is not a text encoding"),
        (["exec", "--encoding", "utf-16", "x", "--", "cmd"], "'utf-16' cannot decode"),
        # Review RV37 F2: punycode decodes NULs but fails on guest output: refused up front.
        (["exec", "--encoding", "punycode", "x", "--", "cmd"], "'punycode' cannot decode"),
    ],
)
def test_a_bad_encoding_is_a_usage_error(cli: Cli, argv: list[str], message: str) -> None:
    result = cli(*argv)
    assert result.code == 2
    (line,) = result.err_lines
    assert f"argument --encoding: {message}" in line, line
    assert "cp850" in line  # what to give instead


def test_run_encoding_without_a_command_is_refused(cli: Cli) -> None:
    result = cli("run", "--encoding", "cp850", "--name", "noc")
    assert result.code == 2
    (line,) = result.err_lines
    assert "--encoding needs a COMMAND" in line, line
    assert cli("ls", "-aq").out.split() == []  # nothing was created


# ------------------------------------------------------------ 2. exec on a Windows console


class _Tty(io.RawIOBase):
    """A raw terminal stream that keeps each write's bytes in ``data``."""

    def __init__(self) -> None:
        super().__init__()
        self.data = b""

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return True

    def write(self, data: object) -> int:
        chunk = bytes(data)  # type: ignore[call-overload]
        self.data += chunk
        self.shown(chunk)
        return len(chunk)

    def shown(self, chunk: bytes) -> None:
        """What the terminal does with one write (nothing more here)."""


class _WindowsConsoleIO(_Tty):
    """A model of CPython's console stdout off Windows (``sys.stdout.buffer.raw`` is
    ``_io._WindowsConsoleIO`` on a console, PEP 528): winconsoleio.c converts each write's
    bytes on their own with ``MultiByteToWideChar(CP_UTF8, 0, ...)``, which turns an invalid
    or incomplete sequence into U+FFFD (review RV35 F2).  ``screen`` is what the console
    shows."""

    def __init__(self) -> None:
        super().__init__()
        self.screen = ""

    def shown(self, chunk: bytes) -> None:
        self.screen += chunk.decode("utf-8", "replace")


class _Terminal(_Tty):
    """A POSIX terminal: it shows the bytes it is given as UTF-8 (the locale's encoding)."""


def _stream(raw: io.RawIOBase) -> io.TextIOWrapper:
    # What Python makes of a console: UTF-8 text over a BufferedWriter over the raw stream.
    return io.TextIOWrapper(io.BufferedWriter(raw), encoding="utf-8", line_buffering=True)


class _FakeProcess:
    """A GuestProcess whose output arrives in the given pieces."""

    def __init__(self, chunks: list[OutputChunk]) -> None:
        self._chunks: Iterator[OutputChunk] = iter(chunks)

    def read(self, timeout: float | None = None) -> OutputChunk | None:
        return next(self._chunks, None)

    def wait(self, timeout: float | None = None) -> int:
        return 0


def _console(monkeypatch: pytest.MonkeyPatch) -> tuple[_WindowsConsoleIO, _WindowsConsoleIO]:
    """Model consoles as stdout and stderr (set in the test itself: pytest's capture puts its
    own streams back after the fixtures ran)."""
    out, err = _WindowsConsoleIO(), _WindowsConsoleIO()
    monkeypatch.setattr(sys, "stdout", _stream(out))
    monkeypatch.setattr(sys, "stderr", _stream(err))
    return out, err


def test_a_character_split_between_pipe_reads_reaches_a_console_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Valid UTF-8, cut by the reader inside 'ス' (and inside 'é' on stderr).  The code
    before wrote each piece to ``sys.stdout.buffer`` and flushed it, so the console showed
    ``'日本語テキ\\ufffd\\ufffd\\ufffdト'`` and ``'caf\\ufffd\\ufffd\\r\\n'``."""
    out, err = _console(monkeypatch)
    data = "日本語テキスト".encode()
    cut = data.index("ス".encode()) + 1
    accent = "café\r\n".encode()
    chunks = [
        OutputChunk("stdout", data[:cut]),
        OutputChunk("stderr", accent[:4]),  # 'caf' and the first byte of 'é'
        OutputChunk("stdout", data[cut:]),
        OutputChunk("stderr", accent[4:]),
    ]
    assert _pump(_FakeProcess(chunks), None) == 0  # type: ignore[arg-type]
    assert out.screen == "日本語テキスト"
    assert err.screen == "café\r\n"


def test_oem_bytes_reach_a_console_as_their_characters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """cp850 bytes, one at a time (a split cannot matter for a one-byte code page).  The code
    before had no --encoding; UTF-8 showed ``'Datentr\\ufffdger Gr\\ufffd\\ufffde
    caf\\ufffd'``."""
    out, _err = _console(monkeypatch)
    data = GERMAN.encode("cp850")
    chunks = [OutputChunk("stdout", data[i : i + 1]) for i in range(len(data))]
    assert _pump(_FakeProcess(chunks), None, "cp850") == 0  # type: ignore[arg-type]
    assert out.screen == GERMAN


def test_exec_encoding_to_a_console_through_main(
    cli_env: object,
    enc: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real verb: ``exec --encoding cp850`` of ``type`` on a (model) Windows console."""
    out, _err = _console(monkeypatch)
    assert main(["exec", "--encoding", "cp850", enc, "--", "type", "C:\\data\\oem850.txt"]) == 0
    assert out.screen == GERMAN


def test_an_incomplete_character_at_the_end_is_shown_as_a_replacement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kept: the process ended inside a character; the console shows U+FFFD for it."""
    out, _err = _console(monkeypatch)
    chunks = [OutputChunk("stdout", b"caf\xc3")]  # the process ended there
    assert _pump(_FakeProcess(chunks), None) == 0  # type: ignore[arg-type]
    assert out.screen == "caf\ufffd"


def test_encoding_on_a_posix_terminal_writes_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal that is not a Windows console gets text only with --encoding."""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stdout", _stream(terminal))
    data = GERMAN.encode("cp850")
    chunks = [OutputChunk("stdout", data[:8]), OutputChunk("stdout", data[8:])]
    assert _pump(_FakeProcess(chunks), None, "cp850") == 0  # type: ignore[arg-type]
    assert terminal.data == GERMAN.encode("utf-8")


def _to_a_file(monkeypatch: pytest.MonkeyPatch, codec: str | None) -> None:
    sink = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(sink, encoding="utf-8"))
    data = GERMAN.encode("cp850") + "ス".encode()
    chunks = [OutputChunk("stdout", data[:-1]), OutputChunk("stdout", data[-1:])]
    args = (None,) if codec is None else (None, codec)
    assert _pump(_FakeProcess(chunks), *args) == 0  # type: ignore[arg-type]
    sys.stdout.flush()
    assert sink.getvalue() == data


def test_a_file_or_pipe_gets_the_exact_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kept: not a terminal, the guest's bytes, split or invalid, exactly (``exec > file``)."""
    _to_a_file(monkeypatch, None)


def test_a_file_or_pipe_gets_the_exact_bytes_with_an_encoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--encoding does not decode what goes to a file or a pipe."""
    _to_a_file(monkeypatch, "cp850")


def test_run_command_to_a_console_uses_the_encoding(
    cli_env: object,
    share: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out, _err = _console(monkeypatch)
    argv = ["run", "--rm", "--encoding", "cp850", "--map", f"{share}:C:\\data"]
    assert main([*argv, "--", "type", "C:\\data\\oem850.txt"]) == 0
    assert out.screen == GERMAN


# ---------------------------------------------------------------------- 3. logs -f


def _follow(
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    steps: list[Callable[[], None]],
    *extra: str,
) -> Result:
    """``logs -f NAME``, one poll after each step (run while the verb waits between polls:
    ``time.sleep`` of the verb's own interval); after the last step, Ctrl+C."""
    interval = 0.0567  # the verb's polls sleep exactly this (at least 0.05); nothing else does
    real_sleep = time.sleep
    pending = list(steps)

    def sleep(seconds: float) -> None:
        if seconds != interval:
            real_sleep(seconds)
        elif pending:
            pending.pop(0)()
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", sleep)
    return cli("logs", "-f", "--interval", str(interval), *extra, name)


def _logon_log(cli: Cli, name: str) -> Path:
    started = cli("run", "-d", "--name", name, "--logon-command", "cmd /c echo line one")
    assert started.code == 0, started.err
    from hcs_sandbox.sandbox import logon
    from hcs_sandbox.sandbox.sandbox import Sandbox

    wait_for(lambda: "logon command exited" in Sandbox.get(name).logs())
    with Sandbox.get(name) as sandbox:
        return logon.logon_log_path(sandbox)


def _append(path: Path, data: bytes) -> Callable[[], None]:
    def step() -> None:
        with path.open("ab") as fh:
            fh.write(data)

    return step


def test_follow_prints_a_character_split_between_polls_once(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RV35's reproduction: ``caf\\xc3`` on disk at one poll, ``\\xa9 done`` at the next.  The
    code before printed ``next: caf\\ufffd`` and then the whole log again: every lifecycle
    line and ``line one`` twice."""
    path = _logon_log(cli, "fol")
    _append(path, b"next: caf\xc3")()
    followed = _follow(cli, monkeypatch, "fol", [_append(path, b"\xa9 done\r\n")])
    assert followed.code == 0, followed.err
    assert followed.out.count("\nline one\n") == 1, followed.out
    assert followed.out.count("Z created\n") == 1, followed.out
    assert "\ufffd" not in followed.out
    assert followed.out.endswith("line one\nnext: café done\n"), followed.out


def test_follow_keeps_crlf_split_between_polls_one_newline(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CR at one poll, LF at the next: ``\\n`` as ``logs`` shows CRLF, printed once.  The
    code before showed ``a\\r`` and then, as ``a\\n`` did not start with it, all again."""
    path = _logon_log(cli, "crlf")
    steps = [_append(path, b"a\r"), _append(path, b"\nb\r\n")]
    followed = _follow(cli, monkeypatch, "crlf", steps)
    assert followed.code == 0, followed.err
    assert followed.out.count("\nline one\n") == 1, followed.out
    assert followed.out.endswith("line one\na\nb\n"), followed.out
    assert "\r" not in followed.out


def test_follow_decodes_with_the_encoding(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _logon_log(cli, "f932")
    data = "表示 日本\r\n".encode("cp932")
    steps = [_append(path, data[:1]), _append(path, data[1:])]  # a lead byte alone first
    followed = _follow(cli, monkeypatch, "f932", steps, "--encoding", "cp932")
    assert followed.code == 0, followed.err
    assert followed.out.count("\nline one\n") == 1, followed.out
    assert followed.out.endswith("line one\n表示 日本\n"), followed.out


def test_follow_prints_a_rewritten_log_again(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kept: output shorter than what was shown (the file was rewritten) is all shown again."""
    path = _logon_log(cli, "rew")

    def rewrite() -> None:
        path.write_bytes(b"new\r\n")

    followed = _follow(cli, monkeypatch, "rew", [rewrite])
    assert followed.code == 0, followed.err
    assert followed.out.count("Z created\n") == 2, followed.out
    assert followed.out.count("\nline one\n") == 1, followed.out
    assert followed.out.endswith("---- logon command output ----\nnew\n"), followed.out


def test_follow_ends_with_what_is_held_once_the_sandbox_stopped(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept: a character that stays incomplete is shown as U+FFFD once the sandbox stopped."""
    path = _logon_log(cli, "end")
    _append(path, b"caf\xc3")()
    assert cli("stop", "end").code == 0
    followed = _follow(cli, monkeypatch, "end", [lambda: None])
    assert followed.code == 0, followed.err
    assert followed.out.endswith("line one\ncaf\ufffd"), followed.out


def test_library_read_log_from_an_offset(cli: Cli) -> None:
    path = _logon_log(cli, "off")
    from hcs_sandbox.sandbox.sandbox import Sandbox

    with Sandbox.get("off") as sandbox:
        whole = sandbox.read_log()
        assert whole.start == 0
        assert whole.output == path.read_bytes() == b"line one\r\n"
        assert whole.size == len(whole.output)
        assert whole.text() == sandbox.logs()
        _append(path, b"caf\xc3\xa9")()
        more = sandbox.read_log(whole.size)
        assert (more.head, more.output, more.start) == (whole.head, b"caf\xc3\xa9", whole.size)
        assert more.size == whole.size + 5
        path.write_bytes(b"x")  # rewritten, shorter than the offset: from the start
        again = sandbox.read_log(more.size)
        assert (again.output, again.start, again.size) == (b"x", 0, 1)


def test_follow_prints_a_lifecycle_line_after_the_output_once(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lifecycle line stored after output was shown (here: the sandbox stopped) is printed
    once, on its own line after that output.  The code before printed the whole log again
    (every lifecycle line and ``line one`` twice), as ``--json -f`` never did."""
    path = _logon_log(cli, "lcl")
    _append(path, b"partial")()

    def stop() -> None:  # through the library: a nested cli() would take over the capture
        from hcs_sandbox.sandbox.sandbox import Sandbox

        with Sandbox.get("lcl") as sandbox:
            sandbox.stop(timeout=5.0)

    followed = _follow(cli, monkeypatch, "lcl", [stop])
    assert followed.code == 0, followed.err
    assert followed.out.count("Z created\n") == 1, followed.out
    assert followed.out.count("\nline one\n") == 1, followed.out
    stopped = [line for line in followed.out.splitlines() if line.endswith("Z stopped")]
    assert len(stopped) == 1, followed.out
    tail = followed.out.split("line one\npartial", 1)[1]
    assert tail.startswith("\n"), followed.out  # the new line starts on a line of its own
    assert "stopped" in tail, followed.out


def test_a_terminal_that_cannot_show_a_character_gets_an_escape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review RV37 F1: ``exec --encoding cp850`` on an ASCII terminal ended in "internal
    error" (UnicodeEncodeError) and lost the rest of the output; now the character is
    written as an escape and the output goes on."""
    from hcs_sandbox.cli.output import GuestOutput

    class Terminal(io.TextIOWrapper):
        def isatty(self) -> bool:
            return True

    raw = io.BytesIO()
    terminal = Terminal(raw, encoding="ascii", errors="strict")
    out = GuestOutput(terminal, "cp850")
    assert out.decodes
    out.write("Datenträger\r\n".encode("cp850"))
    out.write(b"next\r\n")
    out.finish()
    terminal.flush()
    assert raw.getvalue() == b"Datentr\\xe4ger\r\nnext\r\n"


@pytest.mark.parametrize("bad", ["nosuch", "base64", "utf-16", "punycode"])
def test_the_library_refuses_a_bad_encoding_with_a_spec_error(bad: str) -> None:
    """Review RV37 F4: ``ExecResult.text``/``to_dict`` and ``Sandbox.logs`` raised bare
    LookupError/UnicodeDecodeError (or gave mojibake for utf-16): one SpecError now."""
    from hcs_sandbox import errors
    from hcs_sandbox.sandbox.guest import ExecResult

    result = ExecResult(exit_code=0, stdout=b"\x84", stderr=b"")
    with pytest.raises(errors.SpecError) as caught:
        result.to_dict(bad)
    assert caught.value.field == "encoding"
    assert "cp850" in (caught.value.remedy or "")


class _ScriptedLog:
    """A sandbox whose log is read from a script: each ``read_log`` returns the next
    ``(head, whole output)``; ``state`` is running until the script's last read."""

    def __init__(self, script: list[tuple[str, bytes]]) -> None:
        self.script = script
        self.reads = 0

    @property
    def state(self) -> str:
        return "running" if self.reads < len(self.script) else "stopped"

    def read_log(self, start: int = 0) -> Any:
        from hcs_sandbox.sandbox.logon import LogRead

        head, output = self.script[min(self.reads, len(self.script) - 1)]
        self.reads += 1
        start = start if start <= len(output) else 0
        return LogRead(head=head, output=output[start:], start=start, size=len(output))


def test_follow_from_an_empty_log_keeps_the_heads_lines_before_the_output(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review RV38 #1: following from before the logon command wrote anything, the poll that
    brings the first output also brings ``started``, ``logon command started`` and the
    separator: they come first, as ``--json -f`` has them (the output came first, then
    those lines, before the fix).  A line stored after output was shown comes after it."""
    import argparse

    from hcs_sandbox.cli import logs

    created = "2026-11-26T10:00:00Z created\n"
    started = created + "2026-11-26T10:00:01Z started\n" + logs.LOGON_SEPARATOR + "\n"
    stopped = (
        created
        + "2026-11-26T10:00:01Z started\n"
        + "2026-11-26T10:00:05Z stopped\n"
        + logs.LOGON_SEPARATOR
        + "\n"
    )
    sandbox = _ScriptedLog([(created, b""), (started, b"hi\r\n"), (stopped, b"hi\r\nbye\r\n")])
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    args = argparse.Namespace(encoding=None, interval=0.05)
    assert logs._follow(args, sandbox) == 0
    assert capsys.readouterr().out == (
        started + "hi\n" + "bye\n" + "2026-11-26T10:00:05Z stopped\n"
    )


def test_logs_on_a_terminal_that_cannot_show_a_character_gets_an_escape(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review RV38 #2: ``logs`` to a terminal in ASCII ended in "internal error" on the
    logon output's first non-ASCII character; it is written as an escape now."""
    path = _logon_log(cli, "asc")
    _append(path, "café\r\n".encode())()

    raw, terminal = _ascii_terminal(monkeypatch)
    assert main(["logs", "asc"]) == 0
    terminal.flush()
    assert raw.getvalue().endswith(b"line one\ncaf\\xe9\n")


def test_follow_on_a_terminal_that_cannot_show_a_character(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review RV39: ``logs -f`` writes through output.write_text too (only ``logs`` was
    tested); and a log rewritten after output was shown is printed whole again, its
    lifecycle lines before its output (the flag that orders them is reset)."""
    import argparse

    from hcs_sandbox.cli import logs

    head = "2026-11-26T10:00:00Z created\n" + logs.LOGON_SEPARATOR + "\n"
    later = "2026-11-26T10:00:00Z created\n2026-11-26T10:00:09Z started\n"
    later += logs.LOGON_SEPARATOR + "\n"
    script = [
        (head, "caf\u00e9\r\n".encode()),
        (head, b""),  # rewritten: shorter than what was shown
        (head, b""),  # (the whole log read again: no output yet)
        (later, b"new\r\n"),  # a lifecycle line and the first output, in one poll
    ]
    sandbox = _ScriptedLog(script)

    raw, terminal = _ascii_terminal(monkeypatch)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    assert logs._follow(argparse.Namespace(encoding=None, interval=0.05), sandbox) == 0
    terminal.flush()
    text = head.encode()
    started = b"2026-11-26T10:00:09Z started\n"
    assert raw.getvalue() == text + b"caf\\xe9\n" + text + started + b"new\n"


class _AsciiTerminal(io.TextIOWrapper):
    """A terminal whose encoding is ASCII (main() leaves a terminal's stdout as it is)."""

    def isatty(self) -> bool:
        return True


def _ascii_terminal(monkeypatch: pytest.MonkeyPatch) -> tuple[io.BytesIO, io.TextIOWrapper]:
    """sys.stdout as an ASCII terminal: (the bytes written, the stream)."""
    raw = io.BytesIO()
    terminal = _AsciiTerminal(raw, encoding="ascii", errors="strict")
    monkeypatch.setattr(sys, "stdout", terminal)
    return raw, terminal
