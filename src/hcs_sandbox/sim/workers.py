"""Where the simulator runs asynchronous operations: a few reusable worker threads, instead of
one new thread per operation.

Delayed jobs (the simulated latency) wait in a heap.  One idle worker at a time keeps time: it
waits until the earliest delayed job is due and runs it itself, so a delayed job costs one
thread wake-up (not a timer thread's and then a worker's); jobs that come due while it runs
one are taken when it is done (late by at most that job, never early).  Fifty operations that
become due at the same moment run one after the other on a couple of workers instead of fifty
threads fighting over the GIL at once.

A job may block (a completion callback that waits for another operation, a process that waits
for its guest): a watcher thread, started only when every worker is busy while work is queued
or when a delayed job is pending with no worker keeping time, adds a worker (or wakes an idle
one) when no job was taken for ``STALL`` seconds while a job is queued or overdue, so nothing
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
    STALL = 0.02  # seconds without progress (a job queued or overdue) before the pool acts
    IDLE = 5.0  # seconds an idle worker (or the idle watcher thread) waits before it ends

    def __init__(self, name: str = "hcs-sim") -> None:
        self._name = name
        lock = threading.Lock()
        self._cond = threading.Condition(lock)  # idle workers wait here for jobs
        self._keeper_cond = threading.Condition(lock)  # the time keeper waits here
        self._timer_cond = threading.Condition(lock)  # the stall watcher waits here
        self._queue: deque[Job] = deque()
        self._timers: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()
        self._workers = 0
        self._idle = 0  # idle workers, the time keeper included
        self._keeper = False  # an idle worker waits for the earliest delayed job
        self._timer: threading.Thread | None = None  # the stall watcher
        self._watch_at: float | None = None  # when the watcher looks next (None: when told)
        self._timer_started = 0  # watcher threads started so far (tests watch the churn)
        self._progress = 0  # jobs taken so far (the stall detector watches it)

    def submit(self, job: Job, delay: float = 0.0) -> None:
        """Run ``job`` on a worker thread after ``delay`` seconds (never earlier)."""
        with self._cond:
            if delay > 0:
                entry = (time.monotonic() + delay, next(self._seq), job)
                heapq.heappush(self._timers, entry)
                if self._keeper:
                    if self._timers[0] is entry:
                        self._keeper_cond.notify()  # due before the time it waits until
                elif self._idle:
                    self._cond.notify()  # an idle worker becomes the time keeper
                elif self._workers < self.CORE:
                    self._start_worker()  # it becomes the time keeper
                else:
                    self._arm()  # every worker is busy: one takes it when done
            else:
                self._queue.append(job)
                self._spawn_if_needed()
                self._wake_one()
                if self._idle < len(self._queue):
                    self._arm()  # the job may wait for a busy worker

    # ---- internals (self._cond held) ------------------------------------------------------

    def _spawn_if_needed(self) -> None:
        if self._idle < len(self._queue) and self._workers < self.CORE:
            self._start_worker()

    def _wake_one(self) -> None:
        """Wake an idle worker for a queued job: a plain idle one, else the time keeper."""
        if self._idle > self._keeper:
            self._cond.notify()
        elif self._keeper:
            self._keeper_cond.notify()

    def _arm(self) -> None:
        """Make sure the watcher looks at the pool by the time a queued job or the earliest
        delayed job may have stalled (no wake-up when it already looks by then)."""
        if self._queue:
            check = time.monotonic() + self.STALL
        elif self._timers:
            check = self._timers[0][0] + self.STALL
        else:
            return
        if self._timer is None:
            self._timer_started += 1
            self._timer = threading.Thread(
                target=self._tick, name=f"{self._name}-timer", daemon=True
            )
            self._timer.start()
        elif self._watch_at is None or self._watch_at > check:
            self._timer_cond.notify()

    def _start_worker(self) -> None:
        self._workers += 1
        threading.Thread(target=self._work, name=f"{self._name}-worker", daemon=True).start()

    # ---- threads ------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                deadline = time.monotonic() + self.IDLE
                while True:
                    now = time.monotonic()
                    timers = self._timers
                    while timers and timers[0][0] <= now:  # due: queue it
                        self._queue.append(heapq.heappop(timers)[2])
                    if self._queue:
                        break
                    if timers and not self._keeper:  # keep time until the earliest is due
                        self._keeper = True
                        self._idle += 1
                        try:
                            self._keeper_cond.wait(timers[0][0] - now)
                        finally:
                            self._idle -= 1
                            self._keeper = False
                        deadline = time.monotonic() + self.IDLE
                        continue
                    remaining = deadline - now
                    if remaining <= 0:
                        self._workers -= 1
                        return
                    self._idle += 1
                    self._cond.wait(remaining)
                    self._idle -= 1
                job = self._queue.popleft()
                self._progress += 1
                if self._queue:  # more work: hand it on
                    self._spawn_if_needed()
                    self._wake_one()
                    if self._idle < len(self._queue):
                        self._arm()
                elif self._timers and not self._keeper:
                    # Nobody keeps time while this job runs (it may block or run long):
                    # hand the role on, as submit() does, so that the next delayed job is
                    # not late by this one; the watcher only when every worker is busy.
                    if self._idle:
                        self._cond.notify()  # an idle worker takes over keeping time
                    elif self._workers < self.CORE:
                        self._start_worker()  # the new worker becomes the keeper
                    else:
                        self._arm()
            try:
                job()
            except BaseException:  # a job reports its own errors; never kill the worker
                pass

    def _tick(self) -> None:
        """The stall watcher (see the module docstring).  Ends after ``IDLE`` seconds without
        anything to watch (restarted on demand)."""
        seen = -1
        stalled_since = 0.0
        idle_since: float | None = None
        with self._cond:
            while True:
                now = time.monotonic()
                timers = self._timers
                queued = bool(self._queue) and self._idle == 0
                overdue = bool(timers) and timers[0][0] <= now and not self._keeper
                if queued or overdue:
                    if self._progress != seen:
                        seen, stalled_since = self._progress, now
                    elif now - stalled_since >= self.STALL or self._workers == 0:
                        if overdue and self._idle:
                            self._cond.notify()  # an idle worker takes it
                        else:
                            self._start_worker()
                        stalled_since = now
                    wait: float | None = self.STALL
                elif timers:
                    # Look when the earliest is overdue (the keeper runs it by then, or a
                    # worker that took a job in the meantime): a timed wait, so that a worker
                    # taking a job while delayed jobs wait needs not wake this thread.
                    wait = max(timers[0][0] + self.STALL - now, self.STALL)
                elif self._queue:
                    wait = self.STALL  # an idle worker was told; check it took the job
                else:
                    wait = None
                if wait is None:
                    if idle_since is None:
                        idle_since = now
                    elif now - idle_since >= self.IDLE:
                        self._timer = None
                        self._watch_at = None
                        return
                    self._watch_at = None
                    self._timer_cond.wait(self.IDLE - (now - idle_since))
                    continue
                idle_since = None
                wait = max(wait, 0.0005)
                self._watch_at = now + wait
                self._timer_cond.wait(wait)
