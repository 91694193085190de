"""The logon command (the ``.wsb`` ``<LogonCommand><Command>``) and the sandbox's logs.

Windows Sandbox runs the logon command once after the user logs on, as that user, with the
mapped folders already in place (Microsoft *Windows Sandbox configuration* docs,
``windows-sandbox-configure-using-wsb-file.md``, LogonCommand).  hcs-sandbox runs it once
after each start, through ``HcsCreateProcess``: ``Sandbox.start`` returns once the guest has
started it (or starting it failed or gave up, logged); only the wait for its end runs in a
background thread of the process that started the sandbox.

Its output is captured **inside the guest**, so it does not depend on the starting process
living on (``hcs-sandbox run -d`` exits right after printing the id):

1. the folder ``<sandbox dir>/logs/guest`` (nothing else) is shared read-write with the guest
   as the VSMB share ``hcs-logs`` (``HcsModifyComputeSystem`` ``Add`` on
   ``VirtualMachine/Devices/VirtualSmb/Shares``, HcsModifyComputeSystem.md; options: hcsshim
   ``DefaultVSMBOptions(false)``, see :mod:`hcs_sandbox.sandbox.files`);
2. the guest runs (:func:`guest_command_line`)::

       cmd /c cmd /c "<command>" 1>>"<share>\\logon.log" 2>&1 && echo ok>"<share>\\logon.done"

   so cmd.exe in the guest appends stdout and stderr to ``logon.log`` and, when the exit
   code is 0, leaves the marker ``logon.done``; the process's own exit code stays the
   command's (``a && b`` ends with ``a``'s code when ``a`` fails);
3. while the starting process lives, the thread waits for the command, writes its exit code
   to the lifecycle log (a row of the store) and removes the share again; when the process
   ends first, an exit hook (:func:`_let_go`) closes its handle to the command without
   ending it: the command keeps running and writing, and the share stays until the VM stops
   (as it does when the ``Sandbox`` object was closed before the end: the thread does not
   open another handle to remove it);
4. ``logs NAME`` (:func:`read_logs`, any process) reads ``logon.log`` and the marker.

The guest agent may not answer right after ``HcsStartComputeSystem``: ``start`` retries
while HCS reports a guest-connection error (``HCS_E_CONNECT_FAILED`` and the like), for up to
:data:`READY_TIMEOUT` seconds (telling its ``progress`` callback), then logs the failure and
returns (``Sandbox.logon_error``).  Ctrl+C meanwhile removes the share and propagates.  When
the share cannot be added, the command's output is captured through its pipes instead (only
while the starting process lives) and the log says so.

Isolation trade-off (docs/exec.md): a sandbox with a logon command can write to one host
folder, ``logs/guest``, for as long as the share exists.  The host only ever *reads* it as
text (never through a symbolic link, at most :data:`MAX_SHOWN` bytes, the newest); the
lifecycle log is in the store, outside the share.  A guest can fill the host disk
through it (no quota): use no logon command for untrusted workloads that run for long.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import stat
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from hcs_sandbox import errors

if TYPE_CHECKING:
    from collections.abc import Callable

    from hcs_sandbox.hcs.system import ComputeSystem
    from hcs_sandbox.sandbox.guest import GuestProcess
    from hcs_sandbox.sandbox.sandbox import Sandbox

__all__ = [
    "GUEST_LOG_DIR",
    "LOGON_DONE",
    "LOGON_LOG",
    "LOG_SHARE",
    "MAX_SHOWN",
    "READY_TIMEOUT",
    "LogRead",
    "LogonStart",
    "guest_command_line",
    "logon_log_path",
    "read_log",
    "read_logs",
    "start_logon_command",
]

_log = logging.getLogger("hcs_sandbox.sandbox")

LOGON_LOG = "logon.log"
LOGON_DONE = "logon.done"
#: The VSMB share name and the host folder (under the sandbox's ``logs``) behind it.
LOG_SHARE = "hcs-logs"
GUEST_LOG_DIR = "guest"
#: How long to keep retrying HcsCreateProcess while the guest connection is not up.
READY_TIMEOUT = 180.0
_RETRY_EVERY = 1.0
#: ``logs`` shows at most this much of the command's output (the newest part).
MAX_SHOWN = 8 * 1024 * 1024
_SEPARATOR = "---- logon command output ----\n"


def guest_log_dir(sandbox: Sandbox) -> Path:
    return Path(sandbox.directory) / "logs" / GUEST_LOG_DIR


def logon_log_path(sandbox: Sandbox) -> Path:
    return guest_log_dir(sandbox) / LOGON_LOG


_CMD_SPECIALS = "&|<>^()"


def _escape_for_outer(command: str) -> str:
    """Caret-escape cmd.exe metacharacters that the *outer* cmd would see unquoted.

    The command goes inside one pair of quotes, so its own quoted parts are unquoted for
    the outer cmd.exe: their ``& | < > ^ ( )`` get a ``^`` (cmd.exe removes the caret
    before it starts the inner cmd; Microsoft *cmd* docs, "escape character").  Nothing
    changes for a command without quotes.
    """
    out: list[str] = []
    quoted = False  # inside a quoted part of the command itself
    for ch in command:
        if ch == '"':
            quoted = not quoted
        elif quoted and ch in _CMD_SPECIALS:
            out.append("^")
        out.append(ch)
    return "".join(out)


def guest_command_line(command: str, share_path: str) -> str:
    """The command line the guest runs: ``command`` in a child cmd.exe whose stdout and
    stderr are appended to ``<share_path>\\logon.log``, then, on exit code 0, the marker
    ``<share_path>\\logon.done``.  TODO: a marker with any exit code needs delayed expansion
    (``cmd /v:on ... !ERRORLEVEL!``), which the simulator does not model yet.

    ``cmd /c "<command>"``: cmd.exe strips the first and the last quote and runs the rest as
    it is (Microsoft *cmd* docs, "processing quotation marks"), so ``&``, ``|`` and
    redirections inside the command stay the command's own.
    """
    if '"' in share_path:
        raise errors.SpecError(f"the log share path {share_path!r} contains a quote")
    log = f'"{share_path}\\{LOGON_LOG}"'
    done = f'"{share_path}\\{LOGON_DONE}"'
    return f'cmd /c cmd /c "{_escape_for_outer(command)}" 1>>{log} 2>&1 && echo ok>{done}'


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


def _read_guest_file(path: Path, limit: int, start: int = 0) -> tuple[bytes, int, int] | None:
    """The bytes from ``start`` of a regular file the guest wrote (never through a link), at
    most the last ``limit`` of them: (data, the offset where data begins, the file's size),
    or None when it does not exist.  A file now shorter than ``start`` (rewritten) is read
    from its beginning."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise errors.StorageError(
            f"could not read {path.name} in {path.parent}: {exc}",
            remedy="the guest may have replaced it with a link; it is not followed",
        ) from exc
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise errors.StorageError(f"{path} is not a regular file; it is not read")
        begin = start if 0 <= start <= info.st_size else 0
        begin = max(begin, info.st_size - limit)
        fh.seek(begin)
        data = fh.read(info.st_size - begin)  # not past the size seen (the guest may write on)
        return data, begin, info.st_size


@dataclasses.dataclass(frozen=True)
class LogRead:
    """One read of a sandbox's log (:meth:`Sandbox.read_log`).

    ``head``: the lifecycle log, its notes (the guest's end marker, "only the last ...
    bytes"), then the line ``---- logon command output ----`` when the logon command has
    output (or ended); ``output``: the bytes of the command's output (``logon.log``, as the
    guest wrote them) from offset ``start``, at most the newest :data:`MAX_SHOWN`; ``size``:
    the output's size when read (``start + len(output)``; 0 when there is none).  A reader
    that follows the log asks for ``start=size`` next time and decodes with an incremental
    decoder, so a character the guest has half written is not shown broken; a ``start`` other
    than what it asked for means the output was rewritten (shorter than that) or grew by
    more than :data:`MAX_SHOWN` meanwhile."""

    head: str
    output: bytes
    start: int
    size: int

    def text(self, encoding: str = "utf-8") -> str:
        """``head`` and the output decoded with ``encoding`` (invalid bytes replaced, CRLF
        turned into ``\\n``): what :meth:`Sandbox.logs` returns."""
        from hcs_sandbox.sandbox.guest import _text, check_encoding  # ExecResult.text's

        if encoding != "utf-8":
            check_encoding(encoding)
        return self.head + _text(self.output, encoding)


def read_log(sandbox: Sandbox, lifecycle: str, start: int = 0) -> LogRead:
    """The sandbox's lifecycle log and the logon command's output (if any) from ``start``
    (an offset in its bytes): :class:`LogRead`."""
    try:
        found = _read_guest_file(logon_log_path(sandbox), MAX_SHOWN, start)
        done = _read_guest_file(guest_log_dir(sandbox) / LOGON_DONE, 64)
    except errors.StorageError as exc:
        raise errors.StorageError(
            f"could not read the logon log of sandbox '{sandbox.name}': {exc.message}",
            remedy=exc.remedy,
        ) from exc
    if found is None and done is None:
        return LogRead(lifecycle, b"", 0, 0)
    head = lifecycle
    if done is not None and "logon command exited" not in lifecycle:
        head += "logon command finished with exit code 0 (seen by the guest)\n"
    if found is None:
        return LogRead(head + _SEPARATOR, b"", 0, 0)
    output, begin, size = found
    if size > MAX_SHOWN:
        head += f"(only the last {MAX_SHOWN} bytes of the output are shown)\n"
    return LogRead(head + _SEPARATOR, output, begin, size)


def read_logs(sandbox: Sandbox, lifecycle: str, encoding: str = "utf-8") -> str:
    """The sandbox's lifecycle log followed by the logon command's output (if any), decoded
    with ``encoding``."""
    return read_log(sandbox, lifecycle).text(encoding)


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LogonStart:
    """What :func:`start_logon_command` did: ``thread`` waits for the command's end in the
    background (None when it was not started); ``error`` says why it was not started;
    ``warning``: it was started, but its output is captured through pipes, so only while
    this process runs (the log folder could not be shared with the guest)."""

    thread: threading.Thread | None
    error: str | None = None
    warning: str | None = None


@dataclasses.dataclass
class _Started:
    """A logon command started in the guest, and the system whose share it writes to."""

    proc: GuestProcess
    system: ComputeSystem | None  # the log share was added through it (None: pipes)


def start_logon_command(
    sandbox: Sandbox,
    *,
    ready_timeout: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> LogonStart | None:
    """Start the spec's logon command in the guest (see the module docstring); return once
    it runs there, or once starting it failed or gave up (after ``ready_timeout``, default
    :data:`READY_TIMEOUT`, while the guest connection is not up).  Waiting for its end, the
    exit code in the log and the share's removal happen in a background thread
    (:attr:`LogonStart.thread`), for as long as this process lives.

    ``progress`` is told each step (and each retry, with the time waited so far).
    None without a logon command.  Never raises an :class:`Exception` (failures go to the
    sandbox's log and :attr:`LogonStart.error`); a :class:`KeyboardInterrupt` while it
    waits removes the share, ends a command that was already started, writes
    ``logon command not started: interrupted`` and propagates.
    """
    command = sandbox.spec.logon_command
    if not command:
        return None
    timeout = READY_TIMEOUT if ready_timeout is None else ready_timeout
    started = _begin(sandbox, command, timeout, progress)
    if isinstance(started, str):
        return LogonStart(None, started)
    _watch(started.proc)
    thread = threading.Thread(
        target=_finish,
        args=(sandbox, started),
        name=f"hcs-sandbox-logon-{sandbox.name}",
        daemon=True,  # a process that ends first leaves the command running in the guest
    )
    thread.start()
    if started.system is None:
        return LogonStart(
            thread,
            warning="its output is captured only while this process runs (the log folder "
            f"could not be shared with the guest; see 'hcs-sandbox logs {sandbox.name}')",
        )
    return LogonStart(thread)


def _add_share(sandbox: Sandbox) -> ComputeSystem | None:
    """Share ``logs/guest`` read-write as ``hcs-logs``; the system, or None on failure."""
    from hcs_sandbox.sandbox.files import vsmb_request
    from hcs_sandbox.sandbox.guest import running_system
    from hcs_sandbox.schema.enums import ModifyRequestType

    directory = guest_log_dir(sandbox)
    if not directory.parent.parent.is_dir():
        return None  # the sandbox was removed meanwhile: never re-create its folder
    try:
        directory.parent.mkdir(mode=0o700, exist_ok=True)
        directory.mkdir(mode=0o700, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            (directory / LOGON_DONE).unlink()  # a marker from an earlier start
        system = running_system(sandbox, "run the logon command")
        try:
            system.modify(
                vsmb_request(ModifyRequestType.ADD, LOG_SHARE, os.path.realpath(directory))
            )
        except errors.AlreadyExistsError:
            pass  # left from an earlier run in this VM's life
    except Exception as exc:
        sandbox._log_line(
            f"logon command output: could not share the log folder ({exc}); capturing "
            "through pipes while this process runs"
        )
        return None
    return system


def _remove_share(system: ComputeSystem) -> None:
    from hcs_sandbox.sandbox.files import vsmb_request
    from hcs_sandbox.schema.enums import ModifyRequestType

    try:
        system.modify(vsmb_request(ModifyRequestType.REMOVE, LOG_SHARE))
    except Exception as exc:  # the VM may have stopped, or the Sandbox object was closed
        _log.debug("could not remove the log share: %s", exc)


def _spawn(
    sandbox: Sandbox,
    command_line: str,
    ready_timeout: float,
    progress: Callable[[str], None] | None = None,
) -> GuestProcess | str:
    """The started process, or why it was not started (written to the log)."""
    from hcs_sandbox.sandbox.guest import sandbox_spawn

    began = time.monotonic()
    deadline = began + ready_timeout
    while True:
        try:
            # The library's wait (not a user's): no SandboxExitedError (review RV-misc R2).
            return sandbox_spawn(sandbox, command_line, stdin=False, check_sandbox=False)
        except errors.ConnectFailedError as exc:
            if time.monotonic() >= deadline:
                return _not_started(sandbox, exc)
            if progress is not None:
                waited = time.monotonic() - began
                progress(
                    "waiting for the guest to run the logon command "
                    f"({waited:.0f} s, up to {ready_timeout:.0f} s)"
                )
            time.sleep(_RETRY_EVERY)
        except Exception as exc:
            return _not_started(sandbox, exc)


def _not_started(sandbox: Sandbox, why: object) -> str:
    """Log that the logon command was not started; the reason, for the caller."""
    reason = errors.in_brief(why) if isinstance(why, BaseException) else str(why)
    try:
        sandbox._log_line(f"logon command not started: {reason}")
    except Exception as exc:  # the sandbox was removed meanwhile
        _log.info("logon command of %s not started: %s (%s)", sandbox.name, reason, exc)
    return reason


def _begin(
    sandbox: Sandbox,
    command: str,
    ready_timeout: float,
    progress: Callable[[str], None] | None,
) -> _Started | str:
    """Add the share and start the command in the guest (retrying while the guest
    connection is not up); the started command, or why not (logged)."""
    from hcs_sandbox.sandbox.files import vsmb_path

    system: ComputeSystem | None = None
    proc: GuestProcess | None = None
    try:
        if progress is not None:
            progress("starting the logon command")
        system = _add_share(sandbox)
        if system is not None:
            command_line = guest_command_line(command, vsmb_path(LOG_SHARE))
        else:
            command_line = f"cmd /c {command}"
        spawned = _spawn(sandbox, command_line, ready_timeout, progress)
        if isinstance(spawned, str):
            if system is not None:
                _remove_share(system)
            return spawned
        proc = spawned
        try:
            sandbox._log_line(f"logon command started: {command}")
        except Exception as exc:  # removed meanwhile: its VM (and the command) are gone
            _log.info("logon command of %s started, not logged: %s", sandbox.name, exc)
        return _Started(proc, system)
    except Exception as exc:  # anything else: never an error of start() itself
        _log.debug("logon command of %s", sandbox.name, exc_info=True)
        if proc is not None:
            with contextlib.suppress(Exception):
                proc.close()
        if system is not None:
            _remove_share(system)
        return _not_started(sandbox, exc)
    except BaseException:  # Ctrl+C while waiting: nothing of the logon command is left
        with contextlib.suppress(Exception):
            if proc is not None:
                proc.close()  # ends it: the start it belonged to was interrupted
            if system is not None:
                _remove_share(system)
            sandbox._log_line("logon command not started: interrupted")
        raise


# Logon commands whose end a thread of this process awaits; at exit they are let go.
_watched: set[GuestProcess] = set()
_watched_lock = threading.Lock()
_exiting = threading.Event()
_hooked = False


def _watch(proc: GuestProcess) -> None:
    global _hooked
    with _watched_lock:
        if not _hooked:
            import atexit

            atexit.register(_let_go)
            _hooked = True
        _watched.add(proc)


def _let_go() -> None:
    """At interpreter exit (``run -d`` right after printing the id, or any process that
    ends while its logon commands run): release their handles and pipes *without* ending
    them (:meth:`Process.close <hcs_sandbox.hcs.process.Process.close>` never terminates;
    the guest runs them on), before the handles' safety nets would warn about a handle
    left open.  The waiting threads, which die with the process, write nothing more and
    leave the share in place (it goes when the VM stops)."""
    _exiting.set()
    with _watched_lock:
        procs = list(_watched)
        _watched.clear()
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.process.close()


def _finish(sandbox: Sandbox, started: _Started) -> None:
    """The background half: wait for the command's end, log its exit code, remove the
    share.  Never lets an exception escape the thread (a sandbox removed or stopped
    meanwhile is an ordinary end, recorded in its log when it still has one)."""
    try:
        if started.system is not None:
            _wait_in_guest(sandbox, started.proc)
        else:
            _capture_pipes(sandbox, started.proc)
    except Exception as exc:
        _log.info("logon command of %s ended early: %s", sandbox.name, exc)
        if not _exiting.is_set():
            with contextlib.suppress(Exception):
                sandbox._log_line(f"logon command ended early: {exc}")
    finally:
        with _watched_lock:
            _watched.discard(started.proc)
        # Let go at exit: the command runs on and writes to the share; it stays.
        if started.system is not None and not _exiting.is_set():
            _remove_share(started.system)


def _run(sandbox: Sandbox, command: str, ready_timeout: float) -> None:
    """Both halves in the calling thread (start, then wait for the end)."""
    started = _begin(sandbox, command, ready_timeout, None)
    if not isinstance(started, str):
        _finish(sandbox, started)


def _wait_in_guest(sandbox: Sandbox, proc: GuestProcess) -> None:
    """The guest writes the output; here only the exit code and cmd.exe's own complaints."""
    try:
        with proc:
            extra = b"".join(chunk.data for chunk in proc)
            code = proc.wait()
        if extra.strip():
            sandbox._log_line(
                "logon command: " + extra.decode("utf-8", "replace").strip().replace("\r\n", " ")
            )
        sandbox._log_line(f"logon command exited with code {code}")
    except Exception as exc:
        _log.debug("logon command of %s", sandbox.name, exc_info=True)
        if not _exiting.is_set():  # else let go at exit: it runs on
            sandbox._log_line(f"logon command: stopped waiting for it: {exc}")


def _capture_pipes(sandbox: Sandbox, proc: GuestProcess) -> None:
    """Fallback: append the output to logon.log as it arrives (streamed)."""
    path = logon_log_path(sandbox)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with proc, path.open("ab") as log:
            for chunk in proc:
                log.write(chunk.data)
                log.flush()
            code = proc.wait()
        sandbox._log_line(f"logon command exited with code {code}")
    except Exception as exc:
        _log.debug("logon command of %s", sandbox.name, exc_info=True)
        if not _exiting.is_set():
            sandbox._log_line(f"logon command output capture stopped: {exc}")
