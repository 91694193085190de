"""Waits that Ctrl+C can interrupt on every Python: a long wait cut into short slices.

On Windows before Python 3.14, Ctrl+C does not interrupt a thread blocked on a Python lock
-- nor on what waits on one: ``queue.Queue.get``, ``threading.Event.wait``,
``Condition.wait``, ``Thread.join`` -- with or without a timeout: the KeyboardInterrupt is
raised only once the wait ends (CPython gh-125541, fixed in 3.14 by PR #125546; gh-80116
for ``Event.wait``).  On POSIX the signal interrupts the wait.  A wait made of slices of
at most :data:`SLICE` seconds lets a pending Ctrl+C through between two of them; what is
awaited still ends the wait at once (a queue item, a set event).

Use it where the main thread waits a long or unbounded time; HCS calls
(``HcsWaitForOperationResult``) are another matter (their timeouts bound them).
"""

from __future__ import annotations

import time

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~5 ms at start-up
if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["SLICE", "slices"]

#: The longest single wait (seconds): how long a Ctrl+C may go unnoticed.
SLICE = 0.25


def slices(timeout: float | None) -> Iterator[float]:
    """The timeouts of a wait of ``timeout`` seconds (None: no end) cut into slices of at
    most :data:`SLICE` seconds.  Wait on each in turn until what is awaited comes; when the
    iterator is exhausted, ``timeout`` has passed.  A ``timeout`` of 0 (or less) is one
    slice of 0: one look without waiting.

    ``for part in slices(timeout): if event.wait(part): ...``
    """
    if timeout is None:
        while True:
            yield SLICE
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= SLICE:
            yield max(left, 0.0)
            return
        yield SLICE
