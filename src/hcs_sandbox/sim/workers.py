"""Where the simulator runs asynchronous operations: a few reusable worker threads fed by one
timer thread (for the simulated latency), instead of one new thread per operation.

Fifty operations that become due at the same moment then run one after the other on a couple
of workers instead of fifty threads fighting over the GIL at once, which is what kept the
simulator from overlapping latency well.  A job may block (a completion callback that waits for
another operation, a process that waits for its guest): when the queue makes no progress for
``STALL`` seconds while every worker is busy, the timer thread adds a worker, so nothing
starves.  Threads start on first use and end after ``IDLE`` seconds without work.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["Workers"]

Job = Callable[[], None]


class Workers:
    """A small elastic thread pool with delayed submission."""

    CORE = 2  # workers started without waiting for a stall
    STALL = 0.02  # seconds without progress (all busy) before one more worker starts
    IDLE = 5.0  # seconds an idle worker (or the idle timer thread) waits before it ends

    def __init__(self, name: str = "hcs-sim") -> None:
        self._name = name
        lock = threading.Lock()
        self._cond = threading.Condition(lock)  # workers wait here for jobs
        self._timer_cond = threading.Condition(lock)  # the timer thread waits here
        self._queue: deque[Job] = deque()
        self._timers: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()
        self._workers = 0
        self._idle = 0
        self._timer: threading.Thread | None = None
        self._timer_started = 0  # timer threads started so far (tests watch the churn)
        self._progress = 0  # jobs taken so far (the stall detector watches it)

    def submit(self, job: Job, delay: float = 0.0) -> None:
        """Run ``job`` on a worker thread after ``delay`` seconds."""
        with self._cond:
            if delay > 0:
                entry = (time.monotonic() + delay, next(self._seq), job)
                heapq.heappush(self._timers, entry)
                if self._timer is None:
                    self._start_timer()
                elif self._timers[0] is entry:
                    self._timer_cond.notify()  # due before the time the timer sleeps until
            else:
                self._queue.append(job)
                self._spawn_if_needed()
                self._cond.notify()
                if self._idle < len(self._queue):
                    # The job may wait for a busy worker: the timer watches for a stall.
                    if self._timer is None:
                        self._start_timer()
                    else:
                        self._timer_cond.notify()

    # ---- internals (self._cond held) ------------------------------------------------------

    def _spawn_if_needed(self) -> None:
        if self._idle < len(self._queue) and self._workers < self.CORE:
            self._start_worker()

    def _start_worker(self) -> None:
        self._workers += 1
        threading.Thread(target=self._work, name=f"{self._name}-worker", daemon=True).start()

    def _start_timer(self) -> None:
        self._timer_started += 1
        self._timer = threading.Thread(target=self._tick, name=f"{self._name}-timer", daemon=True)
        self._timer.start()

    # ---- threads ------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                deadline = time.monotonic() + self.IDLE
                while not self._queue:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        self._workers -= 1
                        return
                    self._idle += 1
                    self._cond.wait(remaining)
                    self._idle -= 1
                job = self._queue.popleft()
                self._progress += 1
            try:
                job()
            except BaseException:  # a job reports its own errors; never kill the worker
                pass

    def _tick(self) -> None:
        """Move due timers to the queue; add a worker when the queue stalls.  Ends after
        ``IDLE`` seconds with nothing to watch (restarted on demand), so a steady stream of
        delayed jobs does not start a thread per job."""
        seen = -1
        stalled_since = 0.0
        idle_since: float | None = None
        with self._cond:
            while True:
                now = time.monotonic()
                due = 0
                while self._timers and self._timers[0][0] <= now:
                    self._queue.append(heapq.heappop(self._timers)[2])
                    due += 1
                if due:
                    self._spawn_if_needed()
                    self._cond.notify(due)
                if self._queue and self._idle == 0:
                    if self._progress != seen:
                        seen, stalled_since = self._progress, now
                    elif now - stalled_since >= self.STALL or self._workers == 0:
                        self._start_worker()
                        stalled_since = now
                    wait = self.STALL
                elif self._timers:
                    wait = self._timers[0][0] - now
                elif self._queue:
                    wait = self.STALL
                else:
                    if idle_since is None:
                        idle_since = now
                    elif now - idle_since >= self.IDLE:
                        self._timer = None
                        return
                    self._timer_cond.wait(self.IDLE - (now - idle_since))
                    continue
                idle_since = None
                self._timer_cond.wait(max(wait, 0.0005))
