"""Instructions per sandbox lifecycle, counted by valgrind (deterministic, unlike CPU time).

On a shared machine CPU times move by ±30 % from one minute to the next; an instruction count
does not.  This runs ``create → start → stop → remove`` against the zero-latency simulator
under ``valgrind --tool=callgrind`` twice, with 0 and with ``--n`` lifecycles after the same
warm-up, and prints the difference divided by ``--n``:

- **calling thread**: user-space instructions of the thread that runs the lifecycles (the
  library and the simulator's work on that thread: the steadier figure);
- **whole process**: every thread (also the simulator's worker and exit-watcher threads, whose
  polling depends on timing: it moves by ~±0.07 M between runs).

Kernel work (system calls) is not counted.  Compare trees the same way: both from source
archives or both from installed trees (compiled ``__pycache__`` files change the count by
~60 k), ideally run at the same time.  Needs ``valgrind`` on PATH; a run takes about a
minute.  Run: ``.venv/bin/python benchmarks/bench_instructions.py [--n 30]``.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile

_CHILD = """
import os, sys
from hcs_sandbox.native.loader import reset_backend
reset_backend()
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec

def life(i):
    sandbox = Sandbox.create(SandboxSpec(name=f"count-{i}"))
    try:
        sandbox.start()
        sandbox.stop(timeout=5.0)
        sandbox.remove(force=True)
    finally:
        sandbox.close()

for i in range(3):  # warm-up: imports, the database, the plan template
    life(i)
for i in range(3, 3 + int(sys.argv[1])):
    life(i)
"""


def _summary(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no instruction total in {path}")


def _count(n: int, work: str) -> tuple[int, int]:
    """(calling thread, whole process) instructions of a run with ``n`` lifecycles."""
    env = dict(os.environ)
    env["HCS_SANDBOX_STATE_DIR"] = os.path.join(work, f"state-{n}")
    env["HCS_SANDBOX_SIMULATOR"] = os.path.join(work, f"sim-{n}")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONHASHSEED"] = "0"  # string hashes (dict layouts) move the count by ~±30 k
    out = os.path.join(work, f"cg-{n}.out")
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--separate-threads=yes",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-c",
            _CHILD,
            str(n),
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    files = sorted(glob.glob(out + "-*"))
    if not files:
        raise RuntimeError("callgrind wrote no per-thread output")
    # Thread 1 is the main thread, which runs the lifecycles.
    return _summary(files[0]), sum(_summary(f) for f in files)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="lifecycles counted")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: nothing to count", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="hcs-count-") as work:
        base_thread, base_all = _count(0, work)
        thread, whole = _count(args.n, work)
    print(f"instructions per lifecycle (create/start/stop/remove), n={args.n}:")
    print(f"  calling thread  {(thread - base_thread) / args.n / 1e6:8.3f} M")
    print(f"  whole process   {(whole - base_all) / args.n / 1e6:8.3f} M")
    return 0


if __name__ == "__main__":
    sys.exit(main())
