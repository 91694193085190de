"""A timeline of the parallel-efficiency run: where the 50 threads' time goes.

With 200 ms simulated latency on every asynchronous HCS operation, ``--threads`` threads
each run create → start → stop → remove after a common barrier (as ``bench_lifecycle.py``'s
efficiency figure does).  Printed: T1 (one lifecycle alone, median of 3), TN, the
efficiency T1/TN, and for each phase the first and the last thread's time, relative to the
barrier's release: when each thread first entered ``HcsWaitForOperationResult`` (its
create's first wait: what it did before is CPU, under the GIL), and when each verb returned.

Run: ``.venv/bin/python benchmarks/bench_timeline.py [--threads 50] [--latency 0.2]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench_lifecycle import (  # the same lifecycle, set-up and T1
    _lifecycle,
    _setup,
    fs_probe,
    single_lifecycle_seconds,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per operation")
    parser.add_argument(
        "--dir",
        default=None,
        help="folder for the run's state and simulator folders (default: the temp folder)",
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hcs-timeline-", dir=args.dir))
    _setup(root)
    from hcs_sandbox.sandbox.sandbox import Sandbox
    from hcs_sandbox.sandbox.spec import SandboxSpec
    from hcs_sandbox.sim import backend, get_simulator

    for i in range(3):  # warm up: imports, the database, the plan template
        _lifecycle(i, "warm")
    fs_us = fs_probe(root / "probe")
    sim = get_simulator()
    sim.set_latency("*", args.latency)
    first_wait: dict[int, float] = {}
    originals = {n: getattr(backend, n) for n in ("_dispatch", "_dispatch_deferring")}

    def noting(original: Any) -> Any:
        def dispatch(dll: str, name: str, restype: object, argv: tuple[object, ...]) -> object:
            if name == "HcsWaitForOperationResult":
                first_wait.setdefault(threading.get_ident(), time.perf_counter())
            return original(dll, name, restype, argv)

        return dispatch

    for name, original in originals.items():
        setattr(backend, name, noting(original))
    try:
        t1 = single_lifecycle_seconds()
        first_wait.clear()
        released: list[float] = []
        # The clock starts when the barrier releases the (already started) threads, as in
        # bench_lifecycle.py: the pool's thread starts and joins are not in TN.
        barrier = threading.Barrier(
            args.threads, action=lambda: released.append(time.perf_counter())
        )
        rows: list[tuple[float, ...]] = []

        def job(i: int) -> None:
            barrier.wait()
            me = threading.get_ident()
            sandbox = Sandbox.create(SandboxSpec(name=f"par-{i}"))
            try:
                created = time.perf_counter()
                sandbox.start()
                started = time.perf_counter()
                sandbox.stop(timeout=5.0)
                stopped = time.perf_counter()
                sandbox.remove(force=True)
            finally:
                sandbox.close()
            rows.append((first_wait[me], created, started, stopped, time.perf_counter()))

        with ThreadPoolExecutor(max_workers=args.threads) as pool:
            list(pool.map(job, range(args.threads)))
        t0 = released[0]
        tn = max(row[-1] for row in rows) - t0
    finally:
        for name, original in originals.items():
            setattr(backend, name, original)
        sim.set_latency("*", 0.0)
    print(
        f"file system at {root.parent}: {fs_us:.0f} us CPU per file made and deleted "
        "(a create makes a folder and three files)"
    )
    print(f"{args.threads} lifecycles, {args.latency * 1000:.0f} ms per HCS operation:")
    print(f"  T1 {t1 * 1000:.0f} ms, T{args.threads} {tn * 1000:.0f} ms, efficiency {t1 / tn:.2f}")
    phases = ("first wait", "create done", "start done", "stop done", "remove done")
    for k, phase in enumerate(phases):
        times = sorted((row[k] - t0) * 1000 for row in rows)
        print(f"  {phase:12s} first thread {times[0]:6.0f} ms, last {times[-1]:6.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
