"""Benchmarks of the binding path (hcs layer → native → simulator).

Run: ``python benchmarks/bench_binding.py [--calls N] [--threads N] [--latency S]``

1. Per-call overhead against the zero-latency simulator: microseconds per
   ``HcsGetComputeSystemProperties`` round trip (create operation, call, wait, read+free the
   result, close), measured both through ``ComputeSystem.properties()`` and as the bare
   ctypes sequence, so the hcs layer's own cost shows separately.
2. Concurrency: N threads each create, start and terminate (and wait for the exit event of)
   their own compute system with ``latency`` seconds of simulated latency per asynchronous
   operation.  Parallel efficiency = ideal time / measured time, where the ideal time is one
   thread's sequence of latencies (3 × latency) — what perfect overlap would give.

Everything runs against the simulator in a temporary state directory; nothing touches a
real HCS.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from hcs_sandbox.hcs.system import ComputeSystem
from hcs_sandbox.native import api
from hcs_sandbox.native.loader import reset_backend, use_simulator
from hcs_sandbox.native.strings import take_hcs_string
from hcs_sandbox.native.types import HCS_OPERATION_COMPLETION

DOCUMENT = {
    "SchemaVersion": {"Major": 2, "Minor": 1},
    "Owner": "bench",
    "ShouldTerminateOnLastHandleClosed": True,
    "VirtualMachine": {
        "Chipset": {"Uefi": {}},
        "ComputeTopology": {"Memory": {"SizeInMB": 1024}, "Processor": {"Count": 2}},
    },
}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def bench_overhead(calls: int) -> tuple[float, float]:
    system = ComputeSystem.create(f"bench-{uuid.uuid4()}", DOCUMENT)
    try:
        system.start()
        for _ in range(50):  # warm-up: build the cached ctypes functions
            system.properties()
        samples = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(calls // 5):
                system.properties()
            samples.append((time.perf_counter() - t0) / (calls // 5))
        layer_us = min(samples) * 1e6  # best of 5: least disturbed by other load

        cc = api.computecore
        create, call, wait, close = (
            cc.HcsCreateOperation,
            cc.HcsGetComputeSystemProperties,
            cc.HcsWaitForOperationResult,
            cc.HcsCloseOperation,
        )
        handle = system.handle
        null_cb = HCS_OPERATION_COMPLETION()
        raw = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(calls // 5):
                op = create(None, null_cb)
                call(handle, op, None)
                doc = ctypes.c_void_p(None)
                wait(op, 10_000, ctypes.byref(doc))
                take_hcs_string(doc)
                close(op)
            raw.append((time.perf_counter() - t0) / (calls // 5))
        raw_us = min(raw) * 1e6
        system.terminate_and_close(timeout=30)
        return layer_us, raw_us
    finally:
        system.close()


def bench_concurrency(threads: int, latency: float) -> tuple[float, float]:
    from hcs_sandbox.sim import get_simulator

    sim = get_simulator()
    sim.set_latency("*", latency)
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads + 1)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            system = ComputeSystem.create(f"bench-par-{i}-{uuid.uuid4()}", DOCUMENT, timeout=60)
            try:
                system.start(timeout=60)
                system.terminate(timeout=60)
                system.wait(timeout=60)
            finally:
                system.close()
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in pool:
        t.join()
    measured = time.perf_counter() - t0
    sim.set_latency("*", 0.0)
    if errors:
        raise RuntimeError(f"{len(errors)} workers failed; first: {errors[0]!r}")
    ideal = 3 * latency  # create, start, terminate: one thread's sequence, perfectly overlapped
    return measured, (ideal / measured) if ideal else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hcs-bench-") as state:
        use_simulator(state)
        try:
            machine = f"{os.cpu_count()} CPUs ({cpu_model()})"
            print(f"machine: {machine}, Python {platform.python_version()}")
            layer_us, raw_us = bench_overhead(args.calls)
            print(
                f"HcsGetComputeSystemProperties round trip, zero latency: "
                f"{layer_us:.1f} µs via ComputeSystem.properties(), {raw_us:.1f} µs bare ctypes "
                f"(hcs layer adds {layer_us - raw_us:.1f} µs)"
            )
            baseline, _ = bench_concurrency(args.threads, 0.0)
            measured, efficiency = bench_concurrency(args.threads, args.latency)
            print(
                f"{args.threads} threads × create/start/terminate, {args.latency * 1000:.0f} ms "
                f"latency: {measured:.3f} s (ideal {3 * args.latency:.3f} s), parallel "
                f"efficiency {efficiency:.0%}"
            )
            print(
                f"  same workload at zero latency: {baseline:.3f} s (the binding's and the "
                f"simulator's CPU per system, serialised by the GIL: the floor under any latency)"
            )
        finally:
            reset_backend()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
