"""The one operation helper: every asynchronous computecore call goes through it.

Pattern (Microsoft, ``virtualization/api/hcs/Reference/Tutorial.md`` and
``HcsWaitForOperationResult.md``; hcsshim ``internal/hcs/v2/operation.go`` ``runOperation``):

1. ``HcsCreateOperation(NULL, NULL)`` -- we never pass a NULL operation to a tracked call,
   and attach no per-operation callback;
2. call the tracked function with that operation;  a failing HRESULT here means the request
   was not started: the result document HCS may already hold is read with
   ``HcsGetOperationResult`` (as hcsshim does) and the call fails;
3. ``HcsWaitForOperationResult(op, timeoutMs, &doc)`` with a FINITE timeout; the result
   document is read and freed (``LocalFree``, via :mod:`hcs_sandbox.native.strings`) whether
   the operation succeeded or failed; on failure it is a ``ResultError`` which the error
   factory parses;
4. ``HcsCloseOperation`` in ``finally``.

Timeout (``HCS_E_OPERATION_TIMEOUT`` 0x80370118, ``HCSHResult.md``): hcsshim calls
``HcsCancelOperation`` and ignores its result (documented to always return ``E_NOTIMPL``,
``HcsCancelOperation.md``), then returns the timeout error.  We do the same, but, unlike
hcsshim (which closes the operation at once, relying on HCS discarding the result), we
never free anything HCS may still touch: the operation, the input strings and the handles
the call uses are handed to a background *reaper* that waits for HCS to complete the
operation, frees its result (and, for ``HcsCreateProcess``, the process and pipe handles),
closes the operation and only then releases the handles (``HandleGuard``) -- hcsshim
``internal/computecore/computecore.go`` ``execute`` documents the access violations seen
when handles are torn down mid-call.  The caller gets :class:`OperationTimeoutError` at once.

Interrupted (review RV63 F2): an exception (a Ctrl+C) that comes out of the helper while HCS
may still be running a *process* operation (``HcsCreateProcess``, ``HcsGetProcessInfo``) --
once the tracked call returned success and until a wait has seen it complete -- hands it to a
reaper the same way, after asking HCS to cancel it (``HcsCancelOperation``, its answer
ignored, as on a timeout); the reaper's late-result callback then closes the pipe handles HCS
returns when it completes.  Any other operation interrupted before its wait is closed at once:
closing it cancels it ("If the operation is in progress it will be cancelled",
``HcsCloseOperation.md`` in MicrosoftDocs/Virtualization-Documentation; to confirm on Windows,
docs/windows-notes.md), which the sandbox layer's rollback of an interrupted create or start
relies on (review RV73 F1).  The tracked call's HRESULT is recorded from C (``invoke``
appends it to a list as the call returns), so an operation whose call was never made, or
failed, is closed at once, as hcsshim closes it after a failed call: no reaper ever waits on
an operation HCS did not start.
"""

from __future__ import annotations

import _thread
import ctypes
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from itertools import starmap
from typing import TYPE_CHECKING, Any

from hcs_sandbox import errors
from hcs_sandbox._frozen import Frozen
from hcs_sandbox.errors import HCS_E_OPERATION_TIMEOUT, failed
from hcs_sandbox.hcs._call import NativeFunction, check, dumps, native, wbuf
from hcs_sandbox.hcs._handle import HandleGuard
from hcs_sandbox.hcs._log import get_logger
from hcs_sandbox.native import loader as _loader
from hcs_sandbox.native.strings import take_hcs_string
from hcs_sandbox.native.types import INFINITE  # never used for our own waits

__all__ = [
    "DEFAULT_TIMEOUT",
    "HCS_E_OPERATION_TIMEOUT",
    "ProcessInformation",
    "abandoned_count",
    "run_handle_operation",
    "run_operation",
    "run_process_operation",
    "timeout_ms",
    "wait_abandoned",
]

_log = get_logger("hcs_sandbox.hcs")  # logging is imported on first use

# canonical/multipass uses 240 s for create and every other HCS operation
# (src/platform/backends/hyperv_api/hcs/hyperv_hcs_api_wrapper.cpp / hyperv_hcs_wrapper.cpp).
DEFAULT_TIMEOUT = 240.0

E_OUTOFMEMORY = 0x8007000E  # winerror.h; HcsCreateOperation returns NULL on allocation failure
_REAP_SLICE_MS = 500


# Below this many seconds (~49.7 days) ``round(timeout * 1000)`` is < INFINITE - 1: no clamp.
_UNCLAMPED_S = 4_294_967.0


def timeout_ms(timeout: float) -> int:
    """Seconds → the ``DWORD timeoutMs`` HCS takes: finite, never ``INFINITE``."""
    if 0 <= timeout < _UNCLAMPED_S:  # the common case (NaN fails every comparison)
        return round(timeout * 1000)
    if math.isnan(timeout) or timeout < 0:
        raise errors.SpecError(
            f"timeout must be a number of seconds >= 0, not {timeout!r}",
            field="timeout",
            value=timeout,
            allowed="a finite number of seconds",
        )
    if timeout >= (INFINITE - 1) / 1000:  # ~49.7 days or more, inf too: the longest finite
        return INFINITE - 1  # wait (round(timeout * 1000) overflows for a huge timeout)
    return round(timeout * 1000)


class ProcessInformation(Frozen):
    """``HCS_PROCESS_INFORMATION`` (``HCS_PROCESS_INFORMATION.md``), copied out of C.

    Immutable and compared by value, as the ``@dataclass(frozen=True)`` it was (a plain
    class: ``dataclasses`` costs ~5 ms of every process importing the hcs layer).
    """

    _FIELDS = ("process_id", "std_input", "std_output", "std_error")
    __slots__ = _FIELDS
    __match_args__ = ("process_id", "std_input", "std_output", "std_error")

    process_id: int
    std_input: int | None
    std_output: int | None
    std_error: int | None

    def __init__(
        self, process_id: int, std_input: int | None, std_output: int | None, std_error: int | None
    ) -> None:
        put = object.__setattr__
        put(self, "process_id", process_id)
        put(self, "std_input", std_input)
        put(self, "std_output", std_output)
        put(self, "std_error", std_error)


#: (backend, HcsCreateOperation, HcsWaitForOperationResult, HcsCloseOperation): the three
#: functions every operation calls, resolved once per backend (one identity test per
#: operation instead of three :func:`native` look-ups).  Replaced whole (a tuple), so
#: threads need no lock; a new backend (``reset_backend``/``use_simulator``) misses.
_OP_FUNCTIONS: tuple[object, NativeFunction, NativeFunction, NativeFunction] | None = None


def _op_functions() -> tuple[object, NativeFunction, NativeFunction, NativeFunction]:
    global _OP_FUNCTIONS
    cached = _OP_FUNCTIONS
    if cached is not None and cached[0] is _loader._backend:
        return cached
    # Read the backend BEFORE resolving: if it changes meanwhile, the entry is keyed by the
    # old one and misses next time (never a new backend paired with old functions).
    backend = _loader._backend
    entry = (
        backend,
        native("computecore", "HcsCreateOperation"),
        native("computecore", "HcsWaitForOperationResult"),
        native("computecore", "HcsCloseOperation"),
    )
    if backend is not None:
        _OP_FUNCTIONS = entry
    return entry


_null_completion: Any = None


def _no_completion() -> Any:
    """A NULL ``HCS_OPERATION_COMPLETION`` (ctypes refuses None for a function pointer)."""
    global _null_completion
    if _null_completion is None:
        from hcs_sandbox.native.types import HCS_OPERATION_COMPLETION

        _null_completion = HCS_OPERATION_COMPLETION()
    return _null_completion


def _close_op(op: int) -> None:
    native("computecore", "HcsCloseOperation")(op)


def _new_info() -> Any:
    from hcs_sandbox.native.types import HCS_PROCESS_INFORMATION

    return HCS_PROCESS_INFORMATION()


def _copy_info(info: Any) -> ProcessInformation:
    return ProcessInformation(
        process_id=int(info.ProcessId),
        std_input=info.StdInput or None,
        std_output=info.StdOutput or None,
        std_error=info.StdError or None,
    )


def _wait_result(
    op: int,
    ms: int,
    *,
    process: bool,
    doc: ctypes.c_void_p | None = None,
    info: Any = None,
    waited: list[int] | None = None,
) -> tuple[int, ProcessInformation | None, str | None]:
    """``HcsWaitForOperationResult`` (or ``...AndProcessInfo`` with ``process``): the masked
    HRESULT, the copied process information (on success) and the result document (read and
    freed).  ``doc``: the out slot of the document (the caller frees what it still holds
    after an exception); ``info``: the ``HCS_PROCESS_INFORMATION`` the wait writes (the
    caller closes the pipe handles it holds after an exception); ``waited``: the caller's
    list the wait's HRESULT is appended to as the wait returns (see :func:`_run`)."""
    if doc is None:
        doc = ctypes.c_void_p(None)
    if waited is None:
        waited = []
    info_copy: ProcessInformation | None = None
    if process:
        if info is None:
            info = _new_info()
        # Called from C (list.extend over map; HcsCreateOperation in _run: over starmap): the
        # HRESULT is in ``waited`` before any point where CPython runs a signal handler.
        waited.extend(
            map(
                native("computecore", "HcsWaitForOperationResultAndProcessInfo"),
                (op,),
                (ms,),
                (ctypes.byref(info),),
                (ctypes.byref(doc),),
            )
        )
        hr = waited[-1] & 0xFFFFFFFF
        if not failed(hr):
            info_copy = _copy_info(info)
    else:
        waited.extend(
            map(
                native("computecore", "HcsWaitForOperationResult"),
                (op,),
                (ms,),
                (ctypes.byref(doc),),
            )
        )
        hr = waited[-1] & 0xFFFFFFFF
    return hr, info_copy, take_hcs_string(doc)


def _close_info_handles(info: ProcessInformation) -> None:
    from hcs_sandbox.native.handles import close_handle

    for h in (info.std_input, info.std_output, info.std_error):
        if h:
            try:
                close_handle(h)
            except Exception:
                _log.exception("closing a process pipe handle failed")


# ----------------------------------------------------------------------------------------
# The reaper: operations abandoned after a timeout, kept alive until HCS completes them.
# ----------------------------------------------------------------------------------------

#: Every ``with`` takes this C lock, never the Condition: ``Condition.__enter__``/``__exit__``
#: are Python code, and a Ctrl+C after the acquire in one (or before the release in the
#: other) left the lock held by the main thread for ever, the reaper and every later timeout
#: of another thread blocked on it (review RV63 F1).  A C lock's ``__enter__``/``__exit__``
#: run from ``BEFORE_WITH``/the ``with``'s exit with no handler point inside them.
_abandoned_mutex = threading.Lock()
#: Built on :data:`_abandoned_mutex`, for ``wait``/``notify_all`` only.
_abandoned_lock = threading.Condition(_abandoned_mutex)
#: The claims (see :func:`_abandon`) of the abandoned operations not yet closed, by id.
_abandoned: dict[int, list[bool]] = {}

if TYPE_CHECKING:
    #: What :func:`_run` hands to the reaper (the arguments of :func:`_abandon`): a tuple,
    #: built with no point where CPython runs a signal handler (no call), at a timeout or in
    #: the ``finally`` of an interrupted call, and passed to every retry of :func:`_abandon`
    #: (its claim list is what makes a retry safe).
    _Handoff = tuple[
        int,  # the operation
        str,  # the function's name
        bool,  # process (HcsWaitForOperationResultAndProcessInfo)
        tuple[object, ...],  # keepalive
        Sequence[tuple[HandleGuard, object]],  # the guards with their tickets
        Callable[[ProcessInformation | None, int], None] | None,  # on_late_result
        list[bool],  # the claim: empty until a reaper claims the operation
    ]


def abandoned_count() -> int:
    """How many abandoned operations (timed out or interrupted) are still waiting for HCS
    to complete them."""
    with _abandoned_mutex:
        return len(_abandoned)


def wait_abandoned(timeout: float) -> bool:
    """Wait until every abandoned operation has completed and been closed (tests use this)."""
    deadline = time.monotonic() + timeout
    with _abandoned_mutex:
        while _abandoned:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            _abandoned_lock.wait(left)
        return True


def _abandon(  # noqa: PLR0917 - the fields of a _Handoff, in its order
    op: int,
    function: str,
    process: bool,
    keepalive: tuple[object, ...],
    guards: Sequence[tuple[HandleGuard, object]],
    on_late_result: Callable[[ProcessInformation | None, int], None] | None,
    claim: list[bool],
) -> None:
    """Start a reaper thread for ``op`` (timed out, or interrupted while HCS may run it,
    review RV63 F2); it owns the operation's clean-up (waiting for HCS, closing the
    operation, releasing ``guards``) once it has *claimed* it: appended to ``claim`` under
    :data:`_abandoned_mutex` (review RV61 F2).

    Called again by :func:`_run`'s ``finally`` when a Ctrl+C came out of the first call (at
    any point: before the thread was made, while it started, after): a second call starts
    no reaper when one has claimed the operation, and a second reaper that finds it claimed
    does nothing, so exactly one closes it, whichever point the Ctrl+C hit.  (A reaper
    thread is never interrupted: CPython raises ``KeyboardInterrupt`` on the main thread.)
    """
    with _abandoned_mutex:
        if claim:  # a reaper owns it already (and may have finished: not counted again)
            return
        _abandoned[id(claim)] = claim

    def reap(keep: tuple[object, ...]) -> None:
        # ``keep`` (the input buffers and the invoke closure) lives until this returns.
        with _abandoned_mutex:
            if claim:  # another reaper of this hand-off claimed it: it closes the operation
                return
            claim.append(True)
        hr = HCS_E_OPERATION_TIMEOUT
        info_copy: ProcessInformation | None = None
        try:
            # Its name in the log lines (``%(threadName)s``), as a threading.Thread had it,
            # not "Dummy-N" (review RV63 F3): named here, on this thread, which no Ctrl+C
            # reaches.  (current_thread() registers a threading._DummyThread for it, left in
            # threading._active when the thread ends, as logging's own call did before.)
            threading.current_thread().name = f"hcs-reaper-{function}"
            while hr == HCS_E_OPERATION_TIMEOUT:
                hr, info_copy, _ = _wait_result(op, _REAP_SLICE_MS, process=process)
            _log.info(
                "%s completed after its caller timed out or was interrupted: 0x%08X", function, hr
            )
            if on_late_result is not None:
                on_late_result(info_copy, hr)
            elif info_copy is not None:
                _close_info_handles(info_copy)
        except Exception:
            _log.exception("reaping the abandoned %s operation failed", function)
        finally:
            try:
                _close_op(op)
            except Exception:
                _log.exception("closing the abandoned %s operation failed", function)
            _release_all(guards)
            with _abandoned_mutex:
                _abandoned.pop(id(claim), None)
                _abandoned_lock.notify_all()

    # One C call (not threading.Thread: its start() waits on a Condition, where a Ctrl+C
    # between the lock's release and the wait makes it raise "release unlocked lock"): the
    # thread is started or not, and a Ctrl+C right after it lands in _run's hand-off.
    _thread.start_new_thread(reap, (keepalive,))


# ----------------------------------------------------------------------------------------
# The helper
# ----------------------------------------------------------------------------------------


def _release_all(acquired: Sequence[tuple[HandleGuard, object]]) -> None:
    """Release each guard with its ticket (a no-op for a call not started or already
    ended); when an exception (a Ctrl+C, here or at this function's entry) comes out of it,
    its callers call it once more: each call is ended once."""
    for guard, ticket in acquired:
        guard.release(ticket)


def _run(  # noqa: PLR0917 - internal, positional on the hot path
    function: str,
    invoke: Callable[[int, list[int]], object],
    timeout: float,
    context: str | None,
    keepalive: tuple[object, ...],
    guards: Sequence[HandleGuard],
    process: bool,
    on_late_result: Callable[[ProcessInformation | None, int], None] | None,
    after_start: Callable[[], None] | None = None,
    process_info: Any = None,
) -> tuple[str | None, ProcessInformation | None]:
    ms = timeout_ms(timeout)
    # The tracked call's HRESULT, appended from C as the call returns (``invoke`` makes the
    # call as ``called.extend(starmap(fn, ...))``), and the wait's: together they tell, with no
    # handler point between the native return and the record, what the finally must do
    # with the operation: close it at once when the call was never made or failed (HCS
    # never started it: hcsshim closes it then too, ``internal/hcs/v2/operation.go``), or
    # when a wait saw it complete (anything but HCS_E_OPERATION_TIMEOUT: a reaper would
    # wait for it again, and be handed the pipes a second time); else HCS may still be
    # running it, and an exception (a Ctrl+C) hands it to a reaper (review RV63 F2).
    called: list[int] = []
    waited: list[int] = []
    # The hand-off to the reaper: built only when it is needed (a timeout, or in the
    # finally), a tuple with no call in it; ``handed`` once _abandon returned (the reaper is
    # started and owns the operation).
    handoff: _Handoff | None = None
    handed = False
    # True once the timeout's HcsCancelOperation returned: the finally then cancels no more
    # (its _abandon may have started a reaper that closed the operation: review RV74 F1).
    cancelled = False
    op = 0
    # HcsCreateOperation returns the handle (no out parameter the clean-up could share): it
    # is called from C (``list.extend`` over ``itertools.starmap``), so that it lands in
    # ``made`` before any point where CPython runs a signal handler (none runs between C
    # calls; one runs after a call made from Python code), and the ``finally`` closes what
    # ``made`` holds: a Ctrl+C as the call returned would otherwise drop the result and
    # leak the operation (review RV59).
    made: list[int | None] = []
    _close: NativeFunction | None = None
    doc = ctypes.c_void_p(None)  # the result document's slot: freed in the finally if need be
    # One ticket per guard (HandleGuard.acquire): every clean-up below releases each with
    # its ticket, which ends the call once and only if it was started, so a Ctrl+C anywhere
    # leaves no call counted in flight (the handle would never be closed) (review RV59).
    acquired = [(guard, object()) for guard in guards]
    if guards:
        try:
            for guard, ticket in acquired:
                guard.acquire(function, ticket)
        except BaseException:
            try:
                _release_all(acquired)
            except BaseException:
                _release_all(acquired)
                raise
            raise
    # (from the acquire on, no handler point before the try: its finally releases them)
    try:
        _, create, wait, _close = _op_functions()
        made.extend(starmap(create, ((None, _no_completion()),)))
        op = made[0] or 0
        if not op:
            raise errors.error_from_hresult(
                E_OUTOFMEMORY, function="HcsCreateOperation", context=context
            )
        invoke(op, called)
        hr = called[0] & 0xFFFFFFFF
        if hr & 0x80000000:  # FAILED(hr): not started
            # Attach any result document HCS already produced (hcsshim).
            if process:
                native("computecore", "HcsGetOperationResultAndProcessInfo")(
                    op, None, ctypes.byref(doc)
                )
            else:
                native("computecore", "HcsGetOperationResult")(op, ctypes.byref(doc))
            check(hr, function=function, result_document=take_hcs_string(doc), context=context)
        if after_start is not None:
            after_start()
        if process:
            hr, info_copy, text = _wait_result(
                op, ms, process=True, doc=doc, info=process_info, waited=waited
            )
        else:  # _wait_result(op, ms, process=False), inlined: the path every operation takes
            waited.extend(starmap(wait, ((op, ms, ctypes.byref(doc)),)))
            hr = waited[0] & 0xFFFFFFFF
            text = take_hcs_string(doc)
            info_copy = None
        if not hr & 0x80000000:
            return text, info_copy
        if hr == HCS_E_OPERATION_TIMEOUT:
            # From here on the reaper owns the operation and the guards; if a Ctrl+C comes
            # out of _abandon, the finally calls it again (review RV61 F2).
            # The hand-off first, with no handler point before it is stored (a tuple, no
            # call): a Ctrl+C from here on finds it and the finally hands the operation over
            # (it asks HCS to cancel it again then: harmless, E_NOTIMPL is documented).
            handoff = (op, function, process, (*keepalive, invoke), acquired, on_late_result, [])
            # hcsshim: ask HCS to abort and ignore the answer (E_NOTIMPL is documented).
            _cancel(op, function)
            cancelled = True  # (no handler point between the return and this)
            _abandon(*handoff)
            handed = True
            suffix = f"no result within {timeout:g} s; HCS is still running it"
            check(
                hr,
                function=function,
                result_document=text,
                context=f"{context} ({suffix})" if context else suffix,
            )
        check(hr, function=function, result_document=text, context=context)
        return text, info_copy  # pragma: no cover - check raised: hr is a failure
    finally:
        # The document first, in a try of its own: a second Ctrl+C at take_hcs_string's entry
        # (the first one came before the body read it) skipped the rest of this clean-up, so
        # the operation was neither closed nor handed over and its guards kept a call in
        # flight for ever (review RV72 F1).
        try:
            if doc.value:  # a Ctrl+C before it was read: free it (take_hcs_string sets it NULL)
                take_hcs_string(doc)
        finally:
            if (
                (waited and waited[0] & 0xFFFFFFFF != HCS_E_OPERATION_TIMEOUT)
                or not called
                or called[0] & 0x80000000
                or (not waited and not process)
            ):  # completed, never made or failed (first: the path every operation takes), or
                # no process operation, interrupted before its wait (see below): closed here
                try:
                    if made and made[0] and _close is not None:
                        _close(made[0])
                finally:
                    try:
                        _release_all(acquired)
                    except BaseException:  # (a Ctrl+C in it): once more; each call ends once
                        _release_all(acquired)
                        raise
            elif not handed:  # started, not seen complete, not handed over yet: the reaper's
                # A process operation interrupted while it ran (review RV63 F2: closing it lost
                # the pipes HCS returns when it completes), or one whose wait timed out (the
                # timeout's hand-off, interrupted).  Any other operation interrupted before its
                # wait is closed above, as before: closing it cancels it ("If the operation is
                # in progress it will be cancelled", HcsCloseOperation.md), where a reaper would
                # let it run on while the sandbox layer rolls back as if it had not (review
                # RV73 F1: a create or start completing after its rollback).  HCS is asked to
                # cancel it (its answer ignored), as a timeout does and as closing it would.
                if handoff is None:  # (a tuple: no handler point)
                    handoff = (
                        op,
                        function,
                        process,
                        (*keepalive, invoke),
                        acquired,
                        on_late_result,
                        [],
                    )
                try:
                    if not cancelled:  # (after the timeout's, never: the reaper may own it)
                        _cancel(op, function)
                    _abandon(*handoff)
                except BaseException:  # a second Ctrl+C: once more (one reaper claims it, F2)
                    _abandon(*handoff)
                    raise


def _cancel(op: int, function: str) -> None:
    """``HcsCancelOperation(op)``, its answer logged and ignored (documented to return
    ``E_NOTIMPL``, ``HcsCancelOperation.md``; hcsshim ignores it too)."""
    hr = native("computecore", "HcsCancelOperation")(op) & 0xFFFFFFFF
    _log.debug("HcsCancelOperation(%s) returned 0x%08X", function, hr)


def run_operation(
    function: str,
    invoke: Callable[[int, list[int]], object],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    context: str | None = None,
    keepalive: tuple[object, ...] = (),
    guards: Sequence[HandleGuard] = (),
    after_start: Callable[[], None] | None = None,
) -> str | None:
    """Run one asynchronous HCS call and return its result document (``None`` if empty).

    ``invoke(op, called)`` makes the tracked call (``HcsStartComputeSystem(h, op, ...)``)
    from C, its HRESULT appended to ``called`` as it returns:
    ``called.extend(starmap(fn, ((h, op, ...),)))`` (a Ctrl+C inside ``invoke`` then finds the
    call either not made or its HRESULT recorded, see :func:`_run`).  ``keepalive`` holds
    the ctypes buffers the call reads (kept until HCS completes the operation); ``guards``
    the handles it uses.  ``after_start`` runs once the
    call was accepted (before the wait).  Raises the error-tree exception on failure;
    :class:`~hcs_sandbox.errors.OperationTimeoutError` after ``timeout`` seconds.
    """
    return _run(function, invoke, timeout, context, keepalive, guards, False, None, after_start)[0]


def run_process_operation(
    function: str,
    invoke: Callable[[int, list[int]], object],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    context: str | None = None,
    keepalive: tuple[object, ...] = (),
    guards: Sequence[HandleGuard] = (),
    on_late_result: Callable[[ProcessInformation | None, int], None] | None = None,
    process_info: Any = None,
) -> tuple[ProcessInformation, str | None]:
    """Like :func:`run_operation` for ``HcsCreateProcess`` / ``HcsGetProcessInfo``: waits with
    ``HcsWaitForOperationResultAndProcessInfo`` and returns the copied process information.

    The pipe handles in the result belong to the caller.  When the call timed out, or was
    interrupted while HCS ran it, and HCS completes it later, ``on_late_result(info, hr)``
    runs on the reaper thread (by default the late pipe handles are closed; ``info`` is
    None when it failed).  ``process_info``: the ``HCS_PROCESS_INFORMATION``
    (``native.types``) the wait writes, the caller's: from the wait's return on, the pipe
    handles are in it, where the caller's clean-up finds them after a Ctrl+C.
    """
    text, info = _run(
        function,
        invoke,
        timeout,
        context,
        keepalive,
        guards,
        True,
        on_late_result,
        None,
        process_info,
    )
    assert info is not None  # success always fills it
    return info, text


def run_handle_operation(
    guard: HandleGuard,
    function: str,
    document: str | Mapping[str, Any] | None,
    *,
    timeout: float,
    context: str,
    extra_null_arg: bool = False,
) -> str | None:
    """:func:`run_operation` for the per-handle calls ``function(handle, op, document)``
    (``HcsStartComputeSystem.md``, ``HcsTerminateProcess.md`` and siblings); with
    ``extra_null_arg`` a trailing NULL ``identity`` is passed (``HcsModifyComputeSystem.md``).
    The handle is read when the call is made, under ``guard``."""
    call = native("computecore", function)
    doc_buf = wbuf(dumps(document))

    if extra_null_arg:

        def invoke(op: int, called: list[int]) -> None:
            called.extend(starmap(call, ((guard.handle, op, doc_buf, None),)))
    else:

        def invoke(op: int, called: list[int]) -> None:
            called.extend(starmap(call, ((guard.handle, op, doc_buf),)))

    return _run(function, invoke, timeout, context, (doc_buf,), (guard,), False, None)[0]
