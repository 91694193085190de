"""``hcs-sandbox exec [OPTIONS] NAME -- COMMAND [ARG...]``: run a command inside a sandbox.

The output streams as it arrives (guest stdout to stdout, guest stderr to stderr) and the
verb exits with the guest process's exit code.  ``-i`` forwards this terminal's stdin;
``-t`` gives the process a pseudo console (``EmulateConsole``; its stderr is merged into
stdout, as HCS documents).  ``--timeout`` kills the guest process and exits 124.

The command words are joined into one Windows command line with the ``CommandLineToArgvW``
quoting rules; cmd.exe metacharacters are not escaped, so ``-- cmd /c "echo a & echo b"``
runs both echos.

Exit codes: the guest's (on non-Windows hosts a code outside 0–255 becomes 1, since POSIX
exit statuses have 8 bits); 124 timeout; 125 the sandbox stopped while the command ran
(killed, stopped or removed meanwhile: ``SandboxExitedError``); 130 interrupted; 2 bad input
or no such sandbox; 1 HCS failure; 3 HCS unavailable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hcs_sandbox.sandbox.guest import GuestProcess


def register(subparsers: Any) -> argparse.ArgumentParser:
    from hcs_sandbox.cli.common import add_encoding_option, seconds
    from hcs_sandbox.cli.main import add_global_options

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "exec",
        help="run a command inside a running sandbox and stream its output",
        description="Run a command inside a running sandbox. Output streams as it arrives; "
        "the exit code is the guest process's. The COMMAND words are quoted for the C "
        "runtime (CommandLineToArgvW), not for cmd.exe: cmd.exe metacharacters "
        "(& | < > ^ %) are not escaped, and a word without spaces is passed unquoted, so "
        "after 'cmd /c' a word holding '&' or '|' (as it is, or after a '\"') can run more "
        "commands in the guest; pass a cmd script as one word "
        "('cmd /c \"echo a & echo b\"'), see docs/exec.md.",
        epilog="example: hcs-sandbox exec web -- cmd /c dir C:\\",
    )
    parser.add_argument(
        "-i", "--interactive", action="store_true", help="forward stdin to the command"
    )
    parser.add_argument(
        "-t",
        "--tty",
        action="store_true",
        help="give the command a pseudo console (for interactive shells; stderr is merged)",
    )
    parser.add_argument(
        "-e",
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set an environment variable for the command (repeatable)",
    )
    parser.add_argument("-w", "--workdir", metavar="DIR", help="guest working directory")
    parser.add_argument(
        "-u", "--user", metavar="USER", help="guest user to run as (default: the guest's)"
    )
    parser.add_argument(
        "--timeout",
        type=seconds,
        metavar="SECONDS",
        help="kill the command after this many seconds and exit 124",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="collect the output and print one JSON document (exit_code, stdout, stderr)",
    )
    add_encoding_option(parser, what="the command's output, for --json and a terminal")
    parser.add_argument("name", metavar="NAME", help="the sandbox (name or id)")
    parser.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        metavar="-- COMMAND [ARG...]",
        help="the command to run in the guest",
    )
    add_global_options(parser, suppress=True)
    parser.set_defaults(handler=handle)
    _keep_separator(parser)
    return parser


def _keep_separator(parser: argparse.ArgumentParser) -> None:
    """Keep the first ``--`` in ``command`` (argparse drops it before a REMAINDER), so that
    :func:`_command` tells ``NAME -- -x`` (a guest word) from ``NAME -x`` (an option written
    after NAME)."""
    original = parser.parse_known_args

    def parse_known_args(
        args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        words = list(sys.argv[1:] if args is None else args)
        after: list[str] | None = None
        if "--" in words:
            cut = words.index("--")
            words, after = words[:cut], words[cut + 1 :]
        ns, extra = original(words, namespace)
        if after is not None:
            ns.command = [*ns.command, "--", *after]
        return ns, extra

    setattr(parser, "parse_known_args", parse_known_args)  # noqa: B010 - instance override


def _command(args: argparse.Namespace) -> list[str]:
    from hcs_sandbox.errors import SpecError

    words = list(args.command)
    if words and words[0] == "--":
        words = words[1:]
    elif words and words[0].startswith("-"):
        raise SpecError(
            f"option {words[0]!r} after NAME: options go before NAME",
            field="command",
            value=words[0],
            remedy="hcs-sandbox exec [OPTIONS] NAME -- COMMAND",
        )
    if not words:
        raise SpecError(
            "no command given",
            field="command",
            value=None,
            remedy=f"write it after the name: hcs-sandbox exec {args.name} -- cmd /c ver",
        )
    return words


def _check_workdir(workdir: str | None) -> None:
    """``-w/--workdir`` through the library's check (``process_parameters``, which
    ``Sandbox.exec`` applies), before the sandbox is opened; a refusal names the flag and
    quotes its value as typed, not the API's ``working directory``: empty, relative, a UNC
    path without a server and a share (a full UNC, ``\\\\?\\`` or ``\\\\.\\`` path is passed on),
    or a name Windows forbids (``hostpath.workdir_problem``), exit 2."""
    if workdir is None:
        return
    from hcs_sandbox.cli.common import quoted
    from hcs_sandbox.errors import SpecError
    from hcs_sandbox.sandbox.guest import process_parameters

    try:
        process_parameters("cmd", workdir=workdir)
    except SpecError as exc:
        if exc.field != "workdir":  # pragma: no cover - only the workdir is given
            raise
        raise SpecError(
            f"invalid --workdir {quoted(workdir)}: {exc.reason or exc.message}",
            field=exc.field,
            value=exc.value,
            allowed=exc.allowed,
            remedy=exc.remedy,
        ) from exc


def handle(args: argparse.Namespace) -> int:
    from hcs_sandbox.cli.common import parse_key_value
    from hcs_sandbox.sandbox.sandbox import Sandbox

    words = _command(args)
    env = dict(parse_key_value(e, option="--env") for e in args.env)
    _check_workdir(args.workdir)
    if args.json and (args.tty or args.interactive):
        from hcs_sandbox.errors import SpecError

        raise SpecError(
            "--json collects the output and cannot be combined with -i or -t",
            field="json",
            value=True,
        )
    from hcs_sandbox.cli.output import notice_if_simulated

    sandbox = Sandbox.get(args.name)
    notice_if_simulated(sandbox.simulated)
    try:
        if args.json:
            return _run_json(sandbox, words, env, args)
        return _run_streaming(sandbox, words, env, args)
    finally:
        sandbox.close()


def _run_json(sandbox: Any, words: list[str], env: dict[str, str], args: argparse.Namespace) -> int:
    """``--json``: the result object, ``"timed_out": false``.  When ``--timeout`` expires
    the object is printed all the same, with the output collected until then,
    ``"timed_out": true``, ``"killed"`` (the guest process was terminated) and
    ``"exit_code": null`` (the guest's own code is unknown); then the error line on stderr
    and exit 124, as without --json (review RV7a finding 9)."""
    import time

    from hcs_sandbox.cli.common import host_exit_code
    from hcs_sandbox.cli.output import print_json, with_simulated
    from hcs_sandbox.errors import ExecTimeoutError, SandboxExitedError
    from hcs_sandbox.sandbox.guest import ExecResult, list2cmdline

    began = time.monotonic()

    def print_partial(exc: SandboxExitedError | ExecTimeoutError, **fields: object) -> None:
        """The object all the same, with the output until then; the guest's own code is
        unknown (null) and ``fields`` say why; the caller then raises (the error line)."""
        partial = ExecResult(
            exit_code=-1,
            stdout=exc.stdout,
            stderr=exc.stderr,
            duration=time.monotonic() - began,
            command_line=list2cmdline(words),
        ).to_dict(args.encoding or "utf-8")
        partial.update(exit_code=None, **fields)
        print_json(with_simulated(partial, sandbox.simulated))

    try:
        result = sandbox.exec(
            words, timeout=args.timeout, env=env or None, workdir=args.workdir, user=args.user
        )
    except SandboxExitedError as exc:
        print_partial(exc, timed_out=False, sandbox_exited=True)  # then exit 125
        raise
    except ExecTimeoutError as exc:
        print_partial(exc, timed_out=True, timeout=exc.timeout, killed=exc.killed)
        raise
    out = result.to_dict(args.encoding or "utf-8")
    print_json(with_simulated({**out, "timed_out": False}, sandbox.simulated))
    return host_exit_code(result.exit_code)


def _console_size() -> tuple[int, int]:
    import shutil

    size = shutil.get_terminal_size((80, 25))
    return (max(1, size.columns), max(1, size.lines))


def _run_streaming(
    sandbox: Any, words: list[str], env: dict[str, str], args: argparse.Namespace
) -> int:
    from hcs_sandbox.cli.common import host_exit_code

    proc: GuestProcess = sandbox.spawn(
        words,
        tty=args.tty,
        console_size=_console_size() if args.tty else None,
        env=env or None,
        workdir=args.workdir,
        user=args.user,
    )
    restore = _enter_raw_mode() if args.tty and args.interactive else None
    unwatch = _watch_resize(proc) if args.tty else None
    try:
        forwarding: list[BaseException] = []
        if args.interactive:
            forwarding = _forward_stdin(proc)
        else:
            proc.close_stdin()
        try:
            code = _pump(
                proc, args.timeout, args.encoding
            )  # ExecTimeoutError: main says so and exits 124
        except KeyboardInterrupt:
            _interrupt(proc)
            print("hcs-sandbox: interrupted; the guest process was stopped", file=sys.stderr)
            return 130
        if forwarding:
            raise _forwarding_failed(proc, forwarding[0]) from forwarding[0]
        return host_exit_code(code)
    finally:
        if unwatch is not None:
            unwatch()
        if restore is not None:
            restore()
        proc.close()


def _pump(proc: GuestProcess, timeout: float | None, encoding: str | None = None) -> int:
    """Copy output to our stdout/stderr until the process ends; returns its exit code.
    Bytes to a file or a pipe, text to a Windows console (or to a terminal with
    ``--encoding``): :class:`~hcs_sandbox.cli.output.GuestOutput`."""
    from hcs_sandbox.cli.output import GuestOutput

    out = GuestOutput(sys.stdout, encoding)
    err = GuestOutput(sys.stderr, encoding)
    try:
        return _copy(proc, timeout, out, err)
    finally:  # also at a timeout: what is held back is shown (a U+FFFD when incomplete)
        out.finish()
        err.finish()


def _copy(proc: GuestProcess, timeout: float | None, out: Any, err: Any) -> int:
    import time

    from hcs_sandbox import errors

    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            chunk = proc.read(timeout=left)
        except errors.ExecTimeoutError:
            raise proc.kill_for_timeout(timeout or 0.0) from None
        if chunk is None:
            break
        (out if chunk.stream == "stdout" else err).write(chunk.data)
    left = None if deadline is None else max(0.0, deadline - time.monotonic())
    try:
        return proc.wait(left)
    except errors.ExecTimeoutError:
        raise proc.kill_for_timeout(timeout or 0.0) from None


def _interrupt(proc: GuestProcess) -> None:
    """Ctrl+C: ask the guest process to stop (CtrlC), then terminate it."""
    from hcs_sandbox import errors

    try:
        proc.signal("CtrlC")
        proc.wait(2.0)
    except (errors.HcsSandboxError, KeyboardInterrupt):
        pass
    try:
        proc.kill()
    except (errors.HcsSandboxError, KeyboardInterrupt):
        pass


def _forward_stdin(proc: GuestProcess) -> list[BaseException]:
    """A daemon thread copies our stdin to the guest and sends EOF at the end, however it
    ends (a thread that died without it left the guest waiting for input: a hang).  The
    guest having stopped reading (an OSError or a library error while writing, as in
    ``GuestProcess.communicate``) is no error; no stdin at all (``sys.stdin`` is None) is
    empty input.  Any other failure kills the guest process, which would take truncated
    input for complete, and is put in the returned list, for :func:`_run_streaming` to
    raise."""
    import threading

    from hcs_sandbox import errors

    failed: list[BaseException] = []

    def fail(exc: BaseException) -> None:
        failed.append(exc)
        try:
            proc.kill()
        except Exception:  # gone already: its output ends all the same
            pass

    def run() -> None:
        stopped_reading = False
        try:
            # The raw stream, not the buffered one: a read blocked in BufferedReader holds its
            # lock, and a guest that ends before our stdin does (a terminal without Ctrl+D, a
            # pipe whose writer runs on) left this daemon thread holding it as Python shut
            # down: "Fatal Python error: _enter_buffered_busy", exit 134 instead of the
            # guest's code (review RV-api2 A1).  FileIO (and Windows' console raw stream)
            # return what is there, as read1 does.
            buffered = sys.stdin.buffer if sys.stdin is not None else None
            source = getattr(buffered, "raw", buffered)
            while source is not None:
                data = source.read1(65536) if hasattr(source, "read1") else source.read(65536)
                if data is None:  # a non-blocking raw stream with nothing yet
                    continue
                if not data:
                    break
                try:
                    proc.write(data)
                except (OSError, errors.HcsSandboxError):  # the process ended, the pipe broke
                    stopped_reading = True
                    break
        except BaseException as exc:
            if not proc.process.exited:  # else it needed no more input: its code stands
                fail(exc)
        finally:
            try:
                proc.close_stdin()
            except BaseException as exc:
                if not stopped_reading and not failed and not proc.process.exited:
                    fail(exc)  # it still runs and waits for an end-of-file that never comes

    threading.Thread(target=run, name="hcs-sandbox-exec-stdin", daemon=True).start()
    return failed


def _forwarding_failed(proc: GuestProcess, exc: BaseException) -> Exception:
    """The error :func:`_run_streaming` raises when :func:`_forward_stdin` failed."""
    from hcs_sandbox import errors

    if isinstance(exc, errors.HcsSandboxError):
        why, remedy = exc.message, exc.remedy
    else:
        why, remedy = f"{type(exc).__name__}: {exc}", "check what feeds hcs-sandbox's stdin"
    return errors.HcsSandboxError(
        f"forwarding stdin to guest process {proc.pid} failed, so it was stopped: {why}",
        remedy=remedy,
    )


def _enter_raw_mode() -> Any:
    """Put a POSIX terminal in raw mode for a TTY session; returns the undo (or None)."""
    if sys.platform == "win32" or not sys.stdin.isatty():
        # TODO(windows host): enable ENABLE_VIRTUAL_TERMINAL_INPUT on the console instead.
        return None
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)

    def restore() -> None:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)

    return restore


def _watch_resize(proc: GuestProcess) -> Any:
    """Forward terminal size changes (SIGWINCH) to the guest console; returns the undo."""
    import signal as signal_module

    if not hasattr(signal_module, "SIGWINCH"):
        return None
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def on_resize(_signum: int, _frame: Any) -> None:
        width, height = _console_size()
        try:
            proc.resize(width, height)
        except Exception:  # a resize is best effort
            return

    winch = signal_module.Signals(getattr(signal_module, "SIGWINCH"))  # noqa: B009 - not on Windows
    previous = signal_module.signal(winch, on_resize)

    def undo() -> None:
        signal_module.signal(winch, previous)

    return undo
