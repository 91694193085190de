"""Running commands inside a sandbox: ``exec`` (collect), ``spawn`` (stream), TTY sessions.

Everything here goes through ``HcsCreateProcess`` with a ``ProcessParameters`` document
(Microsoft ``virtualization/api/hcs/Reference/HcsCreateProcess.md``; field list in
``SchemaReference.md`` ``ProcessParameters`` and hcsshim ``internal/hcs/schema2/
process_parameters.go``): ``CommandLine``, ``WorkingDirectory``, ``Environment``, ``User``,
``EmulateConsole`` + ``ConsoleSize`` (a pseudo console; HCS then ignores the stderr pipe) and
``CreateStdInPipe``/``CreateStdOutPipe``/``CreateStdErrPipe``.  HCS can only run a process
when the compute system has a guest connection (``VirtualMachine.GuestConnection``, which
the planner always emits, as Windows Sandbox's own document does: hcsshim issue #1327,
MouriNaruto/MouriDocs ``docs/4/ReadMe.md``); without one, or before the guest agent is up,
HcsCreateProcess fails (``HCS_E_CONNECT_FAILED``, ``ERROR_NOT_SUPPORTED``) and the error says so.

Output is drained by one reader thread per pipe (stdout and stderr concurrently, so a
process that fills one pipe while we wait on the other cannot deadlock).  Chunks reach the
caller through a bounded queue, which gives the guest back-pressure when nobody reads.

Windows command lines: a ``Sequence[str]`` command is joined with :func:`list2cmdline`, the
inverse of ``CommandLineToArgvW`` and of the Microsoft C runtime's argv parsing
(learn.microsoft.com, *Parsing C++ command-line arguments* and ``CommandLineToArgvW``).
cmd.exe has its own metacharacters (``& | < > ^ %``) that this quoting does not escape: run
cmd scripts with the string form (``"cmd /c echo a & echo b"``).

This module imports no HCS code at import time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, Final, Literal, NamedTuple

from hcs_sandbox import errors
from hcs_sandbox.hcs._slices import slices

if TYPE_CHECKING:
    from hcs_sandbox.hcs.process import Process
    from hcs_sandbox.hcs.system import ComputeSystem
    from hcs_sandbox.sandbox.sandbox import Sandbox

__all__ = [
    "SIGNALS",
    "ExecResult",
    "GuestCommandError",
    "GuestProcess",
    "OutputChunk",
    "exec_command",
    "list2cmdline",
    "merged_environment",
    "process_parameters",
    "running_system",
    "sandbox_exec",
    "sandbox_spawn",
    "split_cmdline",
    "start_process",
]

_log = logging.getLogger("hcs_sandbox.sandbox")

#: ``ProcessSignal`` values for ``SignalProcessOptions.Signal`` (SchemaReference.md
#: ``ProcessSignal``; hcsshim ``internal/hcs/schema2/process_signal.go`` ... ``signal_process_
#: options.go``: CtrlC, CtrlBreak, CtrlClose, CtrlLogOff, CtrlShutdown).
SIGNALS: tuple[str, ...] = ("CtrlC", "CtrlBreak", "CtrlClose", "CtrlLogOff", "CtrlShutdown")

#: Bytes read from a pipe at a time, and chunks buffered before readers wait for the caller.
_CHUNK = 64 * 1024
_QUEUE_CHUNKS = 256  # at most 16 MiB of unread output per process

Stream = Literal["stdout", "stderr"]


# --------------------------------------------------------------------------------------
# Command lines
# --------------------------------------------------------------------------------------

_NEEDS_QUOTES = frozenset(' \t\n\v"')


def _quote_arg(arg: str) -> str:
    """Quote one argument so ``CommandLineToArgvW`` gives it back unchanged.

    Rules (learn.microsoft.com *Parsing C++ command-line arguments*): ``2n`` backslashes
    before a ``"`` mean ``n`` backslashes and a delimiter; ``2n+1`` mean ``n`` and a literal
    ``"``; backslashes not followed by ``"`` are literal.
    """
    if arg and not (_NEEDS_QUOTES & set(arg)):
        return arg
    out = ['"']
    backslashes = 0
    for ch in arg:
        if ch == "\\":
            backslashes += 1
            continue
        if ch == '"':
            out.append("\\" * (2 * backslashes + 1) + '"')
        else:
            out.append("\\" * backslashes + ch)
        backslashes = 0
    out.append("\\" * (2 * backslashes) + '"')
    return "".join(out)


def list2cmdline(args: Sequence[str]) -> str:
    """Join an argv list into one Windows command line (the inverse of
    ``CommandLineToArgvW``).  The program name (``args[0]``) follows the stricter rule
    for it: it cannot contain ``"`` and is quoted only when it holds a space or tab."""
    if isinstance(args, str):
        raise TypeError("list2cmdline takes a sequence of arguments, not a string")
    items = list(args)
    if not items:
        raise errors.SpecError(
            "the command is empty", field="command", value=items, remedy="give a program to run"
        )
    for i, arg in enumerate(items):
        if not isinstance(arg, str):
            raise errors.SpecError(
                f"command argument {i} is not a string",
                field="command",
                value=arg,
                remedy=f"pass every argument as a str (e.g. str({arg!r}))",
            )
        if "\0" in arg:
            raise errors.SpecError(
                f"command argument {i} contains a NUL character, which Windows cannot pass",
                field="command",
                value=arg,
                remedy="remove the NUL character from the argument",
            )
    program = items[0]
    if not program or '"' in program:
        raise errors.SpecError(
            "the program name is empty or contains a double quote, which a Windows command "
            "line cannot carry in its first word",
            field="command",
            value=program,
            remedy="give the program's name or path without quotes; a space in it is quoted "
            "for you",
        )
    head = f'"{program}"' if (" " in program or "\t" in program) else program
    return " ".join([head, *(_quote_arg(a) for a in items[1:])])


def split_cmdline(line: str) -> list[str]:
    """Split a Windows command line the way ``CommandLineToArgvW`` does (the post-2008
    rules: the program name ends at the first unquoted space or tab and takes no escapes;
    after it, backslash/quote rules as in :func:`_quote_arg` and ``""`` inside quotes is a
    literal quote).  Used by tests and by ``cp``'s diagnostics."""
    args: list[str] = []
    i, n = 0, len(line)
    # argv[0]
    current: list[str] = []
    quoted = False
    while i < n:
        ch = line[i]
        if ch == '"':
            quoted = not quoted
        elif ch in " \t" and not quoted:
            break
        else:
            current.append(ch)
        i += 1
    args.append("".join(current))
    while True:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            return args
        current = []
        quoted = False
        while i < n:
            ch = line[i]
            if ch == "\\":
                start = i
                while i < n and line[i] == "\\":
                    i += 1
                count = i - start
                if i < n and line[i] == '"':
                    current.append("\\" * (count // 2))
                    if count % 2:
                        current.append('"')
                        i += 1
                    continue
                current.append("\\" * count)
                continue
            if ch == '"':
                if quoted and i + 1 < n and line[i + 1] == '"':
                    current.append('"')
                    i += 2
                    continue
                quoted = not quoted
                i += 1
                continue
            if ch in " \t" and not quoted:
                break
            current.append(ch)
            i += 1
        args.append("".join(current))


#: What a command may be, for messages.
COMMAND_ALLOWED = (
    'a command line string such as "cmd /c ver", or a list of strings such as ["cmd", "/c", "ver"]'
)


def command_line(command: str | Sequence[str]) -> str:
    """A command given as a string is used as it is; a sequence is quoted."""
    if isinstance(command, str):
        if not command.strip():
            raise errors.SpecError(
                "the command is empty", field="command", value=command, remedy="give a command"
            )
        if "\0" in command:
            raise errors.SpecError(
                "the command contains a NUL character, which Windows cannot pass",
                field="command",
                value=command,
                remedy="remove the NUL character from the command",
            )
        return command
    if isinstance(command, (bytes, bytearray)) or not hasattr(command, "__iter__"):
        raise errors.SpecError(
            f"the command must be a string or a list of strings, not {type(command).__name__}",
            field="command",
            value=command,
            allowed=COMMAND_ALLOWED,
        )
    return list2cmdline(command)


# --------------------------------------------------------------------------------------
# ProcessParameters
# --------------------------------------------------------------------------------------


def _not_a(field: str, value: object, kind: str, allowed: str) -> errors.SpecError:
    """The SpecError for an argument of the wrong type (``kind``: what it must be)."""
    return errors.SpecError(
        f"{field} must be {kind}, not {type(value).__name__}",
        field=field,
        value=value,
        allowed=allowed,
    )


def _check_console_cells(width: int, height: int, field: str = "console_size") -> None:
    """A SpecError unless ``width`` and ``height`` are whole numbers of cells, 1 to 65535
    (``ConsoleSize`` is two ``uint16``: SchemaReference ``ProcessParameters``)."""
    for dimension, cells in (("width", width), ("height", height)):
        if isinstance(cells, bool) or not isinstance(cells, int) or not 1 <= cells <= 0xFFFF:
            raise errors.SpecError(
                f"console {dimension} {cells!r} is out of range",
                field=field,
                value=cells,
                allowed="1 to 65535 character cells",
            )


#: What ``env`` may be, for messages.
ENV_ALLOWED = 'a mapping of variable names to values, both strings (env={"NAME": "value"})'


def _env_items(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """``env``'s items, when it is a mapping of strings to strings; else a SpecError."""
    if not isinstance(env, Mapping):
        raise _not_a("env", env, "a mapping", ENV_ALLOWED)
    items = list(env.items())
    for key, value in items:
        if not isinstance(key, str) or not isinstance(value, str):
            bad = key if not isinstance(key, str) else value
            raise errors.SpecError(
                f"environment variable {key!r}: {'name' if bad is key else 'value'} "
                f"{bad!r} is not a string",
                field="env",
                value=bad,
                allowed=ENV_ALLOWED,
            )
    return items


def process_parameters(
    command: str | Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    user: str | None = None,
    tty: bool = False,
    console_size: tuple[int, int] | None = None,
    stdin: bool = True,
) -> dict[str, Any]:
    """The ``ProcessParameters`` document for ``HcsCreateProcess`` (SchemaReference.md).

    ``console_size`` is ``(width, height)`` in character cells; HCS's ``ConsoleSize`` is
    ``[height, width]`` (hcsshim ``internal/hcs/schema2/process_parameters.go`` comment and
    ``internal/cmd/cmd.go``, which passes ``[2]uint{height, width}``).
    """
    params: dict[str, Any] = {"CommandLine": command_line(command)}
    if workdir is not None:  # "" too: refused, not taken for "no working directory"
        from hcs_sandbox.sandbox.hostpath import WORKDIR_ALLOWED, workdir_problem

        if not isinstance(workdir, str):
            raise _not_a("workdir", workdir, "a string", WORKDIR_ALLOWED)

        # Only what is known without the guest (hostpath.workdir_problem: a full path with a
        # drive letter, or a UNC / \\?\ / \\.\ path with its server and share or drive,
        # which is passed on; Windows' naming rules); a folder the guest cannot use is
        # ERROR_DIRECTORY from HcsCreateProcess (start_process says what fits).
        found = workdir_problem(workdir)
        if found is not None:
            reason, remedy = found
            raise errors.SpecError(
                f"invalid working directory {errors.quoted(workdir)}: {reason}",
                field="workdir",
                value=workdir,
                allowed=WORKDIR_ALLOWED,
                remedy=remedy,
                reason=reason,
            )
        params["WorkingDirectory"] = workdir
    if env:
        for key, value in _env_items(env):
            if not key or "=" in key or "\0" in key or "\0" in value:
                raise errors.SpecError(
                    f"environment variable {key!r} is not valid",
                    field="env",
                    value=key,
                    allowed="a non-empty name without '=' or NUL",
                )
        params["Environment"] = dict(env)
    if user is not None and not isinstance(user, str):
        raise _not_a("user", user, "a string", "a guest user name, or None for the default user")
    if user:
        params["User"] = user
    if console_size is not None and (
        not isinstance(console_size, (tuple, list)) or len(console_size) != 2
    ):
        raise _not_a(
            "console_size",
            console_size,
            "a (width, height) pair",
            "two whole numbers: console_size=(80, 25)",
        )
    if tty:
        params["EmulateConsole"] = True
        width, height = console_size or (80, 25)
        _check_console_cells(width, height)
        params["ConsoleSize"] = [height, width]
    elif console_size is not None:
        raise errors.SpecError(
            "console_size needs tty=True",
            field="console_size",
            value=console_size,
            remedy="ask for a TTY (tty=True, CLI -t) or drop the console size",
        )
    params["CreateStdInPipe"] = bool(stdin)
    params["CreateStdOutPipe"] = True
    # EmulateConsole: "StdErr ... is ignored" (SchemaReference ProcessParameters): one stream.
    params["CreateStdErrPipe"] = not tty
    return params


# --------------------------------------------------------------------------------------
# Results and processes
# --------------------------------------------------------------------------------------


def check_timeout(timeout: float, *, positive: bool = False, field: str = "timeout") -> float:
    """``timeout`` when it is a number of seconds (> 0 when ``positive``, else >= 0; not NaN,
    not a bool), as a ``float`` when it is another real number (a ``Fraction`` or a numpy
    scalar: the messages format it as a float, review RV-api2 A2); else a SpecError."""
    if type(timeout) is not float and type(timeout) is not int and not _is_real(timeout):
        allowed = "a number of seconds" + (" > 0" if positive else " >= 0")
        raise _not_a(field, timeout, "a number", f"{allowed}, or None for no limit")
    if not (timeout > 0 if positive else timeout >= 0):  # NaN fails both
        raise errors.SpecError(
            f"{field} {timeout!r} is not a positive number of seconds"
            if positive
            else f"{field} must be a number of seconds >= 0, not {timeout!r}",
            field=field,
            value=timeout,
            allowed=f"a number of seconds {'> 0' if positive else '>= 0'}, or None for no limit",
        )
    return timeout if type(timeout) is float or type(timeout) is int else float(timeout)


#: What stdin may be, for messages: bytes, because what a guest program reads is bytes in its
#: own code page (docs/exec.md, "Guest text and code pages"): hcs-sandbox does not guess one.
STDIN_ALLOWED = (
    "encode text first: stdin=text.encode() for UTF-8, or text.encode('cp850') for a "
    "program that reads the guest's OEM code page"
)


def _is_real(value: object) -> bool:
    """Whether ``value`` is a real number other than a bool: an ``int`` or ``float``
    (subclasses too), a ``fractions.Fraction``, a numpy scalar (numpy registers its number
    types with :mod:`numbers`)...  ``decimal.Decimal`` is no ``numbers.Real``, and it does not
    add to a float: a deadline could not be computed from it."""
    import numbers

    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_stdin(data: object) -> memoryview:
    """``data`` as a flat view of its bytes, when it is one contiguous bytes-like object
    (``bytes``, ``bytearray``, ``memoryview``, ``array.array``, ``mmap``...: anything with
    the buffer protocol; an item of several bytes counts as its bytes); else a SpecError.
    A ``str`` is refused with the way to encode it."""
    if type(data) is bytes:  # the usual one at once
        return memoryview(data)
    if isinstance(data, str):
        raise _not_a("stdin", data, "bytes", STDIN_ALLOWED)
    try:
        view = memoryview(data)  # type: ignore[arg-type]  # any buffer: checked here
    except TypeError:
        raise _not_a(
            "stdin", data, "bytes-like", "bytes, bytearray, memoryview or another buffer"
        ) from None
    if not view.c_contiguous:
        raise errors.SpecError(
            f"stdin must be one contiguous block of bytes; this {type(data).__name__} is not "
            "(a strided slice or a Fortran-order array)",
            field="stdin",
            value=data,
            remedy="copy it into one block first: stdin=bytes(data)",
        )
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def _text(data: bytes, encoding: str) -> str:
    """``data`` decoded (invalid bytes replaced), CRLF turned into ``\\n``; ``encoding``
    already checked by the caller (:func:`check_encoding`)."""
    return data.decode(encoding, errors="replace").replace("\r\n", "\n")


#: What an encoding may be, for messages.
ENCODING_ALLOWED = "a Python codec name such as cp850, cp932 or utf-16-le"

#: Bytes an encoding must decode, whole and piece by piece, with ``errors="replace"``
#: (NULs, a high byte, a UTF-8 lead byte: review RV37 F2 found punycode decoding NULs
#: and failing on guest output).
_PROBE = b"\x00\x80\xff\xc3\x00\x00"


#: :func:`encoding_problem`'s answers that callers may phrase their own way (the CLI's
#: ``--encoding`` check: cli/common.py ``codec``).
UNKNOWN_ENCODING: Final = "unknown encoding"
NOT_A_TEXT_ENCODING: Final = "not a text encoding"


def encoding_problem(encoding: str) -> str | None:
    """Why ``encoding`` cannot decode guest output, or None: it must be a Python text codec
    (``codecs.lookup``: ``cp850``, ``cp932``, ``utf-16-le``...) that decodes any bytes with
    ``errors="replace"``, whole and piece by piece (an incremental decoder).  Refused: an
    unknown name, a codec that is not a text encoding (``base64``), and one that cannot
    decode arbitrary output that way (``idna``, ``punycode``; ``utf-16``, whose incremental
    decoder wants a byte order mark: ``utf-16-le`` is what ``cmd /u`` writes)."""
    import codecs

    if not isinstance(encoding, str):
        return f"an encoding is a codec name, not {type(encoding).__name__}"
    try:
        codecs.lookup(encoding)
    except (LookupError, ValueError):
        return UNKNOWN_ENCODING
    try:
        _PROBE.decode(encoding, "replace")
        codecs.getincrementaldecoder(encoding)(errors="replace").decode(_PROBE, True)
    except LookupError:  # a bytes-to-bytes codec: "'base64' is not a text encoding"
        return NOT_A_TEXT_ENCODING
    except (UnicodeError, ValueError, TypeError, AssertionError) as exc:
        return f"it cannot decode a command's output ({exc})"
    return None


def check_encoding(encoding: str) -> str:
    """``encoding`` when :func:`encoding_problem` finds nothing; else a SpecError."""
    problem = encoding_problem(encoding)
    if problem is not None:
        raise errors.SpecError(
            f"invalid encoding {encoding!r}: {problem}",
            field="encoding",
            value=encoding,
            allowed=ENCODING_ALLOWED,
            reason=problem,
        )
    return encoding


@dataclasses.dataclass(frozen=True)
class ExecResult:
    """What :meth:`Sandbox.exec` returns: the exit code and the whole output.

    ``exit_code`` is the guest's 32-bit exit code as HCS reports it (unsigned, so
    ``STATUS_CONTROL_C_EXIT`` is ``0xC000013A``; -1 when HCS could not read it).
    ``stdout_text``/``stderr_text`` decode UTF-8 (invalid bytes replaced) and turn CRLF into
    ``\\n``; use :meth:`text` for another code page.
    """

    exit_code: int
    stdout: bytes
    stderr: bytes
    duration: float = 0.0
    command_line: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def stdout_text(self) -> str:
        return _text(self.stdout, "utf-8")

    @property
    def stderr_text(self) -> str:
        return _text(self.stderr, "utf-8")

    def text(self, encoding: str = "utf-8") -> tuple[str, str]:
        """``(stdout, stderr)`` decoded with ``encoding`` (e.g. ``"cp437"``, the OEM code page
        cmd.exe uses for its built-ins when writing to a pipe), CRLF turned into ``\\n``."""
        if encoding != "utf-8":
            check_encoding(encoding)
        return _text(self.stdout, encoding), _text(self.stderr, encoding)

    def check(self) -> ExecResult:
        """Return self when the exit code is 0, else raise :class:`GuestCommandError`."""
        if not self.ok:
            raise GuestCommandError(self)
        return self

    def to_dict(self, encoding: str = "utf-8") -> dict[str, Any]:
        """The result as JSON-ready values; ``stdout``/``stderr`` are :meth:`text` with
        ``encoding`` (the CLI's ``exec --json --encoding``)."""
        stdout, stderr = self.text(encoding)
        return {
            "exit_code": self.exit_code,
            "stdout": stdout,
            "stderr": stderr,
            "duration": self.duration,
            "command_line": self.command_line,
        }


#: :class:`hcs_sandbox.errors.GuestCommandError`, also importable from here.
GuestCommandError = errors.GuestCommandError


class OutputChunk(NamedTuple):
    """A piece of a guest process's output as it arrived: ``stream`` is ``"stdout"`` or
    ``"stderr"`` (a TTY process has only ``"stdout"``)."""

    stream: Stream
    data: bytes


_EOF = b""


class GuestProcess:
    """A process running in a sandbox (from :meth:`Sandbox.spawn`).

    Iterate it for :class:`OutputChunk` items as output arrives; :meth:`write` to its stdin
    and :meth:`close_stdin` to send end-of-file; :meth:`wait` for the exit code;
    :meth:`kill`, :meth:`signal` (``SignalProcessOptions``) and :meth:`resize` (TTY only).
    Use it as a context manager, or call :meth:`close`: closing ends the process if it still
    runs and releases its pipes and handle.

    Output is read in the background into a bounded buffer (16 MiB); when nobody consumes
    it the guest process blocks on its next write, as with a full pipe.
    """

    def __init__(
        self,
        process: Process,
        *,
        tty: bool = False,
        command_line: str = "",
        where: str = "the sandbox",
        check_sandbox: bool = False,
    ) -> None:
        self._process = process
        self.tty = tty
        self.command_line = command_line
        self.started = time.monotonic()
        self._queue: queue.Queue[tuple[Stream, bytes]] = queue.Queue(maxsize=_QUEUE_CHUNKS)
        self._closing = threading.Event()
        self._open_streams = 0
        self._readers: list[threading.Thread] = []
        self._stdin_lock = threading.Lock()
        self._exit_code: int | None = None
        #: Whether the compute system exited under the process (:meth:`_check_sandbox`).
        self._sandbox_gone: bool | None = None
        #: What the messages call the sandbox (``sandbox 'web'``).
        self._where = where
        #: A user's command (Sandbox.exec/spawn): :meth:`wait` checks the sandbox.  The
        #: library's own commands (cp's helpers, mapped-folder links, logon waits) keep
        #: their own errors (review RV-misc R2).
        self._check = check_sandbox
        self._closed = False
        #: Why :meth:`communicate`'s stdin feeder failed (anything but a broken pipe).
        self._feed_error: BaseException | None = None
        for name, pipe in (("stdout", process.stdout), ("stderr", process.stderr)):
            if pipe is None:
                continue
            self._open_streams += 1
            reader = threading.Thread(
                target=self._read_pipe,
                args=(name, pipe),
                name=f"hcs-sandbox-{name}-{process.pid}",
                daemon=True,
            )
            self._readers.append(reader)
        for reader in self._readers:
            reader.start()

    # -- background readers -----------------------------------------------------------

    def _put(self, item: tuple[Stream, bytes]) -> bool:
        while not self._closing.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _read_pipe(self, name: Stream, pipe: BinaryIO) -> None:
        try:
            while True:
                try:
                    data = pipe.read(_CHUNK)
                except (OSError, ValueError):
                    data = b""
                if not data:
                    break
                if not self._put((name, data)):
                    return
        finally:
            self._put((name, _EOF))

    # -- attributes -------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def process(self) -> Process:
        """The underlying :class:`hcs_sandbox.hcs.process.Process` handle."""
        return self._process

    @property
    def exit_code(self) -> int | None:
        """The exit code once the process has exited (and :meth:`wait` or :meth:`poll` saw
        it), else None."""
        return self._exit_code

    def poll(self) -> int | None:
        """The exit code if the process has exited, else None (no waiting)."""
        if self._exit_code is None and self._process.poll_exited():
            self._exit_code = self._process.wait(0)
        return self._exit_code

    # -- output -----------------------------------------------------------------------

    def read(self, timeout: float | None = None) -> OutputChunk | None:
        """The next chunk of output; None at the end of all output.  Raises
        :class:`~hcs_sandbox.errors.ExecTimeoutError` (without killing) after ``timeout``."""
        if timeout is not None and type(timeout) not in (float, int):
            timeout = check_timeout(
                timeout
            )  # a wrong type: a SpecError (the value is read as before)
        while self._open_streams > 0:
            try:
                stream, data = self._next(timeout)
            except queue.Empty:
                raise errors.ExecTimeoutError(
                    f"no output from guest process {self.pid} within {timeout:g} s",
                    timeout=timeout or 0.0,
                    killed=False,
                ) from None
            if data == _EOF:
                self._open_streams -= 1
                continue
            return OutputChunk(stream, data)
        return None

    def _next(self, timeout: float | None) -> tuple[Stream, bytes]:
        """The next item of the output queue; :class:`queue.Empty` after ``timeout``.  Waits
        in slices (:mod:`hcs_sandbox.hcs._slices`): Ctrl+C interrupts a silent guest
        process's ``exec`` on Windows too, where one ``Queue.get`` keeps it out until the
        wait ends (before Python 3.14; without a timeout, until the guest writes)."""
        get = self._queue.get
        for part in slices(timeout):
            try:
                return get(timeout=part)
            except queue.Empty:
                continue
        raise queue.Empty

    def __iter__(self) -> Iterator[OutputChunk]:
        while True:
            chunk = self.read()
            if chunk is None:
                return
            yield chunk

    # -- input ------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Write to the process's stdin (blocks while the pipe is full).  ``data`` is bytes or
        another contiguous bytes-like object (:func:`check_stdin`; a SpecError otherwise: a
        str is encoded first)."""
        self._write(check_stdin(data))

    def _write(self, view: memoryview) -> None:
        """:meth:`write` of a view :func:`check_stdin` made."""
        pipe = self._process.stdin
        if pipe is None or pipe.closed:
            raise errors.SandboxStateError(
                f"the stdin of guest process {self.pid} is closed",
                remedy="write before close_stdin(), and spawn without stdin=False",
            )
        with self._stdin_lock:
            while view:
                written = pipe.write(view)
                view = view[written or 0 :]

    def close_stdin(self) -> None:
        """Send end-of-file to the process (``HcsModifyProcess`` ``CloseHandle`` ``StdIn``,
        then the host end is closed, as hcsshim ``CloseStdin`` does)."""
        if self._process.stdin is None or self._process.stdin.closed:
            return
        with self._stdin_lock:
            try:
                self._process.close_stdin()
            except errors.ProcessAlreadyStoppedError:
                with contextlib.suppress(OSError):
                    self._process.stdin.close()

    # -- control ----------------------------------------------------------------------

    def kill(self) -> bool:
        """``HcsTerminateProcess``.  False when the process had already exited."""
        if self._process.closed:
            return False
        return self._process.terminate()

    def signal(self, signal: str = "CtrlC") -> None:
        """Send a console control signal (``HcsSignalProcess`` with
        ``SignalProcessOptions {"Signal": ...}``); one of :data:`SIGNALS`."""
        if signal not in SIGNALS:
            raise errors.SpecError(
                f"unknown signal {signal!r}",
                field="signal",
                value=signal,
                allowed=", ".join(SIGNALS),
            )
        try:
            self._process.signal({"Signal": signal})
        except errors.ProcessAlreadyStoppedError:
            pass

    def resize(self, width: int, height: int) -> None:
        """Resize the pseudo console of a TTY process (``ProcessModifyRequest``
        ``ConsoleSize``, hcsshim ``ResizeConsole``)."""
        if not self.tty:
            raise errors.SandboxStateError(
                f"guest process {self.pid} has no console to resize",
                remedy="spawn it with tty=True (CLI: -t)",
            )
        _check_console_cells(width, height, "size")
        try:
            self._process.resize_console(width, height)
        except errors.ProcessAlreadyStoppedError:
            pass

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit; returns the exit code.  Raises
        :class:`~hcs_sandbox.errors.ExecTimeoutError` (without killing) after ``timeout``,
        and, for a command started by :meth:`Sandbox.exec`/:meth:`Sandbox.spawn`,
        :class:`~hcs_sandbox.errors.SandboxExitedError` when the process ended with a
        non-zero code and its sandbox's compute system had exited by then
        (:meth:`_check_sandbox`)."""
        if self._exit_code is None:
            self._exit_code = self._wait_exit(timeout)
        if self._check:
            self._check_sandbox(self._exit_code)
        return self._exit_code

    def _check_sandbox(self, code: int) -> None:
        """Raise :class:`~hcs_sandbox.errors.SandboxExitedError` when the process ended with
        ``code`` != 0 and its compute system has exited: killed, stopped or removed while
        the command ran (QA s17 tester F5).  What Windows reports for a process whose VM is
        terminated is not documented (docs/windows-notes.md, "A guest process when its
        sandbox stops"); hcsshim's waits take a SystemExited seen while they wait for a
        process as "unexpected container exit" (``ErrUnexpectedContainerExit``,
        ``waitForNotification``).  The exit event may come just after the process's, so HCS
        is asked (one ``HcsGetComputeSystemProperties``) unless it came already; a command
        that returned 0 did its work, whatever happened after (no call).  It cannot tell a
        command cut short from one that ended by itself with a non-zero code just before the
        sandbox stopped, or that shut the sandbox down itself (review RV-misc R3): the
        message says so, and ``process_exit_code`` keeps the code."""
        gone = self._sandbox_gone
        if gone is None:
            gone = self._sandbox_gone = code != 0 and _system_gone(self._process.system)
        if gone:
            raise errors.SandboxExitedError(
                f"{self._where} stopped while the command {self.command_line!r} ran or just "
                f"after it ended (killed, stopped or removed by another process, its guest "
                f"crashed, or the command shut it down); HCS reported exit code {code} for "
                f"guest process {self.pid}, which may not be the command's own",
                process_exit_code=code,
                remedy="'hcs-sandbox logs' on it (if it still exists) says how it ended; "
                "start it again (a persistent sandbox) or run a new one, then the command",
            )

    def _wait_exit(self, timeout: float | None) -> int:
        if timeout is not None and type(timeout) not in (float, int):
            timeout = check_timeout(
                timeout
            )  # a wrong type: a SpecError (the value is read as before)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            step = 3600.0 if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return self._process.wait(step)
            except errors.OperationTimeoutError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise errors.ExecTimeoutError(
                        f"guest process {self.pid} did not exit within {timeout:g} s",
                        timeout=timeout or 0.0,
                        killed=False,
                    ) from None

    def communicate(
        self, input: bytes | None = None, timeout: float | None = None
    ) -> tuple[bytes, bytes]:
        """Send ``input`` (then end-of-file), read all output until the process ends.

        stdout and stderr are drained concurrently (no deadlock however large they are).
        On timeout the process is killed and :class:`~hcs_sandbox.errors.ExecTimeoutError`
        carries the output so far.  ``input`` is bytes-like (:func:`check_stdin`; a
        SpecError otherwise: a str is encoded first).  When sending ``input`` fails for
        another reason than the process having stopped reading (a broken pipe), the process
        is killed and the failure raised, once (a later call returns what is left).
        """
        data = check_stdin(input) if input is not None else memoryview(b"")
        if timeout is not None and type(timeout) not in (float, int):
            timeout = check_timeout(
                timeout
            )  # a wrong type: a SpecError (the value is read as before)
        deadline = None if timeout is None else time.monotonic() + timeout
        writer: threading.Thread | None = None
        if self._process.stdin is not None and not self._process.stdin.closed:
            writer = threading.Thread(
                target=self._feed, args=(data,), name=f"hcs-sandbox-stdin-{self.pid}"
            )
            writer.daemon = True
            writer.start()
        out: list[bytes] = []
        err: list[bytes] = []
        try:
            while True:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    chunk = self.read(timeout=left)
                except errors.ExecTimeoutError:
                    raise self.kill_for_timeout(timeout or 0.0, out, err) from None
                if chunk is None:
                    break
                (out if chunk.stream == "stdout" else err).append(chunk.data)
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                self.wait(left)
            except errors.ExecTimeoutError:
                raise self.kill_for_timeout(timeout or 0.0, out, err) from None
            except errors.SandboxExitedError as exc:
                exc.stdout, exc.stderr = b"".join(out), b"".join(err)  # what came until then
                raise
        finally:
            if writer is not None:
                writer.join(timeout=1.0)
        # Taken, so that it is raised once: a later communicate() returns what is left.
        failed, self._feed_error = self._feed_error, None
        if failed is not None:
            raise _feed_failure(self.pid, failed) from failed
        return b"".join(out), b"".join(err)

    def _feed(self, data: memoryview) -> None:
        """:meth:`communicate`'s stdin thread: write ``data``, then end-of-file.  A failure
        other than a broken pipe (the process exited without reading everything, which is no
        error) kills the process, so that the output loop ends instead of waiting for a
        process that waits for input, and :meth:`communicate` raises it."""
        stopped_reading = False
        try:
            if data:
                self._write(data)
        except (OSError, errors.HcsSandboxError) as exc:
            stopped_reading = True
            _log.debug("feeding stdin of guest process %d: %s", self.pid, exc)
        except BaseException as exc:
            self._feed_failed(exc)
        finally:
            try:
                self.close_stdin()
            except BaseException as exc:
                if stopped_reading:  # its stdin is gone already: nothing waits for the end
                    _log.debug("closing stdin of guest process %d: %s", self.pid, exc)
                else:
                    self._feed_failed(exc, closing=True)

    def _feed_failed(self, exc: BaseException, *, closing: bool = False) -> None:
        """Record why the stdin feeder failed (the first reason) and kill the process; a
        close that failed because the process is gone (``closing``) is no failure."""
        if self._feed_error is None:
            if closing and self._process.exited:
                _log.debug("closing stdin of exited guest process %d: %s", self.pid, exc)
                return
            self._feed_error = exc
        try:
            self._process.terminate()
        except Exception as kill_failed:  # the output loop still ends when the pipe is closed
            _log.warning("could not kill guest process %d: %s", self.pid, kill_failed)
        with contextlib.suppress(Exception):
            pipe = self._process.stdin
            if pipe is not None:
                pipe.close()

    def kill_for_timeout(
        self, timeout: float, out: list[bytes] | None = None, err: list[bytes] | None = None
    ) -> errors.ExecTimeoutError:
        """Kill the process because its time ran out; return the ExecTimeoutError to raise,
        with the output collected so far (``out``/``err`` plus what arrives while it dies)."""
        out = out if out is not None else []
        err = err if err is not None else []
        try:
            self.kill()
        except errors.HcsSandboxError as exc:
            _log.warning("could not kill guest process %d after its timeout: %s", self.pid, exc)
        # Collect what arrived until the pipes closed (bounded: the process is gone).
        end = time.monotonic() + 2.0
        while self._open_streams > 0 and time.monotonic() < end:
            try:
                chunk = self.read(timeout=max(0.01, end - time.monotonic()))
            except errors.ExecTimeoutError:
                break
            if chunk is None:
                break
            (out if chunk.stream == "stdout" else err).append(chunk.data)
        return errors.ExecTimeoutError(
            f"the command {self.command_line!r} did not finish within {timeout:g} s; "
            f"guest process {self.pid} was killed",
            timeout=timeout,
            stdout=b"".join(out),
            stderr=b"".join(err),
            remedy="give it more time with a larger timeout (CLI: --timeout)",
        )

    # -- closing ----------------------------------------------------------------------

    def close(self) -> None:
        """End the process if it still runs, stop the readers and release the handle."""
        if self._closed:
            return
        self._closed = True
        try:
            if not self._process.closed and not self._process.exited:
                with contextlib.suppress(errors.HcsSandboxError):
                    self._process.terminate()
        finally:
            self._closing.set()
            for reader in self._readers:
                reader.join(timeout=5.0)
            self._process.close()

    def __enter__(self) -> GuestProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<GuestProcess {self.pid} {self.command_line!r}>"


def _feed_failure(pid: int, exc: BaseException) -> errors.HcsSandboxError:
    """What :meth:`GuestProcess.communicate` raises when its stdin feeder failed."""
    if isinstance(exc, errors.HcsSandboxError):
        why, remedy = exc.message, exc.remedy
    else:
        why, remedy = f"{type(exc).__name__}: {exc}", errors.BUG_REMEDY
    return errors.HcsSandboxError(
        f"sending stdin to guest process {pid} failed, so it was killed: {why}", remedy=remedy
    )


# --------------------------------------------------------------------------------------
# Starting processes
# --------------------------------------------------------------------------------------

_NOT_SUPPORTED = 0x80070032  # ERROR_NOT_SUPPORTED as an HRESULT (winerror.h)
#: HRESULT_FROM_WIN32(ERROR_DIRECTORY), winerror.h 267 "The directory name is invalid": what
#: HcsCreateProcess returns when ``WorkingDirectory`` does not exist in a Windows container
#: (docker/cli#4101; docker/for-win#3131, from vmcomputeagent's processmanagement.cpp);
#: for a Windows Sandbox guest UNCONFIRMED (docs/windows-notes.md).
_ERROR_DIRECTORY = 0x8007010B


# MAX_PATH (hostpath.MAX_PATH, 260 with the terminating NUL): "Setting a current directory
# longer than MAX_PATH causes CreateProcessW to fail" (SetCurrentDirectory,
# learn.microsoft.com), whose path gets a trailing backslash: "specify MAX_PATH-2
# characters for the path unless you include the trailing backslash".


def _workdir_failure(workdir: str, name: str | None) -> tuple[str, str]:
    """What an ``ERROR_DIRECTORY`` for ``workdir`` means, as ``(what, remedy)``.

    CreateProcess gives that one error for any working directory it cannot use: one that
    does not exist or is no folder, one it cannot open (a share the guest cannot reach), one
    longer than MAX_PATH.  The length comes first, for every shape: "Setting a current
    directory longer than MAX_PATH causes CreateProcessW to fail" (SetCurrentDirectory,
    learn.microsoft.com) holds for a UNC, ``\\\\?\\`` or ``\\\\.\\`` path too (the
    extended-length ``\\\\?\\`` prefix of *Maximum Path Length Limitation* does not lift it for a
    current directory).  The "create it first" remedy fits only a drive-letter path within
    MAX_PATH; a UNC path gets its own (networking is off by default: docs/networking.md).
    """
    from hcs_sandbox.sandbox.hostpath import MAX_PATH, is_network_path, is_windows_absolute

    given = f"the working directory '{workdir}'"
    folder = workdir.rstrip("\\/")
    if len(folder) > MAX_PATH - 2:
        prefix = workdir[:4].replace("/", "\\")
        lifted = ""
        if prefix in ("\\\\?\\", "\\\\.\\"):
            lifted = f" (the {prefix} prefix does not lift this limit for a working directory)"
        return (
            f"{given} is longer than MAX_PATH ({MAX_PATH} characters), which CreateProcess "
            f"cannot use as a current directory{lifted}, or does not exist there",
            "give a shorter path (map the folder to a short guest path such as C:\\work)",
        )
    if is_network_path(workdir):
        return (
            f"{given} is a network folder the guest could not open",
            "a sandbox has no network unless it is created with --network nat "
            "(docs/networking.md), and the share must be reachable from the guest; or give a "
            "folder on the guest's own disk (cmd.exe never runs in a UNC folder: give the "
            'guest cmd /c "pushd \\\\server\\share && COMMAND", quoted so that your own shell '
            "does not run COMMAND on this host)",
        )
    if not is_windows_absolute(workdir):  # \\?\C:\..., \\.\Volume{...}\...: the guest's answer
        return (
            f"{given} does not exist there, or is not a folder",
            "give an existing folder",
        )
    if len(folder) == 2:  # "C:" alone would be drive-relative
        folder += "\\"
    mkdir = f'cmd /c mkdir "{folder}"'
    if name is None:
        remedy = f"create it first ({mkdir}), or give an existing folder"
    else:
        remedy = (
            f"create it first, e.g. hcs-sandbox exec {name} -- {mkdir}, or give an existing folder"
        )
    return f"{given} does not exist there, or is not a folder", remedy


def start_process(
    system: ComputeSystem,
    command: str | Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    user: str | None = None,
    tty: bool = False,
    console_size: tuple[int, int] | None = None,
    stdin: bool = True,
    where: str = "the sandbox",
    name: str | None = None,
    check_sandbox: bool = False,
) -> GuestProcess:
    """``HcsCreateProcess`` in ``system``; returns a :class:`GuestProcess` (its readers run).

    Guest-connection failures become :class:`~hcs_sandbox.errors.ConnectFailedError` with a
    message saying so.  A ``workdir`` the guest cannot use (``ERROR_DIRECTORY``) is an
    :class:`~hcs_sandbox.errors.HcsError` that says what fits: for a drive-letter path, that
    the folder is missing, with how to create it (``name``: the sandbox's, for the example
    command); for a UNC path, that the guest could not open the share.  ``check_sandbox``:
    a user's command, whose :meth:`GuestProcess.wait` raises
    :class:`~hcs_sandbox.errors.SandboxExitedError` when the sandbox stopped under it.
    """
    params = process_parameters(
        command,
        env=env,
        workdir=workdir,
        user=user,
        tty=tty,
        console_size=console_size,
        stdin=stdin,
    )
    try:
        process = system.create_process(params)
    except errors.ConnectFailedError as exc:
        raise exc.restated(
            f"cannot run a command in {where}: the guest connection failed ({exc.message})",
            remedy="the guest may still be booting; wait a little and try again, or check "
            "that the sandbox was created with a guest connection",
        ) from exc
    except errors.HcsError as exc:
        if exc.hresult == _NOT_SUPPORTED:
            raise exc.restated(
                f"cannot run a command in {where}: HCS has no guest connection to it "
                f"({exc.message})",
                remedy="create the sandbox with hcs-sandbox (its document has a "
                "GuestConnection); systems made by other tools may not allow processes",
                cls=errors.ConnectFailedError,
            ) from exc
        if exc.hresult == _ERROR_DIRECTORY and workdir is not None:
            what, remedy = _workdir_failure(workdir, name)
            raise exc.restated(
                f"cannot run a command in {where}: {what} ({exc.message})", remedy=remedy
            ) from exc
        raise
    try:
        return GuestProcess(
            process,
            tty=tty,
            command_line=str(params["CommandLine"]),
            where=where,
            check_sandbox=check_sandbox,
        )
    except BaseException:
        process.close()
        raise


def exec_command(
    system: ComputeSystem,
    command: str | Sequence[str],
    *,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    user: str | None = None,
    stdin: bytes | None = None,
    where: str = "the sandbox",
    name: str | None = None,
    check_sandbox: bool = False,
) -> ExecResult:
    """Run a command to completion and collect its output (see :meth:`Sandbox.exec`;
    ``check_sandbox`` as for :func:`start_process`: only for a user's command)."""
    if timeout is not None:
        timeout = check_timeout(timeout, positive=True)
    if stdin is not None:
        check_stdin(stdin)
    started = time.monotonic()
    proc = start_process(
        system,
        command,
        env=env,
        workdir=workdir,
        user=user,
        stdin=stdin is not None,
        where=where,
        name=name,
        check_sandbox=check_sandbox,
    )
    with proc:
        out, err = proc.communicate(stdin, timeout=timeout)
        code = proc.wait()
    return ExecResult(
        exit_code=code,
        stdout=out,
        stderr=err,
        duration=time.monotonic() - started,
        command_line=proc.command_line,
    )


def _system_gone(system: ComputeSystem) -> bool:
    """True when ``system`` has exited: its exit event came, or HCS says it is stopped or
    gone (``NotFound``/``AlreadyStopped``, as ``Sandbox._hcs_state`` takes them)."""
    if system.exited:
        return True
    try:
        props = system.properties({"PropertyTypes": []})
    except (errors.NotFoundError, errors.AlreadyStoppedError):
        return True
    except errors.HcsSandboxError as exc:  # unknown (a closed handle...): the code stands
        _log.debug("asking HCS whether %s still runs: %s", system.id, exc)
        return system.exited
    return system.exited or str(props.get("State", "")).lower() == "stopped"


def merged_environment(
    base: Mapping[str, str] | None, extra: Mapping[str, str] | None
) -> dict[str, str] | None:
    """The spec's environment overlaid with per-command variables (names compared without
    case, as Windows does: *Environment Variables*, learn.microsoft.com)."""
    extra_items = _env_items(extra) if extra is not None else []
    if not base and not extra_items:
        return None
    merged: dict[str, str] = {}
    folded: dict[str, str] = {}
    for items in (list((base or {}).items()), extra_items):
        for key, value in items:
            old = folded.get(key.casefold())
            if old is not None:
                merged.pop(old, None)
            merged[key] = value
            folded[key.casefold()] = key
    return merged


# --------------------------------------------------------------------------------------
# Sandbox glue (Sandbox.exec / Sandbox.spawn delegate here)
# --------------------------------------------------------------------------------------


def running_system(sandbox: Sandbox, doing: str) -> ComputeSystem:
    """The compute system of a running sandbox, or a clear SandboxStateError."""
    current = sandbox.state
    if current != "running":
        remedy = {
            "paused": f"resume it first: 'hcs-sandbox resume {sandbox.name}'",
            "created": f"start it first: 'hcs-sandbox start {sandbox.name}'",
            "creating": "another process is creating or re-creating it: wait for it",
            "removing": f"it is being removed, or a remove stopped half way: finish it with "
            f"'hcs-sandbox rm -f {sandbox.name}' and run a new one",
        }.get(current, f"start it ('hcs-sandbox start {sandbox.name}') or run a new one")
        raise errors.SandboxStateError(
            f"cannot {doing} in sandbox '{sandbox.name}': it is {current}",
            state=current,
            remedy=remedy,
        )
    system = sandbox._open_system()
    if system is None:
        raise errors.SandboxStateError(
            f"cannot {doing} in sandbox '{sandbox.name}': its compute system is gone",
            state="stopped",
            remedy=f"remove it with 'hcs-sandbox rm {sandbox.name}'",
        )
    return system


def sandbox_exec(
    sandbox: Sandbox,
    command: str | Sequence[str],
    *,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    user: str | None = None,
    stdin: bytes | None = None,
) -> ExecResult:
    """:meth:`Sandbox.exec`."""
    system = running_system(sandbox, "run a command")
    return exec_command(
        system,
        command,
        timeout=timeout,
        env=merged_environment(sandbox.spec.environment, env),
        workdir=workdir,
        user=user,
        stdin=stdin,
        where=f"sandbox '{sandbox.name}'",
        name=sandbox.name,
        check_sandbox=True,
    )


def sandbox_spawn(
    sandbox: Sandbox,
    command: str | Sequence[str],
    *,
    tty: bool = False,
    console_size: tuple[int, int] | None = None,
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    user: str | None = None,
    stdin: bool = True,
    check_sandbox: bool = True,
) -> GuestProcess:
    """:meth:`Sandbox.spawn` (``check_sandbox`` False: the library's own wait, as for a
    logon command)."""
    system = running_system(sandbox, "run a command")
    return start_process(
        system,
        command,
        env=merged_environment(sandbox.spec.environment, env),
        workdir=workdir,
        user=user,
        tty=tty,
        console_size=console_size,
        stdin=stdin,
        where=f"sandbox '{sandbox.name}'",
        name=sandbox.name,
        check_sandbox=check_sandbox,
    )
