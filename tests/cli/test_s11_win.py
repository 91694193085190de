"""Round s11, task "win": review RV29's findings on the CLI on a Windows console.

1. a redirected stdout whose encoding lacks a character (Windows: the ANSI code page, with
   ``errors='strict'``) writes it as a ``\\uXXXX`` escape instead of ending in "internal
   error" with nothing written; ``--json`` output stays the same valid JSON (ASCII);
2. a guest exit code of 0x80000000 or more is returned as a signed 32-bit number on
   Windows (Python 3.10/3.11 turn the unsigned form into 0xFFFFFFFF: CPython gh-125842);
3. every wait of the main thread in ``exec``, ``run -- COMMAND`` and ``stop`` is cut into
   slices of at most ``SLICE`` seconds, so that Ctrl+C interrupts it on Windows before
   Python 3.14 (CPython gh-125541);
5. the progress line uses no escape sequence (``ESC [ K`` shows as ``←[K`` in a classic
   console): ``\\r`` and spaces over the rest of the previous text.

(4, the doctor's reading of a localized ``sc query``: tests/sandbox/test_doctor_sc_locale.py.)
Each test fails on the code before the change (1843ecf).
"""

from __future__ import annotations

import io
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_support import CliEnv, Result, cli_command

from hcs_sandbox.cli import output
from hcs_sandbox.cli.common import host_exit_code
from hcs_sandbox.cli.main import main
from hcs_sandbox.hcs._slices import SLICE

Cli = Callable[..., Result]

# Text outside cp1252, as RV29 used: CJK, a check mark, katakana.
GUEST_TEXT = "完了 ✓"
FOLDER = "データ"


def _cp1252(cli_env: CliEnv, *argv: str) -> subprocess.CompletedProcess[bytes]:
    """The CLI in a new process whose redirected stdout is cp1252 with errors='strict': what
    Python gives a pipe or a file on a Windows host whose ANSI code page is 1252."""
    env = dict(cli_env.env, PYTHONIOENCODING="cp1252")
    env.pop("PYTHONUTF8", None)
    return subprocess.run(
        [*cli_command(), *argv], capture_output=True, env=env, timeout=60, check=False
    )


# ----------------------------------------------------------------------------- 1. stdout


def test_logs_of_non_code_page_guest_text_to_a_redirected_stdout(cli: Cli, cli_env: CliEnv) -> None:
    assert cli("create", "--name", "enc1", "--logon-command", f"cmd /c echo {GUEST_TEXT}").code == 0
    assert cli("start", "enc1").code == 0
    done = _cp1252(cli_env, "logs", "enc1")
    err = done.stderr.decode("cp1252", "replace")
    assert done.returncode == 0, err
    assert "internal error" not in err
    out = done.stdout.decode("cp1252")
    assert "\\u5b8c\\u4e86 \\u2713" in out  # the guest's line, escaped, not lost
    assert "logon command exited with code 0" in out  # and what follows it


def test_plan_of_a_non_code_page_folder_to_a_redirected_stdout(
    cli_env: CliEnv, tmp_path: Path
) -> None:
    folder = tmp_path / FOLDER
    folder.mkdir()
    done = _cp1252(cli_env, "plan", "--map", f"{folder}:C:\\data")
    assert done.returncode == 0, done.stderr.decode("cp1252", "replace")
    assert b"internal error" not in done.stderr
    assert f"{tmp_path}/\\u30c7\\u30fc\\u30bf -> C:\\data".encode("cp1252") in done.stdout


def test_json_output_is_the_same_ascii_document_whatever_the_encoding(
    cli_env: CliEnv, tmp_path: Path
) -> None:
    # json.dumps escapes every non-ASCII character (ensure_ascii): the document is ASCII,
    # so backslashreplace never acts on it and it stays valid JSON with the exact name.
    folder = tmp_path / FOLDER
    folder.mkdir()
    argv = ("plan", "--json", "--map", f"{folder}:C:\\data")
    done = _cp1252(cli_env, *argv)
    assert done.returncode == 0, done.stderr.decode("cp1252", "replace")
    utf8 = subprocess.run(
        [*cli_command(), *argv],
        capture_output=True,
        env=dict(cli_env.env, PYTHONIOENCODING="utf-8"),
        timeout=60,
        check=True,
    )
    assert done.stdout == utf8.stdout
    assert done.stdout.isascii()
    assert str(folder) in json.dumps(json.loads(done.stdout.decode("ascii")), ensure_ascii=False)


def test_main_restores_the_streams_error_handler(cli_env: CliEnv, tmp_path: Path) -> None:
    folder = tmp_path / FOLDER
    folder.mkdir()
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="cp1252", errors="strict")
    saved = sys.stdout
    sys.stdout = stream
    try:
        code = main(["plan", "--map", f"{folder}:C:\\data"])
    finally:
        sys.stdout = saved
    assert code == 0
    assert stream.errors == "strict"  # as before main(): nothing lasting
    stream.flush()
    assert b"\\u30c7\\u30fc\\u30bf -> C:\\data" in raw.getvalue()


class _Tty(io.TextIOWrapper):
    def isatty(self) -> bool:
        return True


def test_another_error_handler_is_left_alone_and_a_terminal_is_made_tolerant() -> None:
    from hcs_sandbox.cli.main import _tolerant_stdout

    tty = _Tty(io.BytesIO(), encoding="cp1252", errors="strict")
    undo = _tolerant_stdout(tty)  # a terminal in a narrow encoding fails as a pipe does
    assert undo is not None
    assert tty.errors == "backslashreplace"
    undo()
    assert tty.errors == "strict"
    escaping = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="surrogateescape")
    assert _tolerant_stdout(escaping) is None
    assert escaping.errors == "surrogateescape"
    assert _tolerant_stdout(io.StringIO()) is None  # errors is None (cannot fail anyway)
    pipe = io.TextIOWrapper(io.BytesIO(), encoding="cp1252", errors="strict")
    undo = _tolerant_stdout(pipe)
    assert undo is not None
    assert pipe.errors == "backslashreplace"
    undo()
    assert pipe.errors == "strict"


def test_prune_on_a_terminal_whose_encoding_lacks_a_character_of_a_path(
    cli_env: CliEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Human output that is not written through ``output.write_text`` (``prune``'s lines)
    to a terminal in Latin-1: a path outside it is escaped, not an "internal error"
    (the terminal was left ``strict`` before)."""
    state_dir = cli_env.root / FOLDER / "state"
    orphan = state_dir / "sandboxes" / "0d9c5f0e-1111-4222-8333-944455556666"
    orphan.mkdir(parents=True)
    (orphan / "sandbox.vhdx").write_bytes(b"")
    monkeypatch.setenv("HCS_SANDBOX_STATE_DIR", str(state_dir))
    raw = io.BytesIO()
    tty = _Tty(raw, encoding="latin-1", errors="strict")
    saved = sys.stdout
    sys.stdout = tty
    try:
        code = main(["prune", "--dry-run"])
    finally:
        sys.stdout = saved
    assert code == 0
    assert tty.errors == "strict"  # as before main()
    tty.flush()
    out = raw.getvalue().decode("latin-1")
    assert f"{cli_env.root}/\\u30c7\\u30fc\\u30bf/state/sandboxes/" in out
    assert "would remove" in out


# -------------------------------------------------------------------------- 2. exit codes

# (guest code, the signed 32-bit form): an access violation, a guest Ctrl+C, -1, the edges.
SIGNED = [
    (0xC0000005, -1073741819),
    (0xC000013A, -1073741510),
    (-1, -1),
    (0xFFFFFFFF, -1),
    (0x80000000, -(2**31)),
    (0x7FFFFFFF, 2**31 - 1),
    (9009, 9009),
    (0, 0),
]


@pytest.mark.parametrize(("code", "signed"), SIGNED)
def test_guest_code_is_a_signed_32_bit_status_on_windows(
    monkeypatch: pytest.MonkeyPatch, code: int, signed: int
) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    result = host_exit_code(code)
    assert result == signed
    assert -(2**31) <= result < 2**31  # what a C long holds on Windows: every Python keeps it
    assert result & 0xFFFFFFFF == code & 0xFFFFFFFF  # the same 32 bits: the same exit code


@pytest.mark.parametrize(
    ("code", "status"), [(0, 0), (1, 1), (255, 255), (256, 1), (0xC0000005, 1), (-1, 1)]
)
def test_a_posix_status_is_the_code_when_it_fits_else_1(
    monkeypatch: pytest.MonkeyPatch, code: int, status: int
) -> None:
    # POSIX exit statuses have 8 bits: a guest code that does not fit is 1, not its low byte
    # (0xC0000005 would otherwise exit 5, a different failure).  (Replaces a test of
    # CPython's own sys.exit behaviour, which no change here could fail: review RV33 #3.)
    monkeypatch.setattr(sys, "platform", "linux")
    assert host_exit_code(code) == status


# ------------------------------------------------------------------------ 3. Ctrl+C waits


@pytest.fixture
def main_thread_waits(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Every ``Queue.get``, ``Event.wait`` (and the wait of ``Watch``'s latch, which stands
    for an ``Event``) and ``Thread.join`` hcs-sandbox's own code makes in the main thread,
    with the timeout it asked for.  Not recorded: other threads, the
    simulator (it stands for HCS: its ``HcsWaitForOperationResult`` waits as long as the
    call's timeout, as the real one does) and the standard library's own waits
    (``Thread.start`` waits for the new thread to run)."""
    seen: list[tuple[str, Any]] = []
    main = threading.main_thread()
    get, wait, join = queue.Queue.get, threading.Event.wait, threading.Thread.join
    package = os.sep + "hcs_sandbox" + os.sep

    def record(what: str, timeout: Any) -> None:
        caller = sys._getframe(2).f_code.co_filename  # who called Queue.get, ...
        ours = package in caller and package + "sim" + os.sep not in caller
        if threading.current_thread() is main and ours:
            seen.append((what, timeout))

    def rec_get(self: queue.Queue[Any], block: bool = True, timeout: float | None = None) -> Any:
        if block:
            record("Queue.get", timeout)
        return get(self, block, timeout)

    def rec_wait(self: threading.Event, timeout: float | None = None) -> bool:
        record("Event.wait", timeout)
        return wait(self, timeout)

    def rec_join(self: threading.Thread, timeout: float | None = None) -> None:
        record("Thread.join", timeout)
        join(self, timeout)

    from hcs_sandbox.hcs import _watch

    latch_wait = _watch._Latch.wait

    def rec_latch_wait(self: Any, timeout: float | None = None) -> bool:
        record("Event.wait", timeout)
        return latch_wait(self, timeout)

    monkeypatch.setattr(queue.Queue, "get", rec_get)
    monkeypatch.setattr(threading.Event, "wait", rec_wait)
    monkeypatch.setattr(_watch._Latch, "wait", rec_latch_wait)
    monkeypatch.setattr(threading.Thread, "join", rec_join)
    return seen


#: Bounded waits made while cleaning up (a closing GuestProcess joins its readers for up to
#: 5 s, communicate() its stdin writer for 1 s): not sliced on purpose (see guest.py).
CLEAN_UP = {("Thread.join", 5.0), ("Thread.join", 1.0)}


@pytest.mark.parametrize(
    "argv",
    [
        ("exec", "web", "--", "cmd", "/c", "echo hi"),
        ("exec", "--json", "web", "--", "cmd", "/c", "echo hi"),
        ("run", "--rm", "--", "cmd", "/c", "echo hi"),
        ("stop", "web"),
    ],
    ids=["exec", "exec-json", "run-command", "stop"],
)
def test_the_main_thread_waits_in_slices(
    cli: Cli,
    web: str,
    main_thread_waits: list[tuple[str, Any]],
    argv: tuple[str, ...],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if argv[0] == "stop":
        # The simulator sends the exit event before the shutdown's operation completes, so
        # stop finds the exit known and waits for nothing (s13-teardown); HCS may send it
        # later, once the guest has shut down.  That order here: the exit event comes
        # 50 ms after it was sent, and stop waits for it.
        from hcs_sandbox.hcs import _watch

        on_event = _watch.Watch.on_event

        def late_exit(self: Any, event: Any) -> None:
            if event.type == self._exit_type:
                threading.Timer(0.05, on_event, (self, event)).start()
            else:
                on_event(self, event)

        monkeypatch.setattr(_watch.Watch, "on_event", late_exit)
    main_thread_waits.clear()  # not the waits of making "web"
    result = cli(*argv)
    assert result.code == 0, result.err
    waits = [w for w in main_thread_waits if w not in CLEAN_UP]
    assert waits, "the verb waited for nothing: the probe is not where the waits are"
    long = [w for w in waits if w[1] is None or w[1] > SLICE]
    assert not long, f"waits Ctrl+C cannot interrupt on Windows before Python 3.14: {long}"


# ------------------------------------------------------------------------------ 5. progress


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """``time.monotonic`` as output.py sees it on THIS thread: the values in the list, in
    turn.  ``output.time`` is the ``time`` module itself, so other threads (the simulator's
    workers and exit watchers, still winding down after an earlier test) call the same
    function: they get the real clock, not the test's values (they used the list up once:
    IndexError)."""
    values = [100.0, 100.0, 101.5, 112.25]
    real = time.monotonic
    me = threading.get_ident()
    monkeypatch.setattr(
        output.time,
        "monotonic",
        lambda: values.pop(0) if threading.get_ident() == me else real(),
    )
    return values


def test_progress_writes_no_escape_sequence(clock: list[float]) -> None:
    # Another thread reading the clock meanwhile takes none of the test's values.
    other = threading.Thread(target=output.time.monotonic)
    other.start()
    other.join()
    assert len(clock) == 4
    stream = io.StringIO()
    progress = output.Progress(stream, enabled=True)
    progress("creating the scratch disk (copy)")  # 42 characters with the time
    progress("planning")  # 18: 24 spaces over the rest of the text before
    progress("starting")  # 18 again: nothing to cover
    progress.done()  # 18 spaces, back to the start of the line
    assert stream.getvalue() == (
        "\r[  0.00s] creating the scratch disk (copy)"
        "\r[  1.50s] planning" + " " * 24 + "\r[ 12.25s] starting"
        "\r" + " " * 18 + "\r"
    )


def test_progress_leaves_a_clean_line_on_a_console_without_vt() -> None:
    # RV29's screen model: a console that understands "\r" and nothing else.
    stream = io.StringIO()
    progress = output.Progress(stream, enabled=True)
    for phase in ("creating the scratch disk", "granting VM access", "starting"):
        progress(phase)
        line = _screen(stream.getvalue())
        assert line.startswith("[")
        assert line.rstrip().endswith(f"s] {phase}")
    progress.done()
    assert _screen(stream.getvalue()).strip() == ""
    assert "\x1b" not in stream.getvalue()


def _screen(raw: str) -> str:
    line: list[str] = []
    col = 0
    for ch in raw:
        if ch == "\r":
            col = 0
            continue
        if col < len(line):
            line[col] = ch
        else:
            line.append(ch)
        col += 1
    return "".join(line)


def test_progress_never_wraps_and_says_nothing_when_nothing_was_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((40, 25)))

    class Console(io.StringIO):
        def fileno(self) -> int:
            return 2

    stream = Console()
    progress = output.Progress(stream, enabled=True)
    progress.done()
    assert stream.getvalue() == ""  # no phase shown: nothing to clear
    progress("re-applying the ports published with 'publish' on the new endpoint")
    assert len(stream.getvalue()) == 1 + 39  # "\r" and one column less than the terminal


def test_progress_is_silent_when_stderr_is_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = output.Progress(stream)
    progress("planning")
    progress.done()
    assert stream.getvalue() == ""


def test_progress_padding_never_wraps_on_a_terminal_made_narrower(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A phase shown on a 100-column terminal, then the window made 40 columns wide: the
    # next write (and done()'s) pads to at most 40 columns, or the padding would wrap onto
    # a second row that "\r" cannot reach (review RV33 #2).
    widths = [100]
    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((widths[0], 25)))

    class Console(io.StringIO):
        def fileno(self) -> int:
            return 2

    stream = Console()
    progress = output.Progress(stream, enabled=True)
    progress("re-applying the ports published with 'publish' on the new endpoint")
    widths[0] = 40
    before = len(stream.getvalue())
    progress("starting")
    assert len(stream.getvalue()) - before == 1 + 39
    before = len(stream.getvalue())
    progress.done()
    assert len(stream.getvalue()) - before <= 1 + 39 + 1


def test_overlapping_main_calls_keep_stdout_tolerant_until_the_last_returns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two main() calls in one process (threads of an embedding program): the first to
    # return must not put 'strict' back under the other, still writing (review RV33 #1).
    from hcs_sandbox.cli import main as main_module

    stream = io.TextIOWrapper(io.BytesIO(), encoding="cp1252", errors="strict")
    monkeypatch.setattr(sys, "stdout", stream)
    a_started, b_started, a_done = threading.Event(), threading.Event(), threading.Event()
    seen: list[str | None] = []

    def fake_main(argv: Any) -> int:
        if argv == ["a"]:
            a_started.set()
            assert b_started.wait(10)
        else:
            assert a_started.wait(10)
            b_started.set()
            assert a_done.wait(10)
            seen.append(stream.errors)
        return 0

    monkeypatch.setattr(main_module, "_main", fake_main)

    def run_a() -> None:
        main(["a"])
        a_done.set()

    threads = [threading.Thread(target=run_a), threading.Thread(target=main, args=(["b"],))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert seen == ["backslashreplace"]
    assert stream.errors == "strict"  # restored once both returned


def test_a_main_call_after_stdout_was_replaced_makes_its_own_stream_tolerant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review RV36 #3: a main() running with stream A; the program sets sys.stdout to B and
    calls main() again: B is tolerant during that call (it stayed strict before), and each
    stream is restored when its last call returns."""
    from hcs_sandbox.cli import main as main_module

    first = io.TextIOWrapper(io.BytesIO(), encoding="cp1252", errors="strict")
    second = io.TextIOWrapper(io.BytesIO(), encoding="cp1252", errors="strict")
    monkeypatch.setattr(sys, "stdout", first)
    a_started, b_done = threading.Event(), threading.Event()
    seen: list[str | None] = []

    def fake_main(argv: Any) -> int:
        if argv == ["a"]:
            a_started.set()
            assert b_done.wait(10)
        else:
            seen.append(sys.stdout.errors)
        return 0

    monkeypatch.setattr(main_module, "_main", fake_main)
    thread = threading.Thread(target=main, args=(["a"],))
    thread.start()
    assert a_started.wait(10)
    monkeypatch.setattr(sys, "stdout", second)
    main(["b"])
    b_done.set()
    thread.join(20)
    assert seen == ["backslashreplace"]
    assert first.errors == "strict"
    assert second.errors == "strict"


class _AsciiTerminal(io.TextIOWrapper):
    """A terminal whose encoding is ASCII (a POSIX locale, or a Windows console with
    PYTHONLEGACYWINDOWSSTDIO): main() leaves a terminal's stdout as it is."""

    def isatty(self) -> bool:
        return True


def test_plan_and_doctor_on_a_terminal_that_cannot_show_a_host_path(
    cli_env: CliEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review RV39: ``plan --map`` of a folder named in another script, and ``doctor`` with
    such a state directory, ended in "internal error" on an ASCII terminal; the path is
    written with escapes now (as guest text is: output.write_text)."""
    folder = tmp_path / FOLDER
    folder.mkdir()
    raw = io.BytesIO()
    terminal = _AsciiTerminal(raw, encoding="ascii", errors="strict")
    monkeypatch.setattr(sys, "stdout", terminal)
    assert main(["plan", "--map", f"{folder}:C:\\data"]) == 0
    terminal.flush()
    assert b"\\u30c7\\u30fc\\u30bf -> C:\\data" in raw.getvalue()

    state = tmp_path / FOLDER / "state"
    monkeypatch.setenv("HCS_SANDBOX_STATE_DIR", str(state))
    raw.seek(0)
    raw.truncate()
    assert main(["doctor"]) in (0, 1)  # the checks' outcome is not the point here
    terminal.flush()
    assert b"\\u30c7\\u30fc\\u30bf" in raw.getvalue()
