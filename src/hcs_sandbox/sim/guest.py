"""The simulated guest: a small Windows-flavoured command interpreter over a folder.

Each compute system has a guest file system (a folder in the state directory standing for
``C:\\``).  VSMB shares appear at hcsshim's guest path
``\\\\?\\VMSMB\\VSMB-{dcc079ae-60ba-4d07-847c-3493609c0870}\\<ShareName>`` (hcsshim
``internal/uvm/vsmb.go``); a share with ``Options.ReadOnly`` refuses writes ("Access is denied.").

The command set is documented in docs/simulator.md.  Output uses CRLF line endings and UTF-8.
Every long-running command polls ``cancel`` so HcsTerminateProcess / HcsSignalProcess stop it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import re
import select
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = ["VSMB_PREFIX", "GuestError", "GuestFS", "GuestIO", "Share", "run_command_line"]

# hcsshim internal/uvm/vsmb.go: vsmbSharePrefix + the VSMB GUID.
VSMB_PREFIX = "\\\\?\\VMSMB\\VSMB-{dcc079ae-60ba-4d07-847c-3493609c0870}\\"

NOT_RECOGNIZED = 9009  # cmd.exe's exit code for an unknown command


class GuestError(Exception):
    """A command failed with a cmd-style message and exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Cancelled(Exception):
    """The process was terminated or signalled."""


@dataclass
class Share:
    name: str
    path: str
    read_only: bool


@dataclass
class Resolved:
    host: Path
    read_only: bool


class GuestFS:
    """Maps guest paths to host paths (case-insensitively, as NTFS does)."""

    def __init__(self, root: Path, shares: Callable[[], list[Share]]) -> None:
        self.root = root
        self.shares = shares

    def resolve(self, guest: str, cwd: str) -> Resolved:
        path = guest.replace("/", "\\")
        if path.upper().startswith(VSMB_PREFIX.upper()):
            rest = path[len(VSMB_PREFIX) :]
            name, _, tail = rest.partition("\\")
            for share in self.shares():
                if share.name.lower() == name.lower():
                    return Resolved(_ci_join(Path(share.path), tail), share.read_only)
            raise GuestError("The network name cannot be found.", 1)
        # A path is UNC only when it starts with two separators before any drive is taken
        # off: after "X:", a run of separators is one (Windows' normalisation collapses them,
        # *File path formats on Windows systems*, "Canonicalize separators").
        if path[:4] in ("\\\\?\\", "\\\\.\\"):
            path = path[4:]
            if path.upper().startswith("UNC\\"):
                raise GuestError("The network path was not found.", 1)
        elif path.startswith("\\\\"):
            raise GuestError("The network path was not found.", 1)
        if re.match(r"^[A-Za-z]:", path):
            if path[0].upper() != "C":
                raise GuestError("The system cannot find the path specified.", 1)
            path = "\\" + path[2:].lstrip("\\")
        elif not path.startswith("\\"):
            return self.resolve(cwd.rstrip("\\") + "\\" + path, cwd)
        # A guest symbolic link to a VSMB share (mklink /d C:\x \\?\VMSMB\...) keeps the
        # share's rules (read-only): follow it through the share, not through the host.
        parts = [p for p in path.split("\\") if p]
        for i in range(1, len(parts) + 1):
            prefix = _ci_join(self.root, "\\".join(parts[:i]))
            if prefix.is_symlink():
                text = os.readlink(prefix)
                if text.upper().startswith(VSMB_PREFIX.upper()):
                    rest = "\\".join(parts[i:])
                    return self.resolve(text + ("\\" + rest if rest else ""), cwd)
        return Resolved(_ci_join(self.root, path), False)

    def resolve_link(self, guest: str, cwd: str) -> Resolved:
        """Like :meth:`resolve`, but a symbolic link as the last component is not followed
        (what ``rmdir``/``del`` of a link act on)."""
        path = guest.replace("/", "\\").rstrip("\\")
        parent, _, name = path.rpartition("\\")
        if parent and name and name not in (".", ".."):
            base = self.resolve(parent + "\\", cwd)
            candidate = _ci_join(base.host, name)
            if candidate.is_symlink():
                return Resolved(candidate, base.read_only)
        return self.resolve(guest, cwd)


def _ci_join(base: Path, tail: str) -> Path:
    current = base
    for part in [p for p in tail.split("\\") if p and p != "."]:
        if part == "..":
            if current != base:
                current = current.parent
            continue
        candidate = current / part
        if not candidate.exists() and current.is_dir():
            for entry in current.iterdir():
                if entry.name.lower() == part.lower():
                    candidate = entry
                    break
        current = candidate
    return current


class RunGate:
    """Whether a compute system's guest runs: shut while the system is Paused.  On Hyper-V a
    paused VM runs no guest code (HcsPauseComputeSystem.md: "Pauses the execution of a
    compute system"), so its guest processes make no progress (no output, no exit, their
    sleeps stand still) until it is resumed.  One per system (runtime id) with guest
    processes in this process; the guest checks :attr:`paused` (a plain attribute: nothing
    more on the normal path) and waits only while it is set."""

    __slots__ = ("_lock", "_open", "_paused_for", "_since", "paused")

    def __init__(self) -> None:
        self.paused = False
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._paused_for = 0.0  # seconds spent paused before the current pause
        self._since = 0.0

    def pause(self) -> None:
        with self._lock:
            if not self.paused:
                self._since = time.monotonic()
                self._open.clear()
                self.paused = True

    def resume(self) -> None:
        with self._lock:
            if self.paused:
                self._paused_for += time.monotonic() - self._since
                self.paused = False
                self._open.set()

    def clock(self) -> float:
        """The guest's monotonic clock, in seconds: it stands still while paused."""
        with self._lock:
            now = self._since if self.paused else time.monotonic()
            return now - self._paused_for

    def wait_open(self, cancel: threading.Event) -> None:
        """Until the system runs again; :class:`Cancelled` if ``cancel`` is set meanwhile
        (the system is terminated while paused)."""
        while not self._open.wait(0.05):
            if cancel.is_set():
                raise Cancelled
        if cancel.is_set():
            raise Cancelled


class GuestIO:
    """The guest side of a process's standard handles."""

    def __init__(
        self,
        stdin_fd: int | None,
        stdout_fd: int | None,
        stderr_fd: int | None,
        cancel: threading.Event,
        stdin_closed: threading.Event,
        *,
        gate: RunGate | None = None,
    ) -> None:
        self.stdin_fd = stdin_fd
        self.stdout_fd = stdout_fd
        self.stderr_fd = stderr_fd
        self.cancel = cancel
        self.stdin_closed = stdin_closed
        self.gate = gate if gate is not None else RunGate()
        self._broken: set[int] = set()
        self._pending = b""

    def check(self) -> None:
        """Raise :class:`Cancelled` when the process is being ended; wait while its
        system is paused."""
        if self.cancel.is_set():
            raise Cancelled
        if self.gate.paused:
            self.gate.wait_open(self.cancel)

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of the guest's time (a pause does not count)."""
        gate = self.gate
        end = gate.clock() + seconds
        while True:
            self.check()  # waits while paused
            remaining = end - gate.clock()
            if remaining <= 0:
                return
            if self.cancel.wait(remaining):
                raise Cancelled

    def read_chunk(self) -> bytes:
        """Next bytes from stdin; b"" at end of input."""
        if self.stdin_fd is None:
            return b""
        while True:
            self.check()
            if self.stdin_closed.is_set():
                # CloseHandle(StdIn) ends the input after what was already written: drain it.
                ready, _, _ = select.select([self.stdin_fd], [], [], 0)
                if not ready:
                    return b""
                try:
                    return os.read(self.stdin_fd, 65536)
                except OSError:
                    return b""
            ready, _, _ = select.select([self.stdin_fd], [], [], 0.05)
            if ready:
                try:
                    return os.read(self.stdin_fd, 65536)
                except OSError:
                    return b""

    def read_line(self) -> bytes | None:
        while b"\n" not in self._pending:
            chunk = self.read_chunk()
            if not chunk:
                line, self._pending = self._pending, b""
                return line or None
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line + b"\n"

    def write(self, data: bytes, err: bool = False) -> None:
        fd = self.stderr_fd if err else self.stdout_fd
        if fd is None or fd in self._broken or not data:
            return
        view = memoryview(data)
        while view:
            self.check()
            _, ready, _ = select.select([], [fd], [], 0.05)
            if not ready:
                continue
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                continue
            except OSError:
                self._broken.add(fd)
                return
            view = view[written:]

    def out(self, text: str) -> None:
        self.write(text.encode("utf-8"))

    def err(self, text: str) -> None:
        self.write(text.encode("utf-8"), err=True)


@dataclass
class GuestState:
    fs: GuestFS
    io: GuestIO
    env: dict[str, str]
    cwd: str
    hostname: str
    user: str
    errorlevel: int = 0
    exited: bool = False


class _Redirect:
    """Output sinks for one command after ``>``, ``>>``, ``1>&2``, ``2>&1`` and ``<``."""

    def __init__(self, io: GuestIO) -> None:
        self.io = io
        self.out: Callable[[bytes], object] = io.write
        self.err: Callable[[bytes], object] = lambda data: io.write(data, err=True)
        self.stdin_data: bytes | None = None


def _split_top(line: str) -> list[tuple[str, str]]:
    """Split on unquoted ``&&``, ``||`` and ``&`` -> [(operator_before, command)]."""
    parts: list[tuple[str, str]] = []
    current = ""
    op = ""
    quoted = False
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == '"':
            quoted = not quoted
        if not quoted and ch in "&|":
            if ch == "&" and i > 0 and line[i - 1] == ">":
                current += ch  # 2>&1
                i += 1
                continue
            two = line[i : i + 2]
            parts.append((op, current))
            if two in ("&&", "||"):
                op = two
                i += 2
            else:
                op = ch
                i += 1
            current = ""
            continue
        current += ch
        i += 1
    parts.append((op, current))
    return [(o, c) for o, c in parts if c.strip()]


def _tokens(text: str) -> list[str]:
    """Windows-style tokens: spaces separate, double quotes group (and are removed)."""
    out: list[str] = []
    current = ""
    quoted = False
    started = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
            started = True
            continue
        if ch in " \t" and not quoted:
            if started:
                out.append(current)
                current = ""
                started = False
            continue
        current += ch
        started = True
    if started:
        out.append(current)
    return out


_REDIR = re.compile(r'\s*(2>&1|1>&2|>&2|[12]?>>|[12]?>|<)\s*("[^"]*"|[^\s&|<>]+)?')


def _expand(text: str, env: dict[str, str], errorlevel: int) -> str:
    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.upper() == "ERRORLEVEL":
            return str(errorlevel)
        for key, value in env.items():
            if key.upper() == name.upper():
                return value
        return match.group(0)

    return re.sub(r"%([^%\s]+)%", repl, text)


def run_command_line(state: GuestState, command_line: str) -> int:
    """Run a process command line (``cmd /c ...``, or a single command); return its exit code."""
    try:
        tokens = _tokens(command_line)
        if not tokens:
            return 0
        exe = tokens[0].replace("/", "\\").rsplit("\\", 1)[-1].lower()
        if exe.endswith(".exe"):
            exe = exe[:-4]
        if exe == "cmd":
            match = re.match(r'^\s*("[^"]*"|\S+)\s*(.*)$', command_line, re.S)
            rest = match.group(2) if match else ""
            flag = re.match(r"^(/[cCkK])\s*(.*)$", rest, re.S)
            if flag:
                script = flag.group(2).strip()
                if len(script) >= 2 and script[0] == '"' and script[-1] == '"':
                    script = script[1:-1]
                return run_script(state, script)
            return _interactive(state)
        return run_script(state, command_line)
    except Cancelled:
        raise
    except GuestError as exc:
        state.io.err(str(exc) + "\r\n")
        return exc.code


def _interactive(state: GuestState) -> int:
    while not state.exited:
        line = state.io.read_line()
        if line is None:
            break
        state.errorlevel = run_script(state, line.decode("utf-8", "replace").strip())
    return state.errorlevel


def run_script(state: GuestState, script: str) -> int:
    for op, command in _split_top(script):
        if state.exited:
            break
        if op == "&&" and state.errorlevel != 0:
            continue
        if op == "||" and state.errorlevel == 0:
            continue
        state.errorlevel = _run_simple(state, _expand(command, state.env, state.errorlevel))
    return state.errorlevel


def _run_simple(state: GuestState, text: str) -> int:
    io = state.io
    io.check()  # a paused guest starts no command (and a cancelled one none either)
    redirect = _Redirect(io)
    body = text
    opened: list[_Sink] = []
    try:
        redirections = [m for m in _REDIR.finditer(text) if _unquoted(text, m.start())]
        for match in redirections:
            if match.group(1) in ("2>&1", "1>&2", ">&2") or match.group(2):
                # cmd keeps the whitespace before a redirection ("echo a >f" writes "a ").
                lead = match.group(0)[: len(match.group(0)) - len(match.group(0).lstrip())]
                body = body.replace(match.group(0), lead, 1)
        for match in redirections:
            oper, target = match.group(1), (match.group(2) or "").strip('"')
            if oper == "2>&1":
                redirect.err = redirect.out
            elif oper in ("1>&2", ">&2"):
                redirect.out = redirect.err
            elif oper == "<" and target:
                resolved = state.fs.resolve(target, state.cwd)
                try:
                    redirect.stdin_data = resolved.host.read_bytes()
                except OSError:
                    raise GuestError("The system cannot find the file specified.") from None
            elif target:
                sink = _open_sink(state, target, append=">>" in oper)
                opened.append(sink)
                if oper.startswith("2"):
                    redirect.err = sink.write
                else:
                    redirect.out = sink.write
        tokens = _tokens(body)
        if not tokens:
            return 0
        return _dispatch(state, tokens, body, redirect)
    except GuestError as exc:
        redirect.err((str(exc) + "\r\n").encode("utf-8"))
        return exc.code
    finally:
        for sink in opened:
            with contextlib.suppress(OSError):
                sink.close()


def _unquoted(text: str, position: int) -> bool:
    """True when ``position`` is outside double quotes (cmd ignores ``>`` inside them)."""
    return text.count('"', 0, position) % 2 == 0


class _RedirectedIO:
    """The I/O of a child ``cmd`` started by a redirected command: writes go to the
    parent's redirection targets, everything else (stdin, cancellation) is shared."""

    def __init__(self, io: Any, redirect: _Redirect) -> None:
        self._io = io
        self._redirect = redirect

    def write(self, data: bytes, err: bool = False) -> None:
        (self._redirect.err if err else self._redirect.out)(data)

    def out(self, text: str) -> None:
        self.write(text.encode("utf-8"))

    def err(self, text: str) -> None:
        self.write(text.encode("utf-8"), err=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._io, name)


class _NullSink:
    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


class _Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...

    def close(self) -> None: ...


def _open_sink(state: GuestState, target: str, append: bool) -> _Sink:
    if target.lower() == "nul":
        return _NullSink()
    resolved = _writable(state, target)
    try:
        # Unbuffered: cmd.exe writes each line to the file as it goes (a reader sees it
        # while the command runs; nothing waits in this process for the command's end).
        return open(resolved, "ab" if append else "wb", buffering=0)
    except OSError:
        raise GuestError("The system cannot find the path specified.") from None


def _writable(state: GuestState, guest_path: str) -> Path:
    resolved = state.fs.resolve(guest_path, state.cwd)
    if resolved.read_only:
        raise GuestError("Access is denied.", 1)
    return resolved.host


def _display(path: str, cwd: str) -> str:
    if re.match(r"^[A-Za-z]:", path) or path.startswith("\\\\"):
        return path
    return cwd.rstrip("\\") + "\\" + path


def _if_branches(rest: str) -> tuple[str, str | None]:
    """An IF's command and its ELSE command (None without one).  cmd.exe's ``IF cond
    (command) ELSE command`` (learn.microsoft.com windows-commands *if*: ``if [not] exist
    <filename> <command> [else <expression>]``; cmd's own ``if /?``: the ELSE must be on the
    IF's line, and ``IF EXIST filename. (del filename.) ELSE echo filename. missing`` is
    valid where ``IF EXIST filename. del filename. ELSE ...`` is not, the command before
    ELSE needing its parentheses).  A command not in parentheses is the rest of the line, as
    before.  A parenthesised command is one simple command here (no blocks are simulated);
    anything but ELSE after it is a syntax error here (not simulated)."""
    text = rest.strip()
    if not text.startswith("("):
        return rest, None
    command, after = _parenthesised(text)
    if not after:
        return command, None
    otherwise = re.match(r"^else\s+(.*)$", after, re.I | re.S)
    if otherwise is None:
        raise GuestError("The syntax of the command is incorrect.")
    tail = otherwise.group(1).strip()
    if tail.startswith("("):
        # The same rule as the command before ELSE: one parenthesised command, nothing after
        # it (``ELSE (a) (b)``, ``ELSE (a) ELSE (b)``: a syntax error, as cmd.exe says).
        tail, junk = _parenthesised(tail)
        if junk:
            raise GuestError("The syntax of the command is incorrect.")
    return command, tail


def _parenthesised(text: str) -> tuple[str, str]:
    """``text`` that starts with ``(``: what is inside the parentheses (balanced; quotes
    hide them) and what follows the closing one (stripped); unbalanced: a syntax error."""
    depth, quoted = 0, False
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
            if depth == 0:
                return text[1:i], text[i + 1 :].strip()
    raise GuestError("The syntax of the command is incorrect.")


def _dispatch(state: GuestState, tokens: list[str], body: str, r: _Redirect) -> int:
    body = body.lstrip()
    io = state.io
    name = tokens[0].lower()
    if name.endswith(".exe"):
        name = name[:-4]
    args = tokens[1:]

    def out(text: str) -> None:
        r.out(text.encode("utf-8"))

    if name in ("echo", "echo.") or name.startswith("echo."):
        raw = body[4:]
        if raw.startswith("."):
            out(raw[1:].strip() + "\r\n")
        elif not raw.strip():
            out("ECHO is on.\r\n")
        else:
            out((raw[1:] if raw.startswith(" ") else raw) + "\r\n")
        return 0
    if name == "if":
        # ``if [not] exist PATH COMMAND`` (cmd.exe IF; "PATH\*" is true for a directory,
        # because FindFirstFile on it finds at least "." there).  Other IF forms: not simulated.
        words = list(args)
        negate = bool(words) and words[0].lower() == "not"
        if negate:
            words = words[1:]
        if len(words) < 3 or words[0].lower() != "exist":
            raise GuestError("The syntax of the command is incorrect.")
        probe = words[1].replace("/", "\\")
        try:
            if probe.endswith("\\*"):
                found = state.fs.resolve(probe[:-2], state.cwd).host.is_dir()
            else:
                probed = state.fs.resolve(probe, state.cwd).host
                found = probed.exists() or probed.is_symlink()
        except GuestError:
            found = False
        match = re.match(r'^\s*if\s+(?:not\s+)?exist\s+("[^"]*"|\S+)\s+(.*)$', body, re.I | re.S)
        rest = match.group(2) if match else " ".join(words[2:])
        then, otherwise = _if_branches(rest)
        if found != negate:
            return _run_simple(state, then)
        if otherwise is not None:
            return _run_simple(state, otherwise)
        return state.errorlevel
    if name == "rem":
        return 0
    if name == "exit":
        code = 0
        rest = [a for a in args if a.lower() != "/b"]
        if rest:
            try:
                code = int(rest[0])
            except ValueError:
                code = 0
        state.exited = True
        return code & 0xFFFFFFFF
    if name == "cmd":
        # A child cmd.exe: its output goes where this command's redirections say, and its
        # ``exit`` ends only the child (cmd.exe semantics).
        sub = dataclasses.replace(
            state,
            io=_RedirectedIO(state.io, r),  # type: ignore[arg-type]  # duck-typed GuestIO
            env=dict(state.env),
            exited=False,
        )
        return run_command_line(sub, body)
    if name == "type":
        if not args:
            raise GuestError("The syntax of the command is incorrect.")
        resolved = state.fs.resolve(args[0], state.cwd)
        if not resolved.host.is_file():
            raise GuestError("The system cannot find the file specified.")
        r.out(resolved.host.read_bytes())
        return 0
    if name == "more":
        if r.stdin_data is not None:
            r.out(r.stdin_data)
            return 0
        if args:
            resolved = state.fs.resolve(args[0], state.cwd)
            if not resolved.host.is_file():
                raise GuestError(f"Cannot access file {_display(args[0], state.cwd)}")
            r.out(resolved.host.read_bytes())
            return 0
        while True:
            chunk = io.read_chunk()
            if not chunk:
                return 0
            r.out(chunk)
    if name in ("mkdir", "md"):
        if not args:
            raise GuestError("The syntax of the command is incorrect.")
        for arg in args:
            target = _writable(state, arg)
            if target.exists():
                raise GuestError(f"A subdirectory or file {arg} already exists.")
            target.mkdir(parents=True)
        return 0
    if name in ("del", "erase"):
        files = [a for a in args if not a.startswith("/")]
        if not files:
            raise GuestError("The syntax of the command is incorrect.")
        for arg in files:
            target = _writable(state, arg)
            if target.is_dir():
                for child in target.iterdir():
                    if child.is_file():
                        child.unlink()
            elif target.exists() or target.is_symlink():
                target.unlink()
            else:
                raise GuestError(f"Could Not Find {_display(arg, state.cwd)}")
        return 0
    if name in ("rmdir", "rd"):
        paths = [a for a in args if not a.startswith("/")]
        recursive = any(a.lower() == "/s" for a in args)
        for arg in paths:
            unlinked = state.fs.resolve_link(arg, state.cwd)
            if unlinked.read_only:
                raise GuestError("Access is denied.", 1)
            target = unlinked.host
            if not target.exists() and not target.is_symlink():
                raise GuestError("The system cannot find the file specified.")
            if target.is_symlink():
                target.unlink()
            elif recursive:
                shutil.rmtree(target)
            else:
                try:
                    target.rmdir()
                except OSError:
                    raise GuestError("The directory is not empty.") from None
        return 0
    if name == "copy":
        files = [a for a in args if not a.startswith("/")]
        if len(files) != 2:
            raise GuestError("The syntax of the command is incorrect.")
        source = state.fs.resolve(files[0], state.cwd).host
        if not source.is_file():
            raise GuestError("The system cannot find the file specified.")
        target = _writable(state, files[1])
        if target.is_dir():
            target = target / source.name
        shutil.copyfile(source, target)
        out("        1 file(s) copied.\r\n")
        return 0
    if name in ("xcopy", "robocopy"):
        files = [a for a in args if not a.startswith("/")]
        if len(files) != 2:
            raise GuestError("Invalid number of parameters")
        source = state.fs.resolve(files[0], state.cwd).host
        target = _writable(state, files[1])
        if source.is_dir():
            count = sum(1 for p in source.rglob("*") if p.is_file())
            shutil.copytree(source, target, dirs_exist_ok=True, symlinks=True)
        elif source.is_file():
            count = 1
            target.mkdir(parents=True, exist_ok=True) if not target.suffix else None
            shutil.copy(source, target)
        else:
            raise GuestError(f"File not found - {source.name}", 4)
        out(f"{count} File(s) copied\r\n")
        return 0
    if name == "dir":
        paths = [a for a in args if not a.startswith("/")]
        guest = paths[0] if paths else state.cwd
        target = state.fs.resolve(guest, state.cwd).host
        if not target.exists():
            raise GuestError("File Not Found")
        out(f" Directory of {_display(guest, state.cwd)}\r\n\r\n")
        entries = (
            sorted(target.iterdir(), key=lambda p: p.name.lower()) if target.is_dir() else [target]
        )
        for entry in entries:
            stamp = datetime.datetime.fromtimestamp(entry.lstat().st_mtime)
            when = stamp.strftime("%m/%d/%Y  %I:%M %p")
            if entry.is_symlink():
                kind = "<SYMLINKD>    " if entry.is_dir() else "<SYMLINK>     "
            elif entry.is_dir():
                kind = "<DIR>         "
            else:
                kind = f"{entry.stat().st_size:>14,}"
            out(f"{when}    {kind} {entry.name}\r\n")
        return 0
    if name in ("cd", "chdir"):
        paths = [a for a in args if a.lower() != "/d"]
        if not paths:
            out(state.cwd + "\r\n")
            return 0
        guest = paths[0]
        resolved = state.fs.resolve(guest, state.cwd)
        if not resolved.host.is_dir():
            raise GuestError("The system cannot find the path specified.")
        new = _display(guest.replace("/", "\\"), state.cwd)
        state.cwd = _normalize_guest(new)
        return 0
    if name == "set":
        if not args:
            for key in sorted(state.env, key=str.upper):
                out(f"{key}={state.env[key]}\r\n")
            return 0
        assignment = body.strip()[3:].strip()
        if "=" in assignment:
            key, _, value = assignment.partition("=")
            for existing in list(state.env):
                if existing.upper() == key.upper():
                    del state.env[existing]
            if value:
                state.env[key] = value
            return 0
        matches = [k for k in sorted(state.env) if k.upper().startswith(assignment.upper())]
        if not matches:
            raise GuestError(f"Environment variable {assignment} not defined")
        for key in matches:
            out(f"{key}={state.env[key]}\r\n")
        return 0
    if name == "hostname":
        out(state.hostname + "\r\n")
        return 0
    if name == "whoami":
        out(state.user + "\r\n")
        return 0
    if name == "ver":
        out("\r\nMicrosoft Windows [Version 10.0.22621.0] (hcs-sandbox simulator)\r\n")
        return 0
    if name == "mklink":
        directory = any(a.lower() in ("/d", "/j") for a in args)
        paths = [a for a in args if not a.startswith("/")]
        if len(paths) != 2:
            raise GuestError("The syntax of the command is incorrect.")
        link = _writable(state, paths[0])
        target = state.fs.resolve(paths[1], state.cwd).host
        if link.exists() or link.is_symlink():
            raise GuestError("Cannot create a file when that file already exists.")
        if paths[1].replace("/", "\\").upper().startswith(VSMB_PREFIX.upper()):
            # Link text is the share path itself, so GuestFS.resolve applies the share's rules.
            os.symlink(paths[1].replace("/", "\\"), link, target_is_directory=directory)
        else:
            os.symlink(target, link, target_is_directory=directory)
        out(f"symbolic link created for {paths[0]} <<===>> {paths[1]}\r\n")
        return 0
    if name == "ping":
        count = 4
        for i, arg in enumerate(args):
            if arg.lower() in ("-n", "/n") and i + 1 < len(args):
                count = int(args[i + 1])
        host = next((a for a in reversed(args) if not a.startswith(("-", "/"))), "127.0.0.1")
        out(f"\r\nPinging {host} with 32 bytes of data:\r\n")
        for i in range(count):
            out(f"Reply from {host}: bytes=32 time<1ms TTL=128\r\n")
            if i + 1 < count:
                io.sleep(1.0)
        return 0
    if name == "timeout":
        seconds = 0
        for i, arg in enumerate(args):
            if arg.lower() == "/t" and i + 1 < len(args):
                seconds = int(args[i + 1])
        out(f"\r\nWaiting for {seconds} seconds, press a key to continue ...\r\n")
        if seconds < 0:
            while True:
                io.sleep(0.1)
        io.sleep(float(seconds))
        return 0
    if name == "bytes":
        total = int(args[0]) if args else 256
        pattern = bytes(range(256))
        r.out((pattern * (total // 256 + 1))[:total])
        return 0
    raise GuestError(
        f"'{tokens[0]}' is not recognized as an internal or external command,\r\n"
        "operable program or batch file.",
        NOT_RECOGNIZED,
    )


def _normalize_guest(path: str) -> str:
    r"""A guest current directory as cmd's ``cd`` shows it.

    "/" is a separator as "\\" is: Windows converts forward slashes before it splits a path
    (*File path formats on Windows systems*, "Canonicalize separators").  A device prefix
    (``\\.\X:``, ``//?/X:``) is kept and the rest normalised.  A literal ``\\?\`` (back
    slashes only: .NET's PathInternal.IsExtended, "Skipping of normalization will *only*
    occur if back slashes ('\') are used") keeps the rest as given but for a trailing
    separator: such a path is "passed to the system with minimal modification, which means
    that you cannot use forward slashes to represent path separators, or a period to
    represent the current directory, or double dots to represent the parent directory"
    (*Naming Files, Paths, and Namespaces*).
    """
    if path.startswith("\\\\?\\"):
        rest = path[4:]
        if len(rest) > 3:
            rest = rest.rstrip("\\")
        return "\\\\?\\" + rest
    prefix = ""
    head = path[:4].replace("/", "\\")
    if head in ("\\\\?\\", "\\\\.\\") and re.match(r"^[A-Za-z]:", path[4:]):
        prefix, path = head, path[4:]
    drive, rest = path[:2], path[2:].replace("/", "\\")
    parts: list[str] = []
    for part in rest.split("\\"):
        if not part or part == ".":
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return prefix + drive.upper() + "\\" + "\\".join(parts)


def default_environment(hostname: str, user: str) -> dict[str, str]:
    """The environment every simulated guest process starts with."""
    return {
        "COMPUTERNAME": hostname,
        "USERNAME": user.rsplit("\\", 1)[-1],
        "USERPROFILE": "C:\\Users\\WDAGUtilityAccount",
        "SystemRoot": "C:\\Windows",
        "windir": "C:\\Windows",
        "SystemDrive": "C:",
        "TEMP": "C:\\Windows\\Temp",
        "TMP": "C:\\Windows\\Temp",
        "PATH": "C:\\Windows\\system32;C:\\Windows",
        "PATHEXT": ".COM;.EXE;.BAT;.CMD",
        "ComSpec": "C:\\Windows\\system32\\cmd.exe",
    }


def seed_guest_fs(root: Path) -> None:
    """Create the folders a fresh Windows guest has."""
    for sub in ("Windows/System32", "Windows/Temp", "Users/WDAGUtilityAccount/Desktop"):
        (root / sub).mkdir(parents=True, exist_ok=True)
