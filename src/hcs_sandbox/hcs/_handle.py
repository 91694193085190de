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
        handle: int,
        closer: Callable[[int], object],
        what: str,
        *,
        closed_error: Callable[[str], BaseException] | None = None,
    ) -> None:
        """``closed_error(function)`` builds the error for a call after :meth:`close`
        (default: an ``E_HANDLE`` error "using <what> after it was closed")."""
        self._handle = handle
        self._closer = closer
        self._what = what
        self._closed_error = closed_error
        self._lock = threading.Lock()
        self._inflight = 0
        self._closed = False  # no new call may start
        self._released = False  # the native close ran
        self._on_released: list[Callable[[], None]] = []

    @property
    def handle(self) -> int:
        """The raw handle value (do not use it after :attr:`closed`)."""
        return self._handle

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def released(self) -> bool:
        """True once the native close function has run."""
        return self._released

    @property
    def inflight(self) -> int:
        return self._inflight

    def bind(self, handle: int) -> None:
        """Set the handle value once the creating call has returned it (``HCS_SYSTEM*`` out)."""
        with self._lock:
            self._handle = handle

    def on_released(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` (once) after the native close; at once if it already ran."""
        with self._lock:
            if not self._released:
                self._on_released.append(callback)
                return
        callback()

    def acquire(self, function: str) -> int:
        """Start a call on the handle: returns it, or raises when the handle is closed."""
        with self._lock:
            if not self._closed:
                self._inflight += 1
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
        handle = self.acquire(function)
        try:
            return use(handle)
        finally:
            self.release()

    def release(self) -> None:
        """End a call started by :meth:`acquire`; runs a deferred close when it was last."""
        with self._lock:
            self._inflight -= 1
            run = self._closed and self._inflight == 0 and not self._released
            if run:
                self._released = True
        if run:
            self._do_close()

    def close(self) -> bool:
        """Mark closed; close natively now or when the last call finishes.

        Returns True when the native close ran now, False when it is deferred or had
        already run.  Idempotent.
        """
        with self._lock:
            if self._closed:
                return False
            self._closed = True
            run = self._inflight == 0 and not self._released
            if run:
                self._released = True
        if run:
            self._do_close()
        return run

    def _do_close(self) -> None:
        if in_callback():
            # Never close from inside an HCS event callback (see events.in_callback).
            threading.Thread(target=self._close_now, name="hcs-deferred-close", daemon=True).start()
            return
        self._close_now()

    def _close_now(self) -> None:
        try:
            if self._handle:
                self._closer(self._handle)
        except Exception:  # closing must not raise out of finalizers / reapers
            _log.exception("closing %s failed", self._what)
        callbacks, self._on_released = self._on_released, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                _log.exception("clean-up after closing %s failed", self._what)
