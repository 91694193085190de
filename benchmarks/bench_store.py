"""Benchmark of the state store with 1,000 records (target: ``hcs-sandbox ls`` <= 200 ms).

Run: ``.venv/bin/python benchmarks/bench_store.py [--records N]``.  Prints the time to create
the records, to import the store module, to open the store, to list() and to get() one, and
an end-to-end run in a fresh interpreter (import + open + list + JSON of every record, what
``hcs-sandbox ls --json`` does minus argparse).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hcs_sandbox.sandbox.store import Store, open_store

SPEC = {
    "name": None,
    "memory_mb": 4096,
    "cpu_count": 2,
    "networking": True,
    "vgpu": False,
    "mapped_folders": [
        {"host_path": "C:\\Users\\me\\src", "guest_path": "C:\\src", "read_only": True},
        {"host_path": "C:\\Users\\me\\out", "guest_path": "C:\\out", "read_only": False},
    ],
    "logon_command": "cmd /c echo hello",
    "clipboard": False,
    "labels": {"team": "build", "job": "1234"},
}

END_TO_END = r"""
import json, sys, time
t0 = time.perf_counter()
from hcs_sandbox.sandbox.store import open_store
with open_store(sys.argv[1]) as s:
    text = json.dumps([r.to_dict() for r in s.list()])
print(f"{(time.perf_counter() - t0) * 1000:.1f} {len(text)}")
"""


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def _timeit(fn: object, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        state = Path(tmp) / "state"
        start = time.perf_counter()
        with open_store(state) as store:
            for i in range(args.records):
                rec = store.reserve(None, None, SPEC, labels={"n": str(i % 10)})
                store.add_file(rec.id, f"C:\\ProgramData\\hcs-sandbox\\sandboxes\\{rec.id}\\a.vhdx")
                store.update(rec.id, state="running", expect_state="creating")
        created = time.perf_counter() - start
        print(f"create {args.records} records (3 transactions each): {_ms(created)}")

        env = dict(os.environ, PYTHONPYCACHEPREFIX=str(Path(tmp) / "pycache"))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for _ in range(2):  # the first run writes the byte-code cache
            import_time = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", "import hcs_sandbox.sandbox.store"],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            ).stderr.splitlines()[-1]
        print(
            f"import hcs_sandbox.sandbox.store (cumulative us): {import_time.split('|')[1].strip()}"
        )

        db = state / "state.db"
        print(f"open Store:                {_ms(_timeit(lambda: Store(db).close()))}")
        with Store(db) as store:
            print(f"list() of {args.records}:           {_ms(_timeit(store.list))}")
            print(
                f"list(labels=n=3):          {_ms(_timeit(lambda: store.list(labels={'n': '3'})))}"
            )
            name = store.list()[args.records // 2].name
            print(f"get(name):                 {_ms(_timeit(lambda: store.get(name)))}")
            rid = store.get(name).id
            print(f"get(id prefix):            {_ms(_timeit(lambda: store.get(rid[:8])))}")

        runs = []
        inner = []
        for attempt in range(6):
            start = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", END_TO_END, str(state)],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            ).stdout.split()
            if attempt == 0:
                continue  # warm-up: writes the byte-code cache
            runs.append(time.perf_counter() - start)
            inner.append(float(out[0]) / 1000)
        print(
            f"end to end (new interpreter, ls --json): {_ms(statistics.median(runs))} "
            f"(inside the process: {_ms(statistics.median(inner))}; target <= 200 ms)"
        )


if __name__ == "__main__":
    main()
