"""``hcs-sandbox run [FILE.wsb] [flags] [-- COMMAND...]``: create and start a sandbox.

* ``-d``: print the id as soon as it runs and return (the sandbox outlives this command).
  With a logon command, "runs" includes it: ``start`` returns once the guest has started it
  (up to 180 s while the guest connection is not up; a progress line on a terminal), so
  its output reaches ``logs`` after this command has exited.  When it could not be
  started, a warning line says why (the sandbox runs; exit 0).
  Not with a COMMAND (exit 2): start it with ``-d``, then ``hcs-sandbox exec NAME -- COMMAND``.
* ``-- COMMAND...``: run the command in the guest (``Sandbox.exec``), print its output, exit
  with its exit code; then the sandbox is stopped (``--rm``: removed), like a container whose
  command ended.
* neither: wait for the sandbox to exit (shut down from inside, or ``hcs-sandbox stop``);
  Ctrl+C stops it.
* ``--rm``: remove the sandbox when the command or the sandbox ends, on failure and on Ctrl+C
  too.  Not with ``-d``: a detached ephemeral sandbox is cleaned up by ``prune`` once stopped.
  With ``--json`` the object says ``"removed"`` (and ``"remove_error"`` when false).  A
  removal that failed after a clean run (exit 0 otherwise) is an error line and exit 1;
  after a failed run, a warning line and the run's own exit code.
* without ``-d`` an ephemeral sandbox dies with this command: it is created with
  ``terminate_on_close=True`` (``ShouldTerminateOnLastHandleClosed``), so HCS terminates
  the VM when this process ends, even when it is killed; ``prune`` then removes the record.

Exit codes: 0 ok (the sandbox exited cleanly: what ``wait`` prints as ``0``); the command's
exit code with COMMAND; 1 a step failed, ``--rm`` could not remove the sandbox after a clean
run, or the sandbox did not exit cleanly (an error status,
a ``kill`` or ``stop`` past its timeout: ``ForcedExit``, a guest crash: ``UnexpectedExit``, no
exit status recorded); 2 bad input (flags, .wsb, a name in use); 3 HCS unavailable; 130
interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

DESCRIPTION = """\
Create and start a sandbox from a .wsb file and/or flags. Everything after '--'
is a command to run in the guest. Its words are quoted for the C runtime
(CommandLineToArgvW), not for cmd.exe: cmd.exe metacharacters (& | < > ^ %)
are not escaped, and a word without spaces is passed unquoted, so after
'cmd /c' a word holding '&' or '|' (as it is, or after a '"') can run more
commands in the guest (docs/exec.md).
"""

EPILOG = """\
examples:
  hcs-sandbox run --rm -- cmd /c ver           one command in a throw-away sandbox
  hcs-sandbox run -d --name web --network nat  a detached sandbox; prints its id
  hcs-sandbox run tools.wsb                    from a .wsb; waits until it exits
"""


def _split_command(parser: argparse.ArgumentParser) -> None:
    """Everything after the first ``--`` is the guest COMMAND, never options or FILE.wsb."""
    original = parser.parse_known_args

    def parse_known_args(
        args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        words = list(sys.argv[1:] if args is None else args)
        command: list[str] = []
        if "--" in words:
            cut = words.index("--")
            words, command = words[:cut], words[cut + 1 :]
        ns, extra = original(words, namespace)
        ns.command = command
        wsb = getattr(ns, "wsb", None)
        if extra and not command and wsb is not None:
            # ``run --rm cmd /c ver``: a guest command without ``--`` (docker's habit).
            typed = _typed_command(words, wsb, extra)
            if typed is not None:
                parser.error(
                    f"unrecognized arguments: {' '.join(extra)}; " + _after_dashes_hint(typed)
                )
        return ns, extra

    setattr(parser, "parse_known_args", parse_known_args)  # noqa: B010 - instance override


def _command_words(wsb: str) -> list[str]:
    """The FILE.wsb argument as the first word of a guest command typed without ``--``
    (none when it names a .wsb file, or a file that exists: ``run box.xml`` reads it as
    the configuration, so it is no program name: review RV-warn2 N2)."""
    import os

    return [] if wsb.lower().endswith(".wsb") or os.path.lexists(wsb) else [wsb]


def _typed_command(words: list[str], wsb: str, extra: list[str]) -> list[str] | None:
    """The guest command a user typed without ``--``, as typed: the words that end the
    command line, FILE.wsb (unless it names a .wsb file) then the unrecognised ones, in
    their order (review RV-warn R1).  None when it does not look like one: the first
    command's first word is an option (``--netwrok nat``, ``box.wsb --bogus``: a mistyped
    option, argparse's own message is the right one; but ``ping -n 1 x`` is a command
    whose first argument is an option: review RV-warn2 N1), or options sit between those
    words (``notepad.exe --rm /x``: which of them were meant for run is a guess)."""
    typed = [*_command_words(wsb), *extra]
    if typed[0].startswith("-") or words[-len(typed) :] != typed:
        return None
    return typed


# Words every shell (cmd.exe, PowerShell, a POSIX shell) passes as they are, unquoted.
_PLAIN_WORD = r"[A-Za-z0-9_./:=+-]+"


def _after_dashes_hint(command: list[str]) -> str:
    """What to do when a guest command was typed without ``--``.  The command is repeated
    only when no word needs quoting: the user's shell (cmd.exe, PowerShell, a POSIX shell)
    is unknown and they quote differently (review RV-warn R7)."""
    import re

    plain = all(re.fullmatch(_PLAIN_WORD, word) for word in command)
    shown = " ".join(command) if plain else "COMMAND..."
    return f"to run a command in the sandbox, put it after --: hcs-sandbox run [options] -- {shown}"


def _check_wsb_or_command(args: argparse.Namespace) -> None:
    """``run --rm notepad.exe``: FILE.wsb that is no file and not named ``*.wsb`` is most
    likely a guest command typed without ``--`` (QA tester F8): say so, exit 2."""
    from hcs_sandbox.errors import SpecError

    wsb = args.wsb
    if wsb is None or args.command or not _command_words(wsb):
        return
    raise SpecError(
        f"{wsb}: no such .wsb file (run reads a word before -- as FILE.wsb)",
        field="wsb",
        value=wsb,
        remedy=_after_dashes_hint([wsb]),
    )


def register(subparsers: Any) -> argparse.ArgumentParser:
    from hcs_sandbox.cli.common import (
        add_common,
        add_encoding_option,
        add_spec_options,
        seconds_or_zero,
    )

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "run",
        help="create and start a sandbox (optionally run a command in it)",
        description=DESCRIPTION,
        usage="%(prog)s [FILE.wsb] [options] [-- COMMAND...]",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_spec_options(parser)
    parser.add_argument(
        "-d",
        "--detach",
        action="store_true",
        help="print the id once it runs and return (not with a COMMAND: use 'exec' after it)",
    )
    parser.add_argument(
        "--rm",
        action="store_true",
        help="remove the sandbox when the command or the sandbox ends (also on failure)",
    )
    parser.add_argument(
        "--stop-timeout",
        type=seconds_or_zero,
        default=30.0,
        metavar="SECONDS",
        help="graceful-shutdown time before terminating, at the end or on Ctrl+C (default 30)",
    )
    add_encoding_option(parser, what="the COMMAND's output, for --json and a terminal")
    add_common(parser)
    parser.set_defaults(handler=handle, command=[])
    _split_command(parser)
    return parser


def _quietly(what: str, step: Any) -> None:
    """Run a cleanup step; a failure is one warning line (the first error matters more)."""
    from hcs_sandbox.cli.common import traceback_if_debug
    from hcs_sandbox.cli.output import warn
    from hcs_sandbox.errors import HcsSandboxError

    try:
        step()
    except HcsSandboxError as exc:
        traceback_if_debug()
        warn(f"{what} failed: {' '.join(str(exc).split())}")


def handle(args: argparse.Namespace) -> int:
    from hcs_sandbox.cli.common import print_sandbox_warnings, spec_from_args, with_simulated
    from hcs_sandbox.cli.output import Progress, notice_if_simulated, print_json, warn
    from hcs_sandbox.errors import SpecError
    from hcs_sandbox.sandbox.sandbox import Sandbox

    if args.detach and args.rm:
        raise SpecError(
            "--rm cannot be combined with -d: a detached sandbox outlives this command",
            field="rm",
            value=True,
            allowed="drop --rm ('hcs-sandbox prune' removes stopped ephemeral sandboxes) or "
            "drop -d",
        )
    if args.detach and args.command:
        # Refused, not run: the library has no way to start a guest process and leave it
        # running once this command has exited (GuestProcess.close terminates it, and its
        # output, read through pipes, ends with this process; only the logon command is
        # built to outlive it: its output goes to a share).  Silently dropping it told an agent
        # "exit 0" for a command that never ran (review RV7a finding 6).
        import shlex

        words = shlex.join(args.command)
        raise SpecError(
            "-d cannot be combined with a COMMAND: a command is run by this process, which "
            "returns at once with -d",
            field="detach",
            value=words,
            remedy="drop -d to run it attached, or start the sandbox detached and then run "
            "the command in it: hcs-sandbox run -d --name NAME [options]; "
            f"hcs-sandbox exec NAME -- {words}",
        )
    if args.encoding is not None and not args.command:
        raise SpecError(
            "--encoding needs a COMMAND: it is the encoding of that command's output",
            field="encoding",
            value=args.encoding,
            remedy="add -- COMMAND, or drop --encoding",
        )
    _check_wsb_or_command(args)
    warned: set[str] = set()
    spec = spec_from_args(args, check_paths=True, warned=warned)
    progress = Progress()
    # ``sandbox`` is bound the moment create returns, inside the try: a Ctrl+C anywhere after
    # that (even while the progress line is cleared) still stops, removes (--rm) and closes it.
    sandbox: Any = None
    simulated = False
    # What the run ended with (exit code, the JSON to print once --rm removed the sandbox,
    # so that it can say whether it was), and what the removal failed with.
    outcome: tuple[int, dict[str, Any] | None] | None = None
    removal: str | None = None
    try:
        try:
            with progress.running():
                # Attached: HCS kills the VM when this process's last handle closes, so a
                # crashed or killed CLI leaves no running VM ('prune' then removes the
                # record). Detached: it must outlive us. (A persistent spec is never
                # terminated on close: planner.)
                sandbox = Sandbox.create(
                    spec, progress=progress, terminate_on_close=not args.detach
                )
            simulated = sandbox.simulated
            # Every setting that loosens isolation, said before it starts (the .wsb's own
            # warnings were printed above; --json too: its objects have no warnings).
            print_sandbox_warnings(sandbox, warned)
            with progress.running():
                sandbox.start(progress=progress)  # returns once the logon command runs
            if sandbox.logon_error is not None:
                warn(
                    f"the logon command was not started ({sandbox.logon_error}); the "
                    f"sandbox runs without it (see 'hcs-sandbox logs {sandbox.name}')"
                )
            if args.detach:
                if sandbox.logon_warning is not None:  # this process ends now
                    warn(f"the logon command runs, but {sandbox.logon_warning}")
                if args.json:
                    print_json(with_simulated(sandbox.to_dict(), simulated))
                else:
                    print(sandbox.id, flush=True)
                return 0
            outcome = _run_command(args, sandbox) if args.command else _wait(args, sandbox)
        except KeyboardInterrupt as exc:
            if sandbox is not None and not args.rm:
                print("hcs-sandbox: stopping the sandbox", file=sys.stderr)
                _quietly("stopping", lambda: sandbox.stop(timeout=args.stop_timeout))
                _note_left(exc, sandbox)
            raise
        finally:
            if sandbox is not None and args.rm:
                try:
                    removal = _remove(
                        sandbox, progress, decides=outcome is not None and outcome[0] == 0
                    )
                except KeyboardInterrupt as cut:
                    # Ctrl+C while removing, after the command ended: its result is still
                    # printed, saying the sandbox was not removed (review RV34 #4).
                    result = outcome[1] if outcome is not None else None
                    if result is not None:
                        _print_result(result, True, INTERRUPTED_REMOVAL, simulated)
                    _note_left(cut, sandbox, removing=True)
                    raise
        code, out = outcome
        if out is not None:
            _print_result(out, args.rm, removal, simulated)
        # A removal that failed after a clean run is this command's failure (exit 1), as
        # docker's run --rm ends 125 when its daemon could not remove the container; after
        # a failed command that command's exit code is kept (its failure says more).
        return 1 if code == 0 and removal is not None else code
    finally:
        if sandbox is not None:
            _quietly("closing", sandbox.close)
            notice_if_simulated(simulated)


def _note_left(interrupt: BaseException, sandbox: Any, *, removing: bool = False) -> None:
    """After a Ctrl+C: the "interrupted" line says what is left and what to do (QA s17
    tester F6; ``rm.left_behind``)."""
    from hcs_sandbox.cli.main import note_left
    from hcs_sandbox.cli.rm import left_behind

    note_left(interrupt, left_behind(sandbox.name, sandbox.id, removing=removing))


def _print_result(out: dict[str, Any], rm: bool, removal: str | None, simulated: bool) -> None:
    """Print the JSON result of an attached run; with ``--rm`` it says whether the sandbox
    was removed (``removal``: None when it was, else what failed)."""
    from hcs_sandbox.cli.common import with_simulated
    from hcs_sandbox.cli.output import print_json

    if rm:
        out["removed"] = removal is None
        if removal is not None:
            out["remove_error"] = removal
    print_json(with_simulated(out, simulated))


#: ``remove_error`` when Ctrl+C cut ``--rm``'s removal short.
INTERRUPTED_REMOVAL = (
    "interrupted (Ctrl+C) while removing the sandbox; 'hcs-sandbox rm -f NAME' or "
    "'hcs-sandbox prune' finishes it"
)


def _remove(sandbox: Any, progress: Any, *, decides: bool) -> str | None:
    """``run --rm``'s removal; None when it succeeded, else what failed (one line: an error
    line when it ``decides`` the exit code, after a clean run; otherwise a warning, as
    the first error matters more).  A file still held open by another process (the VM
    worker that has just ended, on Windows) is waited for on ``progress``'s line, as
    ``rm`` shows it (review RV59 F1)."""
    from hcs_sandbox.cli.common import error_line, traceback_if_debug
    from hcs_sandbox.cli.output import warn
    from hcs_sandbox.errors import HcsSandboxError

    try:
        with progress.running():
            sandbox.remove(force=True, progress=progress)
    except HcsSandboxError as exc:
        traceback_if_debug()
        text = " ".join(str(exc).split())
        if decides:
            error_line(f"removing failed: {text}")
        else:
            warn(f"removing failed: {text}")
        return text
    return None


def _run_command(args: argparse.Namespace, sandbox: Any) -> tuple[int, dict[str, Any] | None]:
    try:
        return _command_result(args, sandbox)
    finally:  # also when the command or its output failed: the sandbox is stopped (docs)
        if not args.rm:
            _quietly("stopping", lambda: sandbox.stop(timeout=args.stop_timeout))


def _command_result(args: argparse.Namespace, sandbox: Any) -> tuple[int, dict[str, Any] | None]:
    """The exit code, and with ``--json`` the object to print (printed by the caller)."""
    from hcs_sandbox.cli.common import host_exit_code
    from hcs_sandbox.errors import HcsSandboxError

    try:
        result = sandbox.exec(list(args.command))
    except NotImplementedError as exc:
        raise HcsSandboxError(
            f"cannot run a command: {exc}",
            remedy="run without a COMMAND, or upgrade hcs-sandbox",
        ) from exc
    code = host_exit_code(result.exit_code)
    if args.json:
        out = result.to_dict(args.encoding or "utf-8")
        return code, {"name": sandbox.name, "id": sandbox.id, **out}
    from hcs_sandbox.cli.output import GuestOutput

    sys.stdout.flush()
    for stream, data in ((sys.stdout, result.stdout), (sys.stderr, result.stderr)):
        output = GuestOutput(stream, args.encoding)  # bytes, or text on a console (exec)
        output.write(data)
        output.finish()
    return code, None


def _wait(args: argparse.Namespace, sandbox: Any) -> tuple[int, dict[str, Any] | None]:
    """The exit code, and with ``--json`` the object to print (printed by the caller)."""
    if sys.stderr.isatty():
        print(
            f"sandbox {sandbox.name} ({sandbox.id[:12]}) is running; Ctrl+C stops it",
            file=sys.stderr,
        )
    info = sandbox.wait()
    out: dict[str, Any] = {"name": sandbox.name, "id": sandbox.id}
    out.update(info.to_dict())
    from hcs_sandbox.cli.wait import is_clean, status_text

    # 1 also for status 0 with ForcedExit (a kill) or UnexpectedExit (a guest crash).
    code = 0 if is_clean(info.status, info.exit_type) else 1
    if args.json:
        return code, out
    print(status_text(info.status, info.exit_type))
    return code, None
