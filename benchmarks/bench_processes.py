"""Parallel efficiency with one process per sandbox instead of one thread per sandbox.

``bench_lifecycle.py``'s efficiency figure runs 50 lifecycles in 50 threads of one process,
where the GIL serialises every thread's CPU (``bench_gil_ceiling.py`` measures that bound).
Here each of ``--processes`` processes runs one lifecycle (create → start → stop → remove)
against its own in-process simulator (the simulators share their state through files, as
the CLI's processes do), with the same 200 ms of latency per asynchronous HCS operation,
all released together by a barrier once every process has imported the library and run one
lifecycle to warm up.  T1: one process alone (median of 3); TN: from the release to the end
of the last lifecycle.  This is not the issue's measure (threads); it shows what the
library's own design allows when the GIL is not shared: its store, its files and its
simulator traffic under 50 concurrent writers.  ``--dir`` puts the files elsewhere: on
this VM the same run gave 0.82 with them on tmpfs (``/dev/shm``) and 0.39-0.45 on the
ext4 root (mounted with ``discard``), where the 50 processes' removals wait up to 0.9 s in
their first ``unlink``/``rmdir`` (2026-11-26; docs/performance.md).

Run: ``.venv/bin/python benchmarks/bench_processes.py [--processes 50] [--latency 0.2]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _child(root: str, index: int, latency: float, barrier: Any, results: Any) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_lifecycle import _lifecycle, _setup

    _setup(Path(root))
    from hcs_sandbox.sim import get_simulator

    _lifecycle(index, f"warm{os.getpid()}")  # imports, the database, the plan template
    get_simulator().set_latency("*", latency)
    barrier.wait()
    released = time.perf_counter()  # CLOCK_MONOTONIC (Linux), QPC (Windows): system-wide
    _lifecycle(index, "proc")
    results.put((released, time.perf_counter()))


def _run(root: str, count: int, latency: float) -> tuple[float, float]:
    """(earliest release, latest end) of ``count`` processes run together."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(count)
    results = context.Queue()
    processes = [
        context.Process(target=_child, args=(root, i, latency, barrier, results))
        for i in range(count)
    ]
    for process in processes:
        process.start()
    rows = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        if process.exitcode != 0:
            raise SystemExit(f"a benchmark process ended with exit code {process.exitcode}")
    return min(r[0] for r in rows), max(r[1] for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per operation")
    parser.add_argument(
        "--dir", default=None, help="where the state and simulator folders go (default: TMPDIR)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hcs-procs-", dir=args.dir) as root:
        singles = []
        for _ in range(3):
            start, end = _run(root, 1, args.latency)
            singles.append(end - start)
        t1 = statistics.median(singles)
        start, end = _run(root, args.processes, args.latency)
        tn = end - start
    print(
        f"machine: {platform.machine()} {platform.system()} {platform.release()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(
        f"one lifecycle per process, {args.latency * 1000:.0f} ms per HCS operation, "
        f"files under {args.dir or tempfile.gettempdir()}:"
    )
    print(f"  one process alone T1   {t1:8.3f} s")
    print(f"  {args.processes} processes          {tn:8.3f} s  (release to the last end)")
    print(f"  parallel efficiency    {t1 / tn:8.2f}  (the issue's target, >= 0.9, is for threads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
