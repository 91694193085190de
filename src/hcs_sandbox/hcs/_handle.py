"""Lifetime of one native handle while calls that use it may be in flight.

hcsshim documents access violations inside computecore.dll when a handle is torn down
while a call that uses it is still running (``internal/computecore/computecore.go``,
``execute``: "Abandoning f mid-flight would let those defers tear down handles the
syscall is still using").  A :class:`HandleGuard` therefore counts the calls in flight
on its handle; :meth:`HandleGuard.close` marks the handle closed at once (no new call
may start) but calls the native close function only when the last call in flight has
finished, which for an operation abandoned after a timeout is when HCS completes it
(see :mod:`hcs_sandbox.hcs.operation`).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from hcs_sandbox import errors
from hcs_sandbox.errors import E_HANDLE
from hcs_sandbox.hcs._log import get_logger
from hcs_sandbox.hcs.events import in_callback

__all__ = ["ClosingContext", "HandleGuard"]

_log = get_logger("hcs_sandbox.hcs")  # logging is imported on first use


_Self = TypeVar("_Self", bound="ClosingContext")
_T = TypeVar("_T")


_ANONYMOUS = object()  # the entry of a call acquired without a ticket


class ClosingContext:
    """``with obj:`` closes ``obj`` on the way out (the RAII wrappers share this)."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class HandleGuard:
    """One native handle, its in-flight call count and its deferred close."""

    def __init__(
        self,
        handle: int | ctypes.c_void_p,
        closer: Callable[[ctypes.c_void_p], object],
        what: str,
        *,
        closed_error: Callable[[str], BaseException] | None = None,
    ) -> None:
        """``handle``: the handle, or the ``c_void_p`` it is (or will be) written to (the out
        parameter of the call that makes it): the guard then owns the handle from the
        moment that call writes it.  ``closer(held)`` closes what the ``c_void_p`` still
        holds, setting it to NULL right before the native close with no point between where
        a signal handler runs (:func:`hcs_sandbox.native.handles.close_held`), so that every
        clean-up closes the handle once.  ``closed_error(function)`` builds the error for a
        call after :meth:`close` (default: an ``E_HANDLE`` error "using <what> after it was
        closed")."""
        held = handle if isinstance(handle, ctypes.c_void_p) else ctypes.c_void_p(handle or None)
        self._held = held
        self._handle = held.value or 0
        self._closer = closer
        self._what = what
        self._closed_error = closed_error
        self._lock = threading.Lock()
        #: One entry per call in flight: the caller's ticket (:meth:`acquire`), or _ANONYMOUS.
        self._calls: list[object] = []
        self._closed = False  # no new call may start
        self._released = False  # the native close ran (or runs now)
        self._on_released: list[Callable[[], None]] = []

    @property
    def handle(self) -> int:
        """The raw handle value (do not use it after :attr:`closed`)."""
        return self._handle or self._held.value or 0

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def released(self) -> bool:
        """True once the native close function has run."""
        return self._released

    @property
    def inflight(self) -> int:
        return len(self._calls)

    def bind(self, handle: int) -> None:
        """Set the handle value once the creating call has returned it (``HCS_SYSTEM*`` out)."""
        with self._lock:
            self._handle = handle
            if not self._held.value:  # (a guard made with an int: the handle it closes)
                self._held.value = handle or None

    def on_released(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` (once) after the native close; at once if it already ran."""
        with self._lock:
            if not self._released:
                self._on_released.append(callback)
                return
        callback()

    def acquire(self, function: str, ticket: object = None) -> int:
        """Start a call on the handle: returns it, or raises when the handle is closed.

        ``ticket`` (a new ``object()`` of the caller's) names the call: the start is
        recorded with it in one step, and :meth:`release` with it ends that call once
        however often it is called, so a caller releases in a ``finally`` that also covers
        the acquire, and once more when an exception (a Ctrl+C at the release's entry) came
        out of it (:meth:`call`): a call in flight is never left counted (the handle would
        never be closed) nor ended twice (review RV59)."""
        with self._lock:
            if not self._closed:
                self._calls.append(_ANONYMOUS if ticket is None else ticket)
                return self._handle
        raise self.closed_error(function)

    def closed_error(self, function: str) -> BaseException:
        """The error for calling ``function`` on the handle after :meth:`close`."""
        if self._closed_error is not None:
            return self._closed_error(function)
        return errors.error_from_hresult(
            E_HANDLE, function=function, context=f"using {self._what} after it was closed"
        )

    def call(self, function: str, use: Callable[[int], _T]) -> _T:
        """``use(handle)`` as one call in flight (:meth:`acquire` ... :meth:`release`)."""
        ticket = object()
        try:
            return use(self.acquire(function, ticket))
        finally:
            try:
                self.release(ticket)
            except BaseException:  # (a Ctrl+C at its entry): once more, a no-op if it ended
                self.release(ticket)
                raise

    def release(self, ticket: object = None) -> None:
        """End a call started by :meth:`acquire` (with its ``ticket``: only if that call is
        still in flight); runs a deferred close when it was last."""
        try:
            with self._lock:
                if ticket is None:
                    self._calls.remove(_ANONYMOUS)
                elif ticket in self._calls:
                    self._calls.remove(ticket)  # (one step: no handler point in it)
                run = self._closed and not self._calls and not self._released
                if run:
                    self._released = True
            if run:
                self._do_close()
        except BaseException:
            self._close_after_interrupt()
            raise

    def close(self) -> bool:
        """Mark closed; close natively now or when the last call finishes.

        Returns True when the native close ran now, False when it is deferred or had
        already run.  Idempotent.  A Ctrl+C (any exception) once the handle was marked
        closed still closes it, once (:meth:`_close_after_interrupt`).
        """
        try:
            with self._lock:
                if self._closed:
                    return False
                self._closed = True
                run = not self._calls and not self._released
                if run:
                    self._released = True
            if run:
                self._do_close()
            return run
        except BaseException:
            self._close_after_interrupt()
            raise

    def _close_after_interrupt(self) -> None:
        """After an exception (a Ctrl+C) in :meth:`close` or :meth:`release`: when the
        handle is marked closed and no call is in flight, close what :attr:`_held` still
        holds (NULL if the native close was made: nothing is closed twice).  Between
        marking it closed and the native close, a Ctrl+C would otherwise leak the handle:
        a later :meth:`close` returns at once, and the owners' finalizers check
        :attr:`closed` (review RV59)."""
        if self._closed and not self._calls:
            self._released = True
            self._do_close()

    def _do_close(self) -> None:
        if in_callback():
            # Never close from inside an HCS event callback (see events.in_callback).
            threading.Thread(target=self._close_now, name="hcs-deferred-close", daemon=True).start()
            return
        self._close_now()

    def _close_now(self) -> None:
        try:
            self._closer(self._held)  # closes what _held still holds: NULL once closed
        except Exception:  # closing must not raise out of finalizers / reapers
            _log.exception("closing %s failed", self._what)
        callbacks, self._on_released = self._on_released, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                _log.exception("clean-up after closing %s failed", self._what)
