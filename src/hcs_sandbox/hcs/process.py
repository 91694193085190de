"""``Process``: one ``HCS_PROCESS`` handle in a compute system, with its stdio pipes.

Functions: Microsoft ``virtualization/api/hcs/Reference/HcsCreateProcess.md``,
``HcsOpenProcess.md``, ``HcsTerminateProcess.md``, ``HcsSignalProcess.md``,
``HcsGetProcessInfo.md``, ``HcsGetProcessProperties.md``, ``HcsModifyProcess.md``,
``HcsSetProcessCallback.md``, ``HcsWaitForProcessExit.md``, ``HcsCloseProcess.md``.
Behaviour as hcsshim ``internal/hcs/v2/process.go`` and ``system.go`` (``CreateProcess``):

- the std handles in ``HCS_PROCESS_INFORMATION`` belong to the caller; they become Python
  binary file objects (``native.handles.handle_to_fd`` + ``open(fd, ..., buffering=0)``);
- closing stdin = ``HcsModifyProcess {"Operation": "CloseHandle", "CloseHandle": {"Handle":
  "StdIn"}}`` (skipped once the process exited, where it would fail) then closing the host end;
- the exit code comes from the ``HcsEventProcessExited`` event (``ProcessStatus``:
  ``ExitCode`` is valid when ``LastWaitResult`` is 0; hcsshim reports -1 otherwise).
"""

from __future__ import annotations

import ctypes
import logging
import weakref
from collections.abc import Mapping
from itertools import starmap
from typing import TYPE_CHECKING, Any, BinaryIO

from hcs_sandbox import errors
from hcs_sandbox.hcs._call import check, dumps, native, optional_json, wbuf
from hcs_sandbox.hcs._handle import HandleGuard
from hcs_sandbox.hcs._watch import Watch, Watched, set_event_callback, wait_native_exit
from hcs_sandbox.hcs.operation import (
    ProcessInformation,
    run_handle_operation,
    run_process_operation,
)
from hcs_sandbox.native.handles import close_handle, close_held
from hcs_sandbox.native.types import GENERIC_ALL, HCS_PROCESS_INFORMATION, HcsEventType

if TYPE_CHECKING:
    from hcs_sandbox.hcs.system import ComputeSystem

__all__ = ["Process"]

_log = logging.getLogger("hcs_sandbox.hcs")


def _close_process_handle(held: ctypes.c_void_p) -> None:
    """``HcsCloseProcess`` on what ``held`` still holds (set to NULL as it is called)."""
    close_held(held, native("computecore", "HcsCloseProcess"))


def _open_pipe(files: list[BinaryIO | None], handle: int | None, *, readable: bool) -> None:
    """Wrap a host pipe HANDLE as an unbuffered binary file that owns it, appended to
    ``files`` (None for a pipe not requested).

    The file is made and appended from C (``list.extend`` over ``map``, as ``_run`` calls
    ``HcsCreateOperation``): no point where CPython runs a signal handler lies between, so
    after a Ctrl+C the pipe is either in ``files``, owned by its file, or not wrapped yet,
    closed raw by :func:`_close_created` -- never a dropped file that closes it too."""
    if not handle:
        files.append(None)
        return
    from hcs_sandbox.native.handles import handle_to_fd

    fd = handle_to_fd(handle, readable=readable)
    files.extend(map(open, (fd,), ("rb" if readable else "wb",), (0,)))


def _close_files(files: list[BinaryIO | None]) -> None:
    for f in files:
        if f is not None:
            try:
                f.close()
            except OSError:
                _log.debug("closing a process pipe failed", exc_info=True)


def _close_created(
    process: Process | None,
    guard: HandleGuard,
    pinfo: Any,
    files: list[BinaryIO | None],
) -> None:
    """:meth:`Process._create`'s clean-up: the pipes (the wrapped ones own their handles;
    the rest, in the ``HCS_PROCESS_INFORMATION`` ``pinfo`` the wait wrote, are closed raw)
    and the process handle (what the guard's ``c_void_p`` still holds)."""
    if process is not None:
        process.close()
        return
    _close_files(files)
    pipes = (pinfo.StdInput or None, pinfo.StdOutput or None, pinfo.StdError or None)
    if any(pipes[len(files) :]):
        from hcs_sandbox.hcs.operation import _close_info_handles

        rest: list[int | None] = [None] * len(files)
        rest += pipes[len(files) :]
        _close_info_handles(ProcessInformation(pinfo.ProcessId, rest[0], rest[1], rest[2]))
    guard.close()


#: The std handle fields of ``HCS_PROCESS_INFORMATION``: their offsets in the structure.
_STD_FIELDS = ("StdInput", "StdOutput", "StdError")


def _close_std_handles(pinfo: Any) -> None:
    """Close the std handles ``pinfo`` (an ``HCS_PROCESS_INFORMATION``) still holds, each
    through a ``c_void_p`` over its field: set to NULL right before ``CloseHandle``
    (:func:`~hcs_sandbox.native.handles.close_handle`), so a second call closes only what
    the first did not."""
    for name in _STD_FIELDS:
        field = ctypes.c_void_p.from_buffer(pinfo, getattr(HCS_PROCESS_INFORMATION, name).offset)
        try:
            close_handle(field)
        except OSError:
            _log.exception("closing a process std handle failed")


def _finalize(guard: HandleGuard, watch: Watch, files: list[BinaryIO | None], pid: int) -> None:
    if not guard.closed:
        _log.warning("process %d was not closed; closing its handle", pid)
        _close_files(files)
        watch.mark_closed()
        guard.close()


class Process(Watched):
    """A process in a compute system.  Build with :meth:`ComputeSystem.create_process`."""

    def __init__(
        self,
        system: ComputeSystem,
        guard: HandleGuard,
        pid: int,
        *,
        stdio: tuple[BinaryIO | None, BinaryIO | None, BinaryIO | None] = (None, None, None),
        timeout: float,
    ) -> None:
        self._system = system
        self._guard = guard
        self._pid = pid
        self.stdin, self.stdout, self.stderr = stdio
        self._files: list[BinaryIO | None] = list(stdio)
        self.timeout = timeout
        self._watch = Watch(HcsEventType.PROCESS_EXITED)
        self._event_id: int | None = None
        #: The status query made at registration failed: wait() asks again (see wait).
        self._status_unknown = False
        self._finalizer = weakref.finalize(self, _finalize, guard, self._watch, self._files, pid)

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def _create(
        cls, system: ComputeSystem, parameters: str | Mapping[str, Any], *, timeout: float
    ) -> Process:
        params_buf = wbuf(dumps(parameters))
        out = ctypes.c_void_p(None)
        # The guard owns what the call writes to ``out`` from the moment it is written.
        guard = HandleGuard(out, _close_process_handle, f"process in {system.id!r}")
        create = native("computecore", "HcsCreateProcess")
        sys_guard = system._handle_guard

        def invoke(op: int, called: list[int]) -> None:
            called.extend(
                starmap(create, ((sys_guard.handle, params_buf, op, None, ctypes.byref(out)),))
            )
            guard.bind(out.value or 0)

        def late(info: ProcessInformation | None, hr: int) -> None:
            # HCS finished after our caller gave up: nobody will use these handles.
            if info is not None:
                from hcs_sandbox.hcs.operation import _close_info_handles

                _close_info_handles(info)
            guard.close()

        # The operation, the pipes' wrapping, the owner and its registration run in one try
        # with the clean-up: the process handle is in ``out``, which the guard holds, from
        # the call's return on, and a failure or a Ctrl+C anywhere closes it (review RV59);
        # the pipe handles are in ``pinfo``, which the wait writes, from its return on.
        pinfo = HCS_PROCESS_INFORMATION()
        info: ProcessInformation | None = None
        files: list[BinaryIO | None] = []
        process: Process | None = None
        try:
            info, _ = run_process_operation(
                "HcsCreateProcess",
                invoke,
                timeout=timeout,
                context=f"starting a process in compute system {system.id!r}",
                keepalive=(params_buf, out),
                # The new process's own guard too: the operation uses its handle until HCS
                # completes it, so an operation handed to the reaper (a timeout, a Ctrl+C)
                # defers the process handle's close (_close_created's) to its end.
                guards=(sys_guard, guard),
                on_late_result=late,
                process_info=pinfo,
            )
            pipes = ((info.std_input, False), (info.std_output, True), (info.std_error, True))
            for handle, readable in pipes:
                _open_pipe(files, handle, readable=readable)
            process = cls(
                system,
                guard,
                info.process_id,
                stdio=(files[0], files[1], files[2]),
                timeout=timeout,
            )
            process._register()
        except errors.OperationTimeoutError:
            if info is None:
                raise  # the reaper owns the process handle now (``late``)
            _close_created(process, guard, pinfo, files)
            raise
        except BaseException:
            _close_created(process, guard, pinfo, files)
            raise
        return process

    @classmethod
    def _open(cls, system: ComputeSystem, pid: int, *, timeout: float) -> Process:
        sys_guard = system._handle_guard
        out = ctypes.c_void_p(None)
        open_process = native("computecore", "HcsOpenProcess")
        # As ComputeSystem.open: the owner first, then the call, its check and the
        # registration in one try with the close (review RV59).
        guard = HandleGuard(out, _close_process_handle, f"process {pid}")
        process = cls(system, guard, pid, timeout=timeout)
        hr: int | None = None
        try:
            ticket = object()  # (HandleGuard.acquire: the call is ended once)
            try:
                handle = sys_guard.acquire("HcsOpenProcess", ticket)
                hr = int(open_process(handle, pid, GENERIC_ALL, ctypes.byref(out)))
            finally:
                try:
                    sys_guard.release(ticket)
                except BaseException:  # (a Ctrl+C at its entry): once more, a no-op if ended
                    sys_guard.release(ticket)
                    raise
            check(
                hr,
                function="HcsOpenProcess",
                context=f"opening process {pid} in compute system {system.id!r}",
            )
            guard.bind(out.value or 0)
            process._register()
        except BaseException:
            if hr is not None and errors.failed(
                hr
            ):  # a failed call: what it left in out is not ours
                out.value = None
            process.close()
            raise
        return process

    def _register(self) -> None:
        self._event_id = set_event_callback(
            self._watch,
            self._guard,
            "HcsSetProcessCallback",
            context=f"watching process {self._pid} in {self._system.id!r}",
        )
        # A process may exit before the callback was registered; ask once so wait() cannot
        # miss it.  (ProcessStatus: HcsGetProcessProperties.md.)  When that query fails, an
        # exit that came first would go unseen: wait() then asks again while it waits.
        try:
            status = self.properties()
        except errors.HcsError as exc:
            _log.debug("process %d status after registering: %s", self._pid, exc)
            self._status_unknown = True
            return
        if status.get("Exited"):
            self._watch.mark_exited(status)

    # -- properties ------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def system(self) -> ComputeSystem:
        return self._system

    def __repr__(self) -> str:
        return f"<Process {self._pid} in {self._system.id!r}>"

    # -- operations ------------------------------------------------------------------------

    def _op(
        self,
        function: str,
        options: str | Mapping[str, Any] | None,
        *,
        doing: str,
        timeout: float | None,
    ) -> str | None:
        return run_handle_operation(
            self._guard,
            function,
            options,
            timeout=self.timeout if timeout is None else timeout,
            context=f"{doing} process {self._pid} in compute system {self._system.id!r}",
        )

    def terminate(self, *, timeout: float | None = None) -> bool:
        """``HcsTerminateProcess``.  Returns False when the process had already stopped
        (``HCS_E_PROCESS_ALREADY_STOPPED`` is success here, as in hcsshim ``Kill``)."""
        try:
            self._op("HcsTerminateProcess", None, doing="terminating", timeout=timeout)
        except errors.ProcessAlreadyStoppedError:
            return False
        return True

    def signal(self, options: str | Mapping[str, Any], *, timeout: float | None = None) -> None:
        """``HcsSignalProcess`` with ``SignalProcessOptions`` (``{"Signal": "CtrlC"}``)."""
        self._op("HcsSignalProcess", options, doing="signalling", timeout=timeout)

    def modify(self, request: str | Mapping[str, Any], *, timeout: float | None = None) -> None:
        """``HcsModifyProcess`` with a ``ProcessModifyRequest``."""
        self._op("HcsModifyProcess", request, doing="modifying", timeout=timeout)

    def resize_console(self, width: int, height: int, *, timeout: float | None = None) -> None:
        """``ProcessModifyRequest`` ``ConsoleSize`` (hcsshim ``ResizeConsole``)."""
        self.modify(
            {"Operation": "ConsoleSize", "ConsoleSize": {"Height": height, "Width": width}},
            timeout=timeout,
        )

    def close_stdin(self, *, timeout: float | None = None) -> None:
        """Tell the guest stdin is finished, then close the host end (hcsshim ``CloseStdin``)."""
        if not self._watch.exited:
            self.modify(
                {"Operation": "CloseHandle", "CloseHandle": {"Handle": "StdIn"}},
                timeout=timeout,
            )
        if self.stdin is not None:
            try:
                self.stdin.close()
            except OSError:
                _log.debug("closing stdin of process %d failed", self._pid, exc_info=True)

    def properties(
        self, query: str | Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """``HcsGetProcessProperties`` → the ``ProcessStatus`` document."""
        text = self._op("HcsGetProcessProperties", query, doing="querying", timeout=timeout)
        value = optional_json(text, function="HcsGetProcessProperties")
        return value if isinstance(value, dict) else {}

    def info(self, *, timeout: float | None = None) -> ProcessInformation:
        """``HcsGetProcessInfo``: the process id and (new, caller-owned) std handles.

        The handles in the result are closed here; only the process id is meaningful.
        """
        call = native("computecore", "HcsGetProcessInfo")
        guard = self._guard

        def invoke(op: int, called: list[int]) -> None:
            called.extend(starmap(call, ((guard.handle, op),)))

        # The wait writes the handles to ``pinfo``, ours: from its return on, the finally
        # finds and closes them there, once each, whatever point a Ctrl+C hits (they were
        # in a structure of the wait's, lost to a Ctrl+C until closed, review RV69 F7).
        pinfo = HCS_PROCESS_INFORMATION()
        try:
            info, _ = run_process_operation(
                "HcsGetProcessInfo",
                invoke,
                timeout=self.timeout if timeout is None else timeout,
                context=f"querying process {self._pid} in {self._system.id!r}",
                guards=(guard,),
                process_info=pinfo,
            )
        finally:
            try:
                _close_std_handles(pinfo)
            except BaseException:  # (a Ctrl+C in it): once more; each handle closes once
                _close_std_handles(pinfo)
                raise
        return ProcessInformation(info.process_id, None, None, None)

    # -- events and exit -------------------------------------------------------------------

    #: How often wait() asks for the status while the one asked at registration is unknown.
    STATUS_POLL = 0.5

    def wait(self, timeout: float | None = None) -> int:
        """Wait for ``HcsEventProcessExited``; returns the exit code (-1 when HCS could not
        read it: ``LastWaitResult`` non-zero, as hcsshim reports).  When the status query
        made at registration failed (an exit before the callback was registered would send
        no event), the status is asked again every :attr:`STATUS_POLL` seconds meanwhile."""
        limit = self.timeout if timeout is None else timeout
        left = self._poll_status(limit) if self._status_unknown else limit
        status = self._watch.wait_exit(
            left,
            described=limit,
            exit_event="HcsEventProcessExited",
            close_function="HcsCloseProcess",
            waiting_for=f"process {self._pid} in {self._system.id!r}",
            closed_context=f"waiting for process {self._pid}: the handle was closed",
        )
        return _exit_code(status)

    def poll_exited(self) -> bool:
        """Whether the exit is known, without waiting for it; while the status is unknown
        (see :meth:`wait`) this asks HCS once (one query, bounded by :attr:`STATUS_POLL`)."""
        if self._status_unknown and not self.exited:
            self._ask_status(self.STATUS_POLL)
        return self.exited

    def _ask_status(self, timeout: float) -> None:
        """One status query while the status is unknown; an answer ends the unknown."""
        try:
            status = self.properties(timeout=max(timeout, 0.05))
        except errors.HcsError as exc:
            _log.debug("process %d status: %s", self._pid, exc)
            return
        self._status_unknown = False
        if status.get("Exited"):
            self._watch.mark_exited(status)

    def _poll_status(self, limit: float) -> float:
        """Ask for the status (at once, then every :attr:`STATUS_POLL` seconds while waiting
        for the exit event) until one query answered or the event came; returns the time
        left of ``limit`` (each query is bounded by it)."""
        import time

        deadline = time.monotonic() + limit
        while self._status_unknown and not self.exited:
            self._ask_status(deadline - time.monotonic())
            left = deadline - time.monotonic()
            if not self._status_unknown or left <= 0:
                break
            if self._watch.wait(min(left, self.STATUS_POLL)):
                break  # the event came (or the handle was closed): wait_exit says which
        return max(0.0, deadline - time.monotonic())

    def wait_native(self, timeout: float) -> int:
        """``HcsWaitForProcessExit`` (Windows 10 2104 / Server 2022 and later only)."""
        status = wait_native_exit(
            self._guard,
            "HcsWaitForProcessExit",
            timeout,
            context=f"waiting for process {self._pid} in {self._system.id!r}",
        )
        self._watch.mark_exited(status)
        return _exit_code(status)

    # -- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the pipes and the process handle (idempotent; does not kill the process)."""
        if self._guard.closed:
            return
        _close_files(self._files)
        self._watch.mark_closed()
        self._guard.close()
        self._finalizer.detach()  # last (review RV61 F1: see ComputeSystem.close)


def _exit_code(status: Mapping[str, Any]) -> int:
    if status.get("LastWaitResult", 0):
        _log.warning("process exit: non-zero LastWaitResult %s", status.get("LastWaitResult"))
        return -1
    code = status.get("ExitCode")
    return int(code) if isinstance(code, int) else -1
