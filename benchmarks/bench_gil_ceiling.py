"""What parallel efficiency this interpreter allows, for a lifecycle that costs what ours costs.

``bench_lifecycle.py``'s efficiency figure runs 50 lifecycles in 50 threads of one process,
with 200 ms of simulated latency per asynchronous HCS operation.  Python code runs one thread
at a time (the GIL), so every thread's CPU between two waits is serialised with everyone
else's: the figure is bounded by the CPU of a lifecycle, whoever spends it.  This benchmark
measures that bound on this machine, without the library:

1. It measures a real lifecycle (create → start → stop → remove, zero latency, the calling
   thread's CPU, ``time.thread_time``) cut at its blocking waits
   (``HcsWaitForOperationResult``): the CPU of each segment between two waits, the part of it
   spent inside the simulator's C entry points, and the number of calls that release the
   GIL and take it back: calls into the simulator (as calls into the real DLLs do), and the
   library's file and sqlite calls (counted in a second pass, with a profile hook).
2. It replays that shape with no library at all: each thread spins for each segment's CPU
   in as many slices as the segment has such calls, with a GIL-releasing system call
   (``os.stat``) between slices, and sleeps the latency between segments, under the same harness (50
   already started threads released by a barrier; T1 one lifecycle alone; TN to the last
   end).  Replayed: the segments as measured (library and simulator entry points); the
   library's part only (what a simulator that costs this process nothing would allow);
   the library's part scaled down; and no work at all (the harness's own floor).

The replay leaves out the simulator's own threads, which complete operations and deliver
callbacks (``bench_lifecycle.py``'s "other threads" line: 1.5-1.7 ms of CPU per lifecycle on
2026-11-26), so it is an upper bound: the real figure is lower.

Run: ``.venv/bin/python benchmarks/bench_gil_ceiling.py [--threads 50] [--latency 0.2]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench_lifecycle import _lifecycle, _setup, unwrap_dispatch, wrap_dispatch

Segment = tuple[float, float, int]  # (library CPU s, simulator entry points CPU s, releases)


#: The ``os`` functions the library calls that drop the GIL around a system call (CPython's
#: posixmodule.c ``Py_BEGIN_ALLOW_THREADS``); ``os.fspath``, ``os.getpid``, ``os.getuid``
#: and the path helpers do not, and are not counted (review RV55 F2).
_RELEASING_OS = frozenset(
    {
        "stat", "lstat", "fstat", "open", "close", "read", "write", "pread", "pwrite",
        "mkdir", "rmdir", "unlink", "remove", "rename", "replace", "scandir", "listdir",
        "fsync", "fdatasync", "ftruncate", "urandom", "utime", "chmod", "readlink",
        "access", "lseek",
    }
)  # fmt: skip
#: The sqlite3 methods that step a statement or end a transaction (they drop the GIL
#: around ``sqlite3_step``/``sqlite3_prepare``).
_RELEASING_SQLITE = frozenset(
    {"execute", "executemany", "executescript", "fetchone", "fetchmany", "fetchall",
     "commit", "rollback", "close"}
)  # fmt: skip


def _releases_gil(function: Any) -> bool:
    """Whether a builtin the library calls releases the GIL around its work: the operating
    system's file calls and sqlite's statements.  The counts are a lower bound: a
    ``scandir`` listing also drops the GIL for each entry it reads (not a call the profile
    hook sees), and so does ``socket.gethostname`` (once, in remove): ~5 of ~28 before the
    first wait (review RV56 F2)."""
    name = getattr(function, "__name__", "")
    if getattr(function, "__module__", None) == "posix":
        return name in _RELEASING_OS
    owner = getattr(function, "__self__", None)
    return owner is not None and type(owner).__module__ == "sqlite3" and name in _RELEASING_SQLITE


def measure_segments(n: int, *, count_releases: bool = False) -> list[Segment]:
    """The calling thread's CPU per segment of a lifecycle (medians over ``n`` lifecycles):
    ``[(library, simulator, calls that release the GIL)]``, one entry per stretch between
    blocking waits (``HcsWaitForOperationResult``), in order.  The calls counted are the
    calls into the simulator (a call into a DLL releases the GIL), and with
    ``count_releases`` also the library's own file and sqlite calls (counted with a profile
    hook, which slows the thread down: that pass's times are not to be used)."""
    current: list[list[float]] = []  # per segment: [cpu at start, sim cpu, calls]
    marks: list[float] = []

    def record(name: str, t0: float, t1: float) -> None:
        if not current:  # (warming up)
            return
        segment = current[-1]
        segment[2] += 1
        if name == "HcsWaitForOperationResult":
            # A blocking wait ends the segment; its own CPU (the simulator's, in this
            # thread, once the operation is done) goes to the next one's simulator part.
            marks.append(t0)
            current.append([t0, t1 - t0, 0.0])
        else:
            segment[1] += t1 - t0

    def count(frame: object, event: str, arg: object) -> None:
        if event == "c_call" and current and not inside[0] and _releases_gil(arg):
            current[-1][2] += 1

    originals, inside = wrap_dispatch(record)
    rows: list[list[Segment]] = []
    try:
        for i in range(5):
            _lifecycle(i, "gil-warm")
        if count_releases:
            sys.setprofile(count)
        for i in range(n):
            current.clear()
            marks.clear()
            current.append([time.thread_time(), 0.0, 0.0])
            _lifecycle(i, "gil")
            marks.append(time.thread_time())
            row = []
            for (start, sim, calls), end in zip(current, marks, strict=True):
                row.append((max(0.0, end - start - sim), sim, int(calls)))
            current.clear()
            rows.append(row)
    finally:
        sys.setprofile(None)
        unwrap_dispatch(originals)
    length = statistics.mode(len(row) for row in rows)
    same = [row for row in rows if len(row) == length]
    return [
        (
            statistics.median(row[k][0] for row in same),
            statistics.median(row[k][1] for row in same),
            int(statistics.median(row[k][2] for row in same)),
        )
        for k in range(length)
    ]


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def _replay(shape: list[tuple[float, int]], latency: float, probe: str) -> None:
    """One synthetic lifecycle: each segment's CPU in ``slices`` parts with a GIL-releasing
    ``os.stat`` between them; ``latency`` of sleep between segments."""
    for k, (cpu, calls) in enumerate(shape):
        if k:
            time.sleep(latency)
        slices = max(1, calls)
        for _ in range(slices):
            _spin(cpu / slices)
            os.stat(probe)


def replay_efficiency(
    shape: list[tuple[float, int]], threads: int, latency: float, probe: str
) -> tuple[float, float]:
    """(T1, TN) of the synthetic lifecycle ``shape`` under bench_lifecycle's harness."""
    singles = []
    for _ in range(3):
        t0 = time.perf_counter()
        _replay(shape, latency, probe)
        singles.append(time.perf_counter() - t0)
    released: list[float] = []
    barrier = threading.Barrier(threads, action=lambda: released.append(time.perf_counter()))
    ends: list[float] = []

    def job(_: int) -> None:
        barrier.wait()
        _replay(shape, latency, probe)
        ends.append(time.perf_counter())

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(job, range(threads)))
    return statistics.median(singles), max(ends) - released[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per operation")
    parser.add_argument("--n", type=int, default=60, help="lifecycles measured for the shape")
    parser.add_argument("--runs", type=int, default=5, help="replays per shape (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hcs-gil-") as root:
        _setup(Path(root))
        timed = measure_segments(args.n)
        counted = measure_segments(max(10, args.n // 3), count_releases=True)
        if len(counted) != len(timed):
            raise SystemExit("the two passes cut the lifecycle differently: run again")
        segments = [
            (lib, sim, releases)
            for (lib, sim, _calls), (_l, _s, releases) in zip(timed, counted, strict=True)
        ]
        probe = os.path.join(root, "probe")
        Path(probe).touch()
        print(
            f"machine: {platform.machine()} {platform.system()} {platform.release()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
        )
        print(f"a lifecycle's calling thread, cut at its waits (medians of {args.n}):")
        for k, (lib, sim, calls) in enumerate(segments):
            print(
                f"  segment {k}: library {lib * 1000:5.2f} ms, simulator entry points "
                f"{sim * 1000:5.2f} ms, {calls:3d} calls that release the GIL"
            )
        total_lib = sum(s[0] for s in segments)
        total_sim = sum(s[1] for s in segments)
        print(
            f"  in all:    library {total_lib * 1000:5.2f} ms, simulator {total_sim * 1000:5.2f} ms"
        )
        shapes: list[tuple[str, list[tuple[float, int]]]] = [
            ("as measured (library + simulator)", [(lib + sim, n) for lib, sim, n in segments]),
            ("the library's part only", [(lib, n) for lib, _sim, n in segments]),
        ]
        for factor in (0.75, 0.5):
            shapes.append(
                (
                    f"the library's part x {factor}",
                    [(lib * factor, n) for lib, _sim, n in segments],
                )
            )
        shapes.append(("no work (the harness)", [(0.0, 1) for _ in segments]))
        print(
            f"replayed without the library: {args.threads} threads, "
            f"{args.latency * 1000:.0f} ms per wait, median of {args.runs} runs:"
        )
        for label, shape in shapes:
            results = [
                replay_efficiency(shape, args.threads, args.latency, probe)
                for _ in range(args.runs)
            ]
            effs = sorted(t1 / tn for t1, tn in results)
            cpu = sum(c for c, _ in shape) * 1000
            print(
                f"  {label:36s} {cpu:5.2f} ms CPU: efficiency {statistics.median(effs):.2f} "
                f"({effs[0]:.2f}-{effs[-1]:.2f})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
