"""Instructions per verb of a sandbox lifecycle (create, start, stop, remove, close), the
library's and the simulator's, counted by valgrind (deterministic, unlike CPU time).

``bench_instructions.py`` gives one figure per lifecycle; this one splits it per verb.  It
runs ``--n`` lifecycles against the zero-latency simulator under ``valgrind --tool=callgrind
--separate-threads=yes`` with a dump before each call of a marker function (``os.getppid``,
which the library and the simulator never call) between verbs, then reads each dump of the
calling thread with ``callgrind_annotate --inclusive=yes``: the thread's instructions in
that verb, and the part spent inside the simulator's C entry points (ctypes'
``closure_fcn``, through which every simulated DLL function is called).  "library" = the
thread minus the simulator.  Kernel work (system calls) is not counted; the simulator's own
threads are not in these figures.

This is the tool the docs call ``segs.sh`` (docs/performance.md, sessions 12 and 13).
Compare trees the same way (both source archives without ``.pyc``, say, through
``PYTHONPATH``), ideally one after the other.  Needs ``valgrind`` and ``callgrind_annotate``
on PATH; a run of 20 lifecycles takes about a minute.
Run: ``.venv/bin/python benchmarks/bench_verb_instructions.py [--n 20]``.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

VERBS = ("create", "start", "stop", "remove", "close")

_CHILD = """
import os, sys
from hcs_sandbox.native.loader import reset_backend
reset_backend()
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec

mark = os.getppid  # callgrind dumps before each call (--dump-before=getppid)

def life(i, m=lambda: None):
    m(); sandbox = Sandbox.create(SandboxSpec(name=f"verb-{i}"))
    m(); sandbox.start()
    m(); sandbox.stop(timeout=5.0)
    m(); sandbox.remove(force=True)
    m(); sandbox.close()

for i in range(3):  # warm up: imports, the database, the plan template
    life(i)
for i in range(3, 3 + int(sys.argv[1])):
    life(i, mark)
mark()
"""


def _counts(path: str) -> tuple[int, int]:
    """(the thread's instructions, those inside the simulator's entry points) of a dump."""
    out = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    total = simulator = 0
    for line in out.splitlines():
        if "PROGRAM TOTALS" in line:
            total = int(line.split()[0].replace(",", ""))
        elif "callbacks.c:closure_fcn [" in line:
            simulator = int(line.split()[0].replace(",", ""))
    return total, simulator


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="lifecycles counted")
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_annotate"):
        if shutil.which(tool) is None:
            print(f"{tool} is not on PATH: install valgrind", file=sys.stderr)
            return 1
    with tempfile.TemporaryDirectory(prefix="hcs-verbs-") as root:
        env = dict(os.environ)
        env.update(
            HCS_SANDBOX_STATE_DIR=os.path.join(root, "state"),
            HCS_SANDBOX_SIMULATOR=os.path.join(root, "sim"),
            PYTHONHASHSEED="0",
        )
        prefix = os.path.join(root, "cg")
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--separate-threads=yes",
                "--dump-before=getppid",
                f"--callgrind-out-file={prefix}",
                sys.executable,
                "-c",
                _CHILD,
                str(args.n),
            ],
            env=env,
            cwd=root,
            check=True,
            capture_output=True,
        )
        # The calling thread's dumps: <prefix>.<k>-01; dump k >= 2 covers the stretch from
        # marker k-1 to marker k (marker 1 comes before the first counted create).
        dumps = sorted(
            (int(match.group(1)), path)
            for path in glob.glob(prefix + ".*-01")
            if (match := re.search(r"\.(\d+)-01$", path))
        )
        per_verb: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
        for k, path in dumps:
            if k < 2:
                continue
            total, simulator = _counts(path)
            entry = per_verb[VERBS[(k - 2) % len(VERBS)]]
            entry[0] += total
            entry[1] += simulator
    n = args.n
    print(
        f"k instructions per verb, calling thread, {n} lifecycles "
        f"(Python {sys.version.split()[0]}):"
    )
    all_thread = all_sim = 0
    for verb in VERBS:
        thread, simulator = per_verb[verb]
        all_thread += thread
        all_sim += simulator
        print(
            f"  {verb:7s} thread {thread / n / 1e3:8.1f} k  simulator {simulator / n / 1e3:8.1f} k"
            f"  library {(thread - simulator) / n / 1e3:8.1f} k"
        )
    print(
        f"  {'total':7s} thread {all_thread / n / 1e3:8.1f} k  simulator {all_sim / n / 1e3:8.1f} k"
        f"  library {(all_thread - all_sim) / n / 1e3:8.1f} k"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
