"""A sandbox end to end: create, run a command with its output, copy a file out, remove.

On Windows (10 1809+ / Server 2019+, as Administrator, with the Windows Sandbox feature)
this drives the real Host Compute Service.  Anywhere else it uses hcs-sandbox's built-in
HCS simulator, and says so: the same library code runs, against a simulated host.

    python examples/quickstart.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import hcs_sandbox
from hcs_sandbox import Sandbox, SandboxSpec


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="hcs-sandbox-quickstart-") as tmp:
        if sys.platform != "win32":
            # HCS exists only on Windows: ask for the simulator explicitly, in a scratch
            # state directory so that the demo leaves nothing behind.
            hcs_sandbox.use_simulator(Path(tmp, "simulator"))
            print("simulated: this host is not Windows; using the built-in HCS simulator")
        state_dir = Path(tmp, "state")
        spec = SandboxSpec(name="quickstart", memory_mb=2048, cpus=2)  # network off by default

        with Sandbox.run(spec, state_dir=state_dir, progress=lambda p: print(f"  .. {p}")) as sb:
            print(f"sandbox {sb.name} ({sb.id}) is {sb.state}")

            result = sb.exec("cmd /c echo hello from the sandbox", timeout=60)
            print(f"exec exit code {result.exit_code}: {result.stdout_text.strip()}")

            sb.exec("cmd /c echo quickstart>C:\\report.txt", timeout=60)
            out = Path(tmp, "report.txt")
            sb.copy_out("C:\\report.txt", str(out))
            print(f"copied out C:\\report.txt: {out.read_text().strip()!r}")

            info = sb.inspect()
            print(f"inspect: state={info['state']} simulated={info.get('simulated')}")
        print("removed: the sandbox, its disk and its record are gone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
