"""``ComputeSystem``: one ``HCS_SYSTEM`` handle (computecore.dll), RAII.

Functions and semantics: Microsoft ``virtualization/api/hcs/Reference/HcsCreateComputeSystem.md``,
``HcsOpenComputeSystem.md``, ``HcsStartComputeSystem.md``, ``HcsShutDownComputeSystem.md``,
``HcsTerminateComputeSystem.md``, ``HcsPauseComputeSystem.md``, ``HcsResumeComputeSystem.md``,
``HcsSaveComputeSystem.md``, ``HcsCrashComputeSystem.md``, ``HcsGetComputeSystemProperties.md``,
``HcsModifyComputeSystem.md``, ``HcsEnumerateComputeSystems.md``,
``HcsSetComputeSystemCallback.md``, ``HcsCloseComputeSystem.md``; lifecycle as hcsshim
``internal/hcs/v2/system.go`` implements it.

Close order for a disposable system: terminate → wait for the ``SystemExited`` event → close
(:meth:`ComputeSystem.terminate_and_close`, or ``close(terminate=True)``).  A plain
:meth:`ComputeSystem.close` only releases the handle; the system keeps running unless it was
created with ``ShouldTerminateOnLastHandleClosed``.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping
from itertools import starmap
from typing import TYPE_CHECKING, Any

from hcs_sandbox import errors
from hcs_sandbox.hcs import events
from hcs_sandbox.hcs._call import check, dumps, native, optional_json, wbuf
from hcs_sandbox.hcs._handle import HandleGuard
from hcs_sandbox.hcs._log import get_logger
from hcs_sandbox.hcs._watch import Watch, Watched, set_event_callback, wait_native_exit
from hcs_sandbox.hcs.operation import DEFAULT_TIMEOUT, run_handle_operation, run_operation
from hcs_sandbox.native.handles import close_held
from hcs_sandbox.native.types import GENERIC_ALL, HcsEventType

if TYPE_CHECKING:
    import queue

    from hcs_sandbox.hcs.process import Process

__all__ = ["ComputeSystem", "enumerate_compute_systems"]

_log = get_logger("hcs_sandbox.hcs")  # logging is imported on first use

# Errors that mean "already gone" for terminate/shutdown (hcsshim v2 system.go Terminate:
# ErrVmcomputeAlreadyStopped, ErrComputeSystemDoesNotExist).
_GONE = (errors.AlreadyStoppedError, errors.NotFoundError)


def _close_system_handle(held: ctypes.c_void_p) -> None:
    """``HcsCloseComputeSystem`` on what ``held`` still holds (set to NULL as it is called)."""
    close_held(held, native("computecore", "HcsCloseComputeSystem"))


def _finalize(guard: HandleGuard, watch: Watch, system_id: str, quiet: list[bool]) -> None:
    """Safety net (weakref.finalize): release a handle the program forgot to close (a
    warning), or one its owner lets garbage collection release (``quiet``: debug only;
    :meth:`ComputeSystem.release_when_collected`)."""
    if not guard.closed:
        if quiet[0]:
            _log.debug("compute system %r collected; closing its handle", system_id)
        else:
            _log.warning("compute system %r was not closed; closing its handle", system_id)
        watch.mark_closed()
        guard.close()


class ComputeSystem(Watched):
    """An open ``HCS_SYSTEM`` handle.  Build with :meth:`create` or :meth:`open`."""

    def __init__(self, system_id: str, guard: HandleGuard, *, timeout: float) -> None:
        self._id = system_id
        self._guard = guard
        self.timeout = timeout
        self._watch = Watch(HcsEventType.SYSTEM_EXITED)
        self._event_id: int | None = None
        #: [True]: the safety net closes the handle without a warning (a list: the finalizer
        #: holds it, never the owner; set in place, so no moment is without a safety net).
        self._quiet = [False]
        import weakref  # here: importing this module (``ls``) needs no weakref (~1 ms)

        self._finalizer = weakref.finalize(
            self, _finalize, guard, self._watch, system_id, self._quiet
        )

    def release_when_collected(self) -> None:
        """Let garbage collection close this handle without a warning (logged at debug
        level): for an owner that keeps the handle as a cache which may be dropped with it
        (a :class:`~hcs_sandbox.sandbox.sandbox.Sandbox`: docs/api.md).  Otherwise a handle
        never closed is a leak, and the safety net says so (warning)."""
        self._quiet[0] = True

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        system_id: str,
        document: str | Mapping[str, Any],
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> ComputeSystem:
        """``HcsCreateComputeSystem(id, configuration, op, NULL, &system)`` and wait.

        ``document`` is a ComputeSystem JSON document (a str, or a mapping serialized with
        ``json.dumps``).  On any failure after HCS returned a handle, the system is terminated
        and the handle closed, as hcsshim v2 ``CreateComputeSystem`` does.
        """
        id_buf = wbuf(system_id)
        doc_buf = wbuf(dumps(document))
        out = ctypes.c_void_p(None)
        # The guard owns what the call writes to ``out`` from the moment it is written.
        guard = HandleGuard(out, _close_system_handle, f"compute system {system_id!r}")
        create = native("computecore", "HcsCreateComputeSystem")

        def invoke(op: int, called: list[int]) -> None:
            called.extend(starmap(create, ((id_buf, doc_buf, op, None, ctypes.byref(out)),)))
            guard.bind(out.value or 0)

        system = cls(system_id, guard, timeout=timeout)
        try:
            run_operation(
                "HcsCreateComputeSystem",
                invoke,
                timeout=timeout,
                context=f"creating compute system {system_id!r}",
                keepalive=(id_buf, doc_buf, out),
                guards=(guard,),
            )
            system._register()
        except BaseException:
            if guard.handle:
                try:
                    system.terminate(ignore_stopped=True, timeout=min(timeout, 30.0))
                except Exception as exc:  # keep the original error
                    _log.debug("terminate after failed create of %r: %s", system_id, exc)
            system.close()
            raise
        return system

    @classmethod
    def open(cls, system_id: str, *, timeout: float = DEFAULT_TIMEOUT) -> ComputeSystem:
        """``HcsOpenComputeSystem(id, GENERIC_ALL, &system)`` (synchronous)."""
        out = ctypes.c_void_p(None)
        open_system = native("computecore", "HcsOpenComputeSystem")
        # The owner exists before the call: its guard holds ``out``, so the handle has an
        # owner from the call's return on; the call, its check, the registration and the
        # close after any failure (or a Ctrl+C) are in one ``try`` (review RV59).
        guard = HandleGuard(out, _close_system_handle, f"compute system {system_id!r}")
        system = cls(system_id, guard, timeout=timeout)
        hr: int | None = None
        try:
            hr = int(open_system(system_id, GENERIC_ALL, ctypes.byref(out)))
            check(
                hr,
                function="HcsOpenComputeSystem",
                context=f"opening compute system {system_id!r}",
            )
            guard.bind(out.value or 0)
            system._register()
        except BaseException:
            if hr is not None and errors.failed(
                hr
            ):  # a failed call: what it left in out is not ours
                out.value = None
            system.close()
            raise
        return system

    def _register(self) -> None:
        """Register the process-wide event callback on this handle, with our context id."""
        self._event_id = set_event_callback(
            self._watch,
            self._guard,
            "HcsSetComputeSystemCallback",
            context=f"watching compute system {self._id!r}",
        )

    # -- properties ------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._id

    @property
    def handle(self) -> int:
        """The raw ``HCS_SYSTEM`` (for the binding's own use)."""
        return self._guard.handle

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("exited" if self.exited else "open")
        return f"<ComputeSystem {self._id!r} {state}>"

    # -- asynchronous operations -----------------------------------------------------------

    def _op(
        self,
        function: str,
        options: str | Mapping[str, Any] | None,
        *,
        doing: str,
        timeout: float | None,
        extra_null_arg: bool = False,
    ) -> str | None:
        return run_handle_operation(
            self._guard,
            function,
            options,
            timeout=self.timeout if timeout is None else timeout,
            context=f"{doing} compute system {self._id!r}",
            extra_null_arg=extra_null_arg,  # HcsModifyComputeSystem(system, op, config, identity)
        )

    def start(
        self, options: str | Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> None:
        """``HcsStartComputeSystem`` (``options`` is reserved: NULL)."""
        self._op("HcsStartComputeSystem", options, doing="starting", timeout=timeout)

    def shutdown(
        self, options: str | Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> None:
        """``HcsShutDownComputeSystem`` (capital D; ``ShutdownOptions`` since schema 2.5).

        Needs guest cooperation; wait for the exit with :meth:`wait`.
        """
        self._op("HcsShutDownComputeSystem", options, doing="shutting down", timeout=timeout)

    def terminate(
        self,
        options: str | Mapping[str, Any] | None = None,
        *,
        ignore_stopped: bool = False,
        timeout: float | None = None,
    ) -> None:
        """``HcsTerminateComputeSystem`` (``options`` is reserved: NULL).  With
        ``ignore_stopped``, a system that is already stopped or gone is not an error
        (hcsshim v2 ``Terminate``)."""
        try:
            self._op("HcsTerminateComputeSystem", options, doing="terminating", timeout=timeout)
        except _GONE:
            if not ignore_stopped:
                raise

    def pause(
        self, options: str | Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> None:
        """``HcsPauseComputeSystem`` (``PauseOptions``, optional)."""
        self._op("HcsPauseComputeSystem", options, doing="pausing", timeout=timeout)

    def resume(
        self, options: str | Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> None:
        """``HcsResumeComputeSystem`` (``options`` reserved: NULL)."""
        self._op("HcsResumeComputeSystem", options, doing="resuming", timeout=timeout)

    def save(self, options: str | Mapping[str, Any], *, timeout: float | None = None) -> None:
        """``HcsSaveComputeSystem`` with ``SaveOptions`` (pause first: saving a running
        system fails with ``HCS_E_INVALID_STATE``)."""
        self._op("HcsSaveComputeSystem", options, doing="saving", timeout=timeout)

    def crash(
        self, options: str | Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> None:
        """``HcsCrashComputeSystem`` (``CrashOptions`` such as ``{"Type": "CrashGuest"}``)."""
        self._op("HcsCrashComputeSystem", options, doing="crashing", timeout=timeout)

    def properties(
        self, query: str | Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """``HcsGetComputeSystemProperties`` → the ``Properties`` document."""
        text = self._op("HcsGetComputeSystemProperties", query, doing="querying", timeout=timeout)
        value = optional_json(text, function="HcsGetComputeSystemProperties")
        return value if isinstance(value, dict) else {}

    def modify(self, request: str | Mapping[str, Any], *, timeout: float | None = None) -> None:
        """``HcsModifyComputeSystem`` with a ``ModifySettingRequest`` (identity NULL)."""
        self._op(
            "HcsModifyComputeSystem",
            request,
            doing="modifying",
            timeout=timeout,
            extra_null_arg=True,
        )

    # -- processes -------------------------------------------------------------------------

    def create_process(
        self, parameters: str | Mapping[str, Any], *, timeout: float | None = None
    ) -> Process:
        """``HcsCreateProcess`` with ``ProcessParameters``; see :class:`Process`."""
        from hcs_sandbox.hcs.process import Process

        return Process._create(
            self, parameters, timeout=self.timeout if timeout is None else timeout
        )

    def open_process(self, pid: int, *, timeout: float | None = None) -> Process:
        """``HcsOpenProcess(system, pid, GENERIC_ALL, &process)`` (no stdio)."""
        from hcs_sandbox.hcs.process import Process

        return Process._open(self, pid, timeout=self.timeout if timeout is None else timeout)

    # -- events ----------------------------------------------------------------------------

    def events(self) -> queue.Queue[events.Event]:
        """A new queue receiving every later event of this system."""
        import queue  # here: ``ls`` imports this module and needs no queue

        q: queue.Queue[events.Event] = queue.Queue()
        self._watch.subscribe(q)
        return q

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait for ``HcsEventSystemExited``; returns its ``SystemExitStatus`` document.

        Raises :class:`~hcs_sandbox.errors.OperationTimeoutError` after ``timeout`` seconds
        (default: the system's timeout), :class:`~hcs_sandbox.errors.ServiceNotAvailableError`
        when vmcompute disconnected, and an ``E_HANDLE`` error when the handle was closed.
        """
        return self._watch.wait_exit(
            self.timeout if timeout is None else timeout,
            exit_event="HcsEventSystemExited",
            close_function="HcsCloseComputeSystem",
            waiting_for=f"compute system {self._id!r} to exit",
            closed_context=f"waiting for compute system {self._id!r}: the handle was closed",
        )

    def wait_native(self, timeout: float) -> dict[str, Any]:
        """``HcsWaitForComputeSystemExit`` (Windows 10 2104 / Server 2022 and later only):
        the synchronous alternative to :meth:`wait`; returns the ``SystemExitStatus``."""
        return wait_native_exit(
            self._guard,
            "HcsWaitForComputeSystemExit",
            timeout,
            context=f"waiting for compute system {self._id!r} to exit",
        )

    # -- closing ---------------------------------------------------------------------------

    def close(self, *, terminate: bool = False, timeout: float | None = None) -> None:
        """Release the handle (idempotent).  With ``terminate``: terminate → wait → close."""
        if terminate and not self._guard.closed:
            self.terminate_and_close(timeout=timeout)
            return
        if self._guard.closed:
            return
        self._watch.mark_closed()
        self._guard.close()
        # The safety net is detached last (review RV61 F1): a Ctrl+C anywhere before the
        # guard is marked closed leaves it in place, and it does nothing once the guard is
        # closed.  Detached first, a Ctrl+C in between left the handle with no one to close
        # it (a ``with`` block's ``__exit__`` calls close once).
        self._finalizer.detach()

    def terminate_and_close(self, *, timeout: float | None = None) -> dict[str, Any] | None:
        """The documented close order: terminate, wait for the exit event, close.

        Returns the ``SystemExitStatus`` (None if the exit event did not arrive in time; the
        handle is closed either way).
        """
        status: dict[str, Any] | None = None
        try:
            if not self._watch.exited:
                self.terminate(ignore_stopped=True, timeout=timeout)
            try:
                status = self.wait(timeout)
            except errors.HcsError as exc:
                _log.warning("compute system %r: %s", self._id, exc)
        finally:
            self.close()
        return status

    # used by process.py
    @property
    def _handle_guard(self) -> HandleGuard:
        return self._guard


def enumerate_compute_systems(
    query: str | Mapping[str, Any] | None = None, *, timeout: float = DEFAULT_TIMEOUT
) -> list[dict[str, Any]]:
    """``HcsEnumerateComputeSystems(query, op)`` → a list of ``Properties`` documents.

    ``query`` is a ``SystemQuery`` (``{"Ids": [...], "Owners": [...], ...}``) or None.
    """
    call = native("computecore", "HcsEnumerateComputeSystems")
    query_buf = wbuf(dumps(query))

    def invoke(op: int, called: list[int]) -> None:
        called.extend(starmap(call, ((query_buf, op),)))

    text = run_operation(
        "HcsEnumerateComputeSystems",
        invoke,
        timeout=timeout,
        context="listing compute systems",
        keepalive=(query_buf,),
    )
    value = optional_json(text, function="HcsEnumerateComputeSystems")
    if value is None:
        return []
    if not isinstance(value, list):
        raise errors.HcsError(
            f"HcsEnumerateComputeSystems returned {type(value).__name__}, not a JSON array",
            hresult=errors.ERROR_INVALID_DATA_HR,
            function="HcsEnumerateComputeSystems",
        )
    return [item for item in value if isinstance(item, dict)]
