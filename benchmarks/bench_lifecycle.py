"""Library overhead per sandbox lifecycle, and parallel efficiency, against the simulator.

1. **CPU per lifecycle**: create → start → stop → remove against the zero-latency simulator,
   in CPU milliseconds (``time.process_time``: every thread of this process, so the
   simulator's own work is included).  A cProfile pass then splits that CPU time between the
   simulator (time inside ``hcs_sandbox.sim``, entered through its C thunks) and everything
   else (the library: native/hcs/sandbox layers, sqlite, json).  Target: ≤ 2 ms CPU of
   library work per lifecycle.
2. **Parallel efficiency**: with 200 ms simulated latency on every asynchronous HCS
   operation, one lifecycle's wall time T1 versus 50 lifecycles in 50 threads T50;
   efficiency = T1 / T50 (1.0 = perfect overlap).  Target ≥ 0.9.

Run: ``.venv/bin/python benchmarks/bench_lifecycle.py [--n 200] [--parallel 50]``.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def _setup(root: Path) -> None:
    os.environ["HCS_SANDBOX_STATE_DIR"] = str(root / "state")
    os.environ["HCS_SANDBOX_SIMULATOR"] = str(root / "sim")
    from hcs_sandbox.native.loader import reset_backend

    reset_backend()


def _lifecycle(i: int, tag: str) -> None:
    from hcs_sandbox.sandbox.sandbox import Sandbox
    from hcs_sandbox.sandbox.spec import SandboxSpec

    sandbox = Sandbox.create(SandboxSpec(name=f"bench-{tag}-{i}"))
    try:
        sandbox.start()
        sandbox.stop(timeout=5.0)
        sandbox.remove(force=True)
    finally:
        sandbox.close()


def _share(profile: cProfile.Profile, *parts: str) -> float:
    """Fraction of profiled time spent inside one package or module (entry points'
    cumulative time), e.g. ``("sim",)`` for the simulator, ``("sandbox", "store.py")``."""
    stats = pstats.Stats(profile)
    raw = stats.stats  # type: ignore[attr-defined]
    sim_marker = os.sep + os.path.join("hcs_sandbox", *parts)
    if not parts[-1].endswith(".py"):
        sim_marker += os.sep
    total = sum(entry[2] for entry in raw.values())  # tottime over every function
    inside = 0.0
    for (filename, _line, _name), (_cc, _nc, _tt, cumtime, callers) in raw.items():
        if sim_marker not in filename:
            continue
        # An entry point: no caller inside the simulator (called from a C thunk, i.e. from
        # the library's ctypes call, or started as a simulator thread).
        if all(sim_marker not in caller[0] for caller in callers):
            inside += cumtime
    return min(1.0, inside / total) if total else 0.0


def bench_cpu(n: int) -> dict[str, float]:
    for i in range(5):  # warm up: imports, the sqlite schema, the NAT-free path
        _lifecycle(i, "warm")
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    for i in range(n):
        _lifecycle(i, "cpu")
    cpu = (time.process_time() - start_cpu) / n
    wall = (time.perf_counter() - start_wall) / n
    profile = cProfile.Profile(time.process_time)  # CPU shares, not wall (fsync waits)
    profile.enable()
    for i in range(min(n, 50)):
        _lifecycle(i, "prof")
    profile.disable()
    share = _share(profile, "sim")
    store = _share(profile, "sandbox", "store.py")
    return {
        "store_share": store,
        "store_cpu_ms": cpu * store * 1000,
        "cpu_ms": cpu * 1000,
        "wall_ms": wall * 1000,
        "sim_share": share,
        "library_cpu_ms": cpu * (1 - share) * 1000,
        "sim_cpu_ms": cpu * share * 1000,
    }


def bench_parallel(count: int, latency: float) -> dict[str, float]:
    from hcs_sandbox.sim import get_simulator

    sim = get_simulator()
    sim.set_latency("*", latency)
    try:
        singles = []
        for i in range(3):
            t0 = time.perf_counter()
            _lifecycle(i, "one")
            singles.append(time.perf_counter() - t0)
        t1 = statistics.median(singles)
        barrier = threading.Barrier(count)

        def job(i: int) -> None:
            barrier.wait()
            _lifecycle(i, "par")

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=count) as pool:
            list(pool.map(job, range(count)))
        t_all = time.perf_counter() - t0
    finally:
        sim.set_latency("*", 0.0)
    return {"t1_s": t1, "tn_s": t_all, "efficiency": t1 / t_all}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="lifecycles for the CPU figure")
    parser.add_argument("--parallel", type=int, default=50, help="concurrent sandboxes")
    parser.add_argument("--latency", type=float, default=0.2, help="simulated latency (s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hcs-bench-") as root:
        _setup(Path(root))
        cpu = bench_cpu(args.n)
        par = bench_parallel(args.parallel, args.latency)
    print(
        f"machine: {platform.machine()} {platform.system()} {platform.release()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"lifecycle (create/start/stop/remove), zero latency, n={args.n}:")
    print(f"  CPU per lifecycle      {cpu['cpu_ms']:8.2f} ms  (wall {cpu['wall_ms']:.2f} ms)")
    print(
        f"  of which simulator     {cpu['sim_cpu_ms']:8.2f} ms  ({cpu['sim_share']:.0%}, "
        "cProfile split)"
    )
    print(f"  library (target <= 2)  {cpu['library_cpu_ms']:8.2f} ms")
    print(
        f"  of which state store   {cpu['store_cpu_ms']:8.2f} ms  ({cpu['store_share']:.0%}: "
        "sqlite: commits, connections)"
    )
    print(f"{args.parallel} concurrent lifecycles, {args.latency * 1000:.0f} ms per HCS operation:")
    print(f"  one lifecycle T1       {par['t1_s']:8.3f} s")
    print(f"  {args.parallel} in parallel       {par['tn_s']:8.3f} s")
    print(f"  parallel efficiency    {par['efficiency']:8.2f}  (target >= 0.9)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
