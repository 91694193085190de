"""Sandbox specs written as the docs write them, for type checkers: ``scripts/test`` runs
``mypy --strict`` on this folder, so the documented calls type-check as they run (a list of
ports or mapped folders, a dict environment: QA agent F5).  It runs too, on any OS: it only
builds specs and prints what each loosens.

    python examples/typed_spec.py
"""

from __future__ import annotations

import sys
import tempfile

from hcs_sandbox import MappedFolder, PortMapping, SandboxSpec


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="hcs-sandbox-typed-") as folder:
        specs = [
            # docs/networking.md
            SandboxSpec(network="nat", ports=[PortMapping(8080, 80)]),
            SandboxSpec(
                name="typed",
                mapped_folders=[MappedFolder(folder, "C:\\data", read_only=False)],
                environment={"MODE": "test"},
                labels={"team": "docs"},
            ),
        ]
        for spec in specs:
            ports: tuple[PortMapping, ...] = spec.ports  # stored as a tuple: hashable
            print(hash(spec) == hash(spec.replace()), len(ports), spec.loosened_isolation())
    return 0


if __name__ == "__main__":
    sys.exit(main())
