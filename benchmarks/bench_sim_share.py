"""How much of the parallel-efficiency figure the simulator's own checks cost: an experiment.

``bench_lifecycle.py``'s efficiency figure (50 lifecycles in 50 threads, 200 ms per HCS
operation) pays for the simulator's Python work under the same GIL as the library's.  This
benchmark measures what two parts of that work cost the figure by making them free, in a
child process per measurement:

- ``as-is``: the simulator as the tests use it;
- ``no-grants``: ``HcsGrantVmAccess`` records nothing and every path counts as granted (the
  grant bookkeeping: a ``stat``, a locked read-modify-write of a grants file, and its read
  when a compute system is created);
- ``no-grants-no-validation``: as ``no-grants``, and compute-system documents are not
  checked against the HCS schema either.

The two stubbed modes make the simulator accept what it must refuse: they exist only here,
to size the simulator's share of the figure; the tests never use them.  Modes alternate
(one child each, ``--rounds`` times), so that the machine's drift reaches every mode alike;
printed: each mode's efficiencies and their median.

Run: ``.venv/bin/python benchmarks/bench_sim_share.py [--rounds 8]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

MODES = ("as-is", "no-grants", "no-grants-no-validation")


def child(mode: str, threads: int, latency: float) -> None:
    """One measurement in this process: print the efficiency."""
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_lifecycle

    with tempfile.TemporaryDirectory(prefix="hcs-simshare-") as root:
        bench_lifecycle._setup(Path(root))
        from hcs_sandbox.sim import core, state, validate

        if mode != "as-is":

            def no_grant(*_args: object, **_kwargs: object) -> None:
                return None

            def all_granted(_self: object, _system_id: str) -> list[str]:
                return ["/"]

            setattr(state.StateStore, "grant", no_grant)  # noqa: B010 (a deliberate stub)
            setattr(core.Simulator, "_granted", all_granted)  # noqa: B010
        if mode == "no-grants-no-validation":

            def no_validation(*_args: object, **_kwargs: object) -> None:
                return None

            setattr(validate, "validate_hcs", no_validation)  # noqa: B010
        for i in range(3):  # warm up: imports, the database, the plan template
            bench_lifecycle._lifecycle(i, "warm")
        figures = bench_lifecycle.bench_parallel(threads, latency)
    print(f"{figures['efficiency']:.4f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="measurements per mode")
    parser.add_argument("--threads", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per operation")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.threads, args.latency)
        return 0
    results: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(args.rounds):
        for mode in MODES:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    mode,
                    "--threads",
                    str(args.threads),
                    "--latency",
                    str(args.latency),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            results[mode].append(float(out.split()[-1]))
    print(
        f"{args.threads} lifecycles, {args.latency * 1000:.0f} ms per HCS operation, "
        f"{args.rounds} alternated rounds:"
    )
    for mode in MODES:
        figures = results[mode]
        print(
            f"  {mode:24s} median {statistics.median(figures):.3f}  ("
            + " ".join(f"{f:.2f}" for f in figures)
            + ")"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
