"""``hcs-sandbox``: the command line, a thin shell over the public API.

Each verb lives in its own module under :mod:`hcs_sandbox.cli` and exposes
``register(subparsers) -> argparse.ArgumentParser``; the parser's ``handler`` default is a
function ``(args) -> int`` that does the work.  Verb modules import only ``argparse`` at
module level and load the library inside their handler, so ``hcs-sandbox ls`` starts fast.
When the command line names a verb, only that verb's module is imported and registered
(:func:`build_parser` with ``only=``); ``--help``, no verb or an unknown verb build the full
parser, so help and "invalid choice" messages list every verb.

Fast path: a verb module may describe its options as data (``FAST_OPTIONS`` and
``fast_defaults()``, e.g. :mod:`hcs_sandbox.cli.ls`); then a command line made only of exact
option strings it names (and the global options) is parsed by :func:`fast_parse` into the
same values argparse would give, without importing argparse (~5 ms of ``hcs-sandbox ls``
start-up with ``gettext`` and ``locale``).  Anything else -- an abbreviation, ``-h``, ``--``,
an unknown option, a value starting with ``-``, an error -- goes to argparse, which gives
the same messages and exit codes as ever.

Exit codes (see docs/cli.md):

====  ==========================================================================
0     success
1     the operation failed (an HCS error, a disk error, ...)
2     bad input: usage, an invalid spec or .wsb, a name in use, no such sandbox
3     HCS is not available on this host (not Windows, feature not enabled, ...)
124   a timeout expired (``wait --timeout``, ``exec --timeout``)
130   interrupted (Ctrl+C; on Windows Ctrl+Break too)
====  ==========================================================================

``exec`` exits with the guest process's exit code.
"""

from __future__ import annotations

import _thread
import sys
from collections.abc import Callable, Sequence

from hcs_sandbox._version import __version__

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~5 ms
if TYPE_CHECKING:
    import argparse
    from typing import Any, NoReturn

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_TIMEOUT = 124
EXIT_INTERRUPTED = 130

# Verb name -> module under hcs_sandbox.cli.  Order is the order of --help.
VERBS: tuple[tuple[str, str], ...] = (
    ("plan", "plan"),
    ("run", "run"),
    ("create", "create"),
    ("start", "start"),
    ("ls", "ls"),
    ("inspect", "inspect"),
    ("exec", "exec_"),
    ("cp", "cp"),
    ("logs", "logs"),
    ("port", "port"),
    ("stop", "stop"),
    ("kill", "kill"),
    ("pause", "pause"),
    ("resume", "resume"),
    ("rm", "rm"),
    ("wait", "wait"),
    ("prune", "prune"),
    ("doctor", "doctor"),
)

#: Other names of verbs (``register`` adds them as argparse aliases).
ALIASES: dict[str, str] = {"ps": "ls"}

#: ``--debug`` of the :func:`main` call running now (per-name verbs print a traceback for
#: each failure they go past: :func:`hcs_sandbox.cli.common.traceback_if_debug`).
_DEBUG: list[bool] = [False]


def debugging() -> bool:
    """True while a verb runs with ``--debug``."""
    return _DEBUG[0]


#: Global options that take a value (skipped when looking for the verb in argv).
_VALUE_OPTIONS = ("--state-dir",)

EPILOG = """\
examples:
  hcs-sandbox plan examples/hello.wsb            show the HCS documents a .wsb would create
  hcs-sandbox run --rm -- cmd /c ver             a throw-away sandbox running one command
  hcs-sandbox run -d --name web --network nat    a long-lived sandbox with NAT networking
  hcs-sandbox exec web -- cmd /c echo hi         run a command inside it, with its output
  hcs-sandbox ls --json                          every sandbox, as JSON
  hcs-sandbox rm -f web                          stop and remove it

Off Windows, add --simulator (or set HCS_SANDBOX_SIMULATOR=1) to use the built-in HCS
simulator. Exit codes: 0 ok, 1 failed, 2 bad input, 3 HCS unavailable, 124 timeout,
130 interrupted; 'exec' exits with the guest's exit code (125: the sandbox stopped while
the command ran).
"""


def _terminal_width() -> int:
    """What ``shutil.get_terminal_size().columns`` gives, minus 2 (argparse's own rule),
    without importing shutil (argparse imports it for every formatter: ~3 ms at start-up)."""
    import os

    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns or 80) - 2


_PARSER_CLASS: list[type[argparse.ArgumentParser]] = []


def _one_line_parser() -> type[argparse.ArgumentParser]:
    """``_OneLineParser``: an ArgumentParser whose errors are one line on stderr with exit
    code 2 (made on first use: argparse is imported only when a parser is built)."""
    if _PARSER_CLASS:
        return _PARSER_CLASS[0]
    import argparse

    class _OneLineParser(argparse.ArgumentParser):
        def _get_formatter(self) -> argparse.HelpFormatter:
            # Every argparse formatter class takes ``width`` (HelpFormatter.__init__).
            make: Any = self.formatter_class
            formatter: argparse.HelpFormatter = make(prog=self.prog, width=_terminal_width())
            return formatter

        def error(self, message: str) -> NoReturn:
            prog = self.prog
            self.exit(EXIT_USAGE, f"{prog}: error: {message} (see '{prog} --help')\n")

    _PARSER_CLASS.append(_OneLineParser)
    return _OneLineParser


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser, with every verb registered (``only``: just that verb's module)."""
    import argparse

    one_line_parser = _one_line_parser()
    parser = one_line_parser(
        prog="hcs-sandbox",
        description=(
            "Create, run and throw away lightweight Windows sandboxes through the Windows "
            "Host Compute Service."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hcs-sandbox {__version__}")
    add_global_options(parser)
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND", parser_class=one_line_parser)
    for verb, module_name in VERBS:
        if only is not None and verb != only:
            continue
        _cli_module(module_name).register(sub)
    return parser


def _cli_module(name: str) -> Any:
    """``hcs_sandbox.cli.<name>``, imported (``importlib.import_module`` without importing
    ``importlib`` and ``warnings``: ~0.5 ms of start-up)."""
    full = f"hcs_sandbox.cli.{name}"
    __import__(full)
    return sys.modules[full]


def chosen_verb(argv: Sequence[str]) -> str | None:
    """The verb ``argv`` names (aliases resolved), or None: no verb, an unknown one, or
    ``-h``/``--help``/``--version`` before it (those need the full parser)."""
    known = {verb for verb, _module in VERBS}
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--":
            return None
        if arg.startswith("-"):
            if arg in ("-h", "--help", "--version"):
                return None
            if arg in _VALUE_OPTIONS:
                skip = True
            continue
        verb = ALIASES.get(arg, arg)
        return verb if verb in known else None
    return None


def add_global_options(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """Options every verb accepts, before or after the verb name."""
    import argparse

    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--simulator",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="use the built-in HCS simulator instead of Windows (also: HCS_SANDBOX_SIMULATOR=1)",
    )
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        default=default,
        help="where records and sandbox files live (default: %%ProgramData%%\\hcs-sandbox on "
        "Windows; also: HCS_SANDBOX_STATE_DIR)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="show a traceback on errors",
    )


#: The global options (:func:`add_global_options`) for :func:`fast_parse`: option string ->
#: (dest, kind), and their defaults when given before the verb (after it they are SUPPRESS).
_FAST_GLOBALS: dict[str, tuple[str, str]] = {
    "--simulator": ("simulator", "true"),
    "--debug": ("debug", "true"),
    "--state-dir": ("state_dir", "store"),
}
_GLOBAL_DEFAULTS: dict[str, Any] = {"simulator": False, "state_dir": None, "debug": False}


def fast_parse(argv: Sequence[str]) -> Any:
    """What ``build_parser().parse_args(argv)`` returns, parsed without argparse, or None.

    For a verb whose module has ``FAST_OPTIONS`` (``{option string: (dest, kind)}``, kind
    ``"true"`` for ``store_true``, ``"append"`` or ``"store"`` for one value) and
    ``fast_defaults()`` (every dest the verb's parser sets, ``handler`` included).  Accepted
    words, and nothing else: the global options (before or after the verb), then the verb
    (or an alias), then the verb's options; exact option strings only (no abbreviations);
    a value as the next word or after ``=`` (long options), never empty nor starting with
    ``-``; single-dash switches together (``-aq``).  Everything else returns None (argparse
    then parses it, with its messages): ``-h``, ``--version``, ``--``, an unknown or
    abbreviated option, a positional word, a missing value, ``--json=x``...

    The result is a :class:`types.SimpleNamespace` with exactly the attributes (and values)
    of argparse's Namespace (tests/cli/test_fast_parse.py compares them).
    """
    verb = chosen_verb(argv)
    if verb is None:
        return None
    module = _cli_module(dict(VERBS)[verb])
    options: dict[str, tuple[str, str]] | None = getattr(module, "FAST_OPTIONS", None)
    if options is None:
        return None
    table = _FAST_GLOBALS
    values = dict(_GLOBAL_DEFAULTS)
    seen_verb = False
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if not seen_verb and not word.startswith("-"):
            # chosen_verb() found this word: the verb or one of its aliases.
            seen_verb = True
            values["verb"] = word
            values.update(module.fast_defaults())
            table = {**_FAST_GLOBALS, **options}
            continue
        name, sep, value = word.partition("=") if word.startswith("--") else (word, "", "")
        found = table.get(name)
        if found is None:
            if not seen_verb or not _switches_together(word, table):
                return None
            for letter in word[1:]:
                values[table["-" + letter][0]] = True
            continue
        dest, kind = found
        if kind == "true":
            if sep:
                return None  # argparse: "ignored explicit argument"
            values[dest] = True
            continue
        if not sep:
            if i >= len(argv):
                return None
            value = argv[i]
            i += 1
        if not value or value.startswith("-"):
            return None
        values[dest] = [*values[dest], value] if kind == "append" else value
    if not seen_verb:
        return None
    from types import SimpleNamespace

    return SimpleNamespace(**values)


def _switches_together(word: str, table: dict[str, tuple[str, str]]) -> bool:
    """True for ``-aq``: single-dash switches (``store_true``) written as one word."""
    return (
        len(word) > 2
        and word[0] == "-"
        and all(table.get("-" + letter, ("", ""))[1] == "true" for letter in word[1:])
    )


def _configure(args: argparse.Namespace) -> None:
    """Apply the global options before a verb runs."""
    import os

    given = getattr(args, "state_dir", None)
    if given is not None and not given.strip():
        # An empty --state-dir (a script's unset variable) is bad input, not "not given":
        # the fallback would act on the real state directory (QA s17 tester F7).
        from hcs_sandbox.sandbox.paths import empty_state_dir_error

        raise empty_state_dir_error(given, "--state-dir")
    if given:
        os.environ["HCS_SANDBOX_STATE_DIR"] = os.path.abspath(given)
    if getattr(args, "simulator", False):
        # The simulated host lives beside the records when --state-dir is given, so one state
        # directory is self-contained; HCS_SANDBOX_SIMULATOR=<dir> still names it explicitly.
        from hcs_sandbox import _simenv, use_simulator

        try:
            explicit = bool(_simenv.setting())
        except _simenv.SimulatorSettingError:
            explicit = True  # the backend says what is wrong with it
        state = getattr(args, "state_dir", None)
        use_simulator(
            os.path.join(os.path.abspath(state), "simulator") if state and not explicit else None
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    stdout_key = _enter_tolerant_stdout()
    undo_break = _catch_ctrl_break()
    try:
        return _main(argv)
    finally:
        if undo_break is not None:
            undo_break()
        _leave_tolerant_stdout(stdout_key)


def _on_ctrl_break(signum: int, frame: object) -> None:
    """The SIGBREAK handler while :func:`main` runs: Ctrl+Break is Ctrl+C."""
    raise KeyboardInterrupt


def _catch_ctrl_break() -> Callable[[], None] | None:
    """On Windows, make Ctrl+Break take Ctrl+C's path while a verb runs: a SIGBREAK handler
    that raises :class:`KeyboardInterrupt`, so ``run --rm`` removes its sandbox, an attached
    ``run`` stops it, a create rolls back, and the exit code is 130 ("interrupted").  Returns
    the undo (the default action again), or None when nothing was installed.

    Without it Ctrl+Break ends the process with no clean-up at all: the C runtime's console
    handler (UCRT ``ucrt/misc/signal.cpp``, ``ctrlevent_capture``) maps ``CTRL_C_EVENT`` to
    SIGINT and every other console event to SIGBREAK; SIGBREAK's default action returns
    FALSE, so the system's default handler calls ``ExitProcess`` (exit code
    ``STATUS_CONTROL_C_EXIT``, as for Ctrl+C: golang/go#29744, microsoft/WSL#7596).  Python
    runs the handler on the main thread between bytecodes (``signal`` docs, "Execution of
    Python signal handlers"): during an HCS call (``HcsWaitForOperationResult``) it runs
    once the call returns, as a Ctrl+C does; a ``time.sleep`` is not cut short (CPython's
    wake-up event is SIGINT's only), and the CLI's pauses are about a second at most.

    Closing the console window (``CTRL_CLOSE_EVENT``; logoff and shutdown alike) also
    reaches SIGBREAK, but gains nothing: CPython's C handler only sets a flag and returns,
    the C runtime returns TRUE, and after TRUE "the system terminates the process"
    (HandlerRoutine, Microsoft Learn; Eryk Sun on CPython PR #96289).  What a closed window
    leaves is the kill's (``prune``): docs/cli.md, "Ctrl+Break and a closed console
    window".

    Only over the default action: an embedding program's own SIGBREAK handler (or SIG_IGN)
    is left alone, and so is every ``main()`` not on the main thread (Python sets signal
    handlers there only)."""
    if sys.platform != "win32":
        return None
    import signal

    brk = signal.SIGBREAK
    try:
        if signal.getsignal(brk) is not signal.SIG_DFL:
            return None
        signal.signal(brk, _on_ctrl_break)
    except ValueError:  # not the main thread
        return None

    def undo() -> None:
        try:
            if signal.getsignal(brk) is _on_ctrl_break:  # not replaced meanwhile
                signal.signal(brk, signal.SIG_DFL)
        except ValueError:
            pass

    return undo


#: ``main()`` calls running now in this process (threads of an embedding program), per
#: stdout stream: ``id(stream) -> [calls running on it, the undo of the first one's
#: _tolerant_stdout]``.  The last call on a stream to return restores it, so one call cannot
#: put ``strict`` back under another still writing to it (review RV33 #1), and a call made
#: after ``sys.stdout`` was replaced makes its own stream tolerant (review RV36 #3).
#: ``_thread``, not ``threading``: the latter is not imported for ``ls`` (start-up time).
_tolerant_lock = _thread.allocate_lock()
_tolerant_calls: dict[int, list[Any]] = {}


def _enter_tolerant_stdout() -> int:
    stream = sys.stdout
    key = id(stream)
    with _tolerant_lock:
        entry = _tolerant_calls.get(key)
        if entry is None:
            # The stream itself is kept in the entry: its id cannot be reused meanwhile.
            entry = _tolerant_calls[key] = [0, _tolerant_stdout(stream), stream]
        entry[0] += 1
    return key


def _leave_tolerant_stdout(key: int) -> None:
    with _tolerant_lock:
        entry = _tolerant_calls[key]
        entry[0] -= 1
        if entry[0] == 0:
            del _tolerant_calls[key]
            if entry[1] is not None:
                entry[1]()


def _tolerant_stdout(stream: Any) -> Callable[[], None] | None:
    """A stdout that would refuse a character its encoding lacks writes it as an escape
    instead (``\\u2713``), the policy Python applies to stderr: its error handler goes from
    ``strict`` to ``backslashreplace`` while a verb runs.  Returns the undo, or None when
    nothing was changed (another error handler, or a stream that cannot be reconfigured).

    On Windows a redirected stdout uses the ANSI code page (cp1252, ...) with ``strict``, so
    ``logs NAME > file`` failed on guest text such as a check mark, and ``plan --map`` on a
    folder name outside the code page ("internal error", nothing written).  Done on every
    platform and for a terminal too: a POSIX terminal in a locale such as
    ``en_US.ISO-8859-1`` failed the same way (``prune`` printing a path outside Latin-1 was
    an "internal error"), as does a Windows console with PYTHONLEGACYWINDOWSSTDIO.  A
    Windows console otherwise takes any character (UTF-8 into WriteConsoleW), so the handler
    never acts there.  ``--json`` output is ASCII already (``json.dumps`` escapes every
    non-ASCII character).  ``PYTHONUTF8=1`` makes a redirected output UTF-8 and lossless
    (docs/cli.md)."""
    if getattr(stream, "errors", None) != "strict":
        return None
    reconfigure = getattr(stream, "reconfigure", None)
    try:
        if reconfigure is None:
            return None
        reconfigure(errors="backslashreplace")
    except (AttributeError, OSError, ValueError):  # no isatty, a closed or detached stream
        return None

    def undo() -> None:
        try:
            reconfigure(errors="strict")
        except (OSError, ValueError):  # flushing a closed pipe: nothing more can be written
            pass

    return undo


def _main(argv: Sequence[str] | None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = fast_parse(arguments)
    if args is None:
        parser = build_parser(only=chosen_verb(arguments))
        try:
            args = parser.parse_args(arguments)
        except SystemExit as exc:
            if exc.code not in (0, None) and _json_requested(arguments, parser):
                _print_null(sys.stdout)  # a usage error with --json: still one document
            raise
        if getattr(args, "handler", None) is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
    debug = bool(getattr(args, "debug", False))
    handler = args.handler
    from hcs_sandbox.errors import HcsSandboxError

    stdout = sys.stdout
    wrapped = _Output(stdout) if stdout is not None else None
    if wrapped is not None:
        sys.stdout = wrapped
    outer_debug = _DEBUG[0]
    _DEBUG[0] = debug
    code: int | None = None  # None: the verb ended another way (SystemExit)
    stdout_broken = False
    try:
        _configure(args)
        result: int = handler(args)
        code = result
        if wrapped is not None:
            wrapped.flush()
        return result
    except _OutputError as exc:
        from hcs_sandbox.cli.common import error_line

        error_line(f"cannot write the output: {exc.cause.strerror or exc.cause}")
        _silence(stdout)
        stdout_broken = True  # nothing more goes to it (no "null" below)
        code = EXIT_FAILURE
        return code
    except KeyboardInterrupt as exc:
        left = getattr(exc, _LEFT_BEHIND, None)  # what the verb says it left (note_left)
        print(
            f"hcs-sandbox: interrupted; {left}" if left else "hcs-sandbox: interrupted",
            file=sys.stderr,
        )
        code = EXIT_INTERRUPTED
        return code
    except HcsSandboxError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        from hcs_sandbox.cli.common import error_line

        error_line(exc)
        code = exc.exit_code
        return code
    except BrokenPipeError:
        # stdout closed early (e.g. piped into head): not an error worth a traceback.
        stdout_broken = True
        code = EXIT_OK
        return code
    except Exception as exc:  # the last guard: never a bare traceback for users
        code = EXIT_FAILURE
        if debug:
            raise
        from hcs_sandbox.cli.common import error_line

        error_line(
            f"{type(exc).__name__}: {exc} "
            "(this is a bug; run again with --debug and report the traceback)",
            kind="internal error",
        )
        return code
    finally:
        _DEBUG[0] = outer_debug
        # A failure with --json still leaves one JSON document on stdout: "null" where the
        # verb printed nothing (docs/cli.md, "Conventions").
        failed = code not in (None, EXIT_OK) and not stdout_broken
        if wrapped is not None and failed and getattr(args, "json", False) and not wrapped.written:
            _print_null(wrapped)
        if wrapped is not None and sys.stdout is wrapped:  # not another main()'s
            sys.stdout = stdout


#: The attribute of a KeyboardInterrupt that says what the interrupted verb left behind.
_LEFT_BEHIND = "hcs_sandbox_left_behind"


def note_left(interrupt: BaseException, left: str | None) -> None:
    """Have the "interrupted" line say what a Ctrl+C left behind and what to do (``left``,
    e.g. "sandbox 'web' is left 'removing': ..."), one line as every error (QA s17 tester
    F6).  An attribute of the exception: nothing to reset, and a second Ctrl+C (a new
    exception) drops it."""
    if left:
        setattr(interrupt, _LEFT_BEHIND, left)


def _json_requested(argv: Sequence[str], parser: argparse.ArgumentParser | None = None) -> bool:
    """True when ``argv`` asks for hcs-sandbox's own ``--json`` (or an abbreviation argparse
    accepts): before any ``--`` (after it come guest command words) and, for a verb whose
    guest command needs no ``--`` (``exec NAME cmd /c echo --json``: argparse's REMAINDER
    after NAME), before the command's first word.  ``parser``: the one that parsed ``argv``
    (its verb's options say which take a value); without it, only ``--`` ends the scan."""
    options = _guest_command_options(argv, parser) if parser is not None else None
    if options is not None:
        return _json_before_command(argv, *options)
    for word in argv:
        if word == "--":
            return False
        if len(word) >= 3 and "--json".startswith(word):
            return True
    return False


def _guest_command_options(
    argv: Sequence[str], parser: argparse.ArgumentParser
) -> tuple[dict[str, bool], int] | None:
    """For a verb that takes a guest command as argparse's REMAINDER (``exec``): its option
    strings (-> True when the option takes a value) and how many positional words come
    before the command; None for the other verbs (``run``'s command follows ``--``)."""
    import argparse

    verb = chosen_verb(argv)
    if verb is None:
        return None
    verb_parser = None
    for action in parser._actions:  # the subparsers action: its choices map verb -> parser
        if isinstance(action.choices, dict) and verb in action.choices:
            verb_parser = action.choices[verb]
    if not isinstance(verb_parser, argparse.ArgumentParser):
        return None
    options: dict[str, bool] = {}
    before = 0
    for action in verb_parser._actions:
        if action.option_strings:
            for option in action.option_strings:
                options[option] = action.nargs != 0
        elif action.nargs == argparse.REMAINDER:
            return options, before
        else:
            before += 1
    return None


def _json_before_command(argv: Sequence[str], options: dict[str, bool], before: int) -> bool:
    """:func:`_json_requested` for a verb whose command follows ``before`` positional words
    (``exec``: NAME): ``--json`` among the words up to the command's first one, read as
    argparse reads them (a value after an option that takes one, ``--opt=value``,
    ``-eK=V``, switches together, a unique prefix of a long option)."""
    positionals = -1  # the verb itself is the first positional word
    value_next = False
    for word in argv:
        if value_next and not (word.startswith("-") and word != "-"):
            value_next = False  # argparse takes no value that looks like an option
            continue
        value_next = False
        if word == "--" or positionals >= before:  # the command (or its '--') starts here
            return False
        if not word.startswith("-") or word == "-":
            positionals += 1
            continue
        if positionals < 0:  # before the verb: a global option (or a --json argparse refused)
            if len(word) >= 3 and "--json".startswith(word):
                return True
            value_next = word in _VALUE_OPTIONS
            continue
        if word.startswith("--"):
            name, equals, _value = word.partition("=")
            known = [o for o in options if o.startswith("--") and o.startswith(name)]
            found = name if name in options else (known[0] if len(known) == 1 else None)
            if found == "--json" and not equals:
                return True
            value_next = found is not None and options[found] and not equals
            continue
        for i, letter in enumerate(word[1:], start=1):  # -it, -eK=V, -e K=V
            takes = options.get("-" + letter)
            if takes is None:
                break
            if takes:
                value_next = i == len(word) - 1
                break
    return False


def _print_null(stream: Any) -> None:
    """``null`` on stdout: the JSON document of a ``--json`` command that failed before it
    printed one.  Quietly nothing when stdout cannot take it."""
    try:
        stream.write("null\n")
        stream.flush()
    except (OSError, ValueError, _OutputError):
        pass


class _OutputError(Exception):
    """stdout refused the output (disk full, I/O error): the user's redirection, not a bug.
    (A closed pipe stays a BrokenPipeError: exit 0, as before.)"""

    def __init__(self, cause: OSError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _Output:
    """``sys.stdout`` while a verb runs (and its ``buffer``, for exec's bytes): a failed
    write or flush becomes an :class:`_OutputError`; everything else is the stream's own
    (what its ``write`` returns too: a caller's own stream may return None)."""

    def __init__(self, stream: Any, wrote: list[bool] | None = None) -> None:
        self._stream = stream
        self._wrote = wrote if wrote is not None else [False]  # shared with ``buffer``

    @property
    def written(self) -> bool:
        """True once anything was written (here or to ``buffer``)."""
        return self._wrote[0]

    @property
    def buffer(self) -> Any:
        # AttributeError when it has none, as before
        return _Output(self._stream.buffer, self._wrote)

    def write(self, data: Any) -> Any:
        if data:
            self._wrote[0] = True
        try:
            return self._stream.write(data)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _OutputError(exc) from exc

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _OutputError(exc) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _silence(stream: Any) -> None:
    """Point ``stream``'s descriptor at the null device (and drop what it holds), so the
    interpreter's flush at exit does not fail again."""
    import os

    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass


def run() -> NoReturn:  # pragma: no cover - console-script shim
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
