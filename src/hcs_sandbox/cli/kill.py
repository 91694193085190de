"""``hcs-sandbox kill NAME...``: terminate one or more sandboxes at once (no guest shutdown).

A sandbox that is not running or paused is left as it is (a ``created`` one stays
``created`` and can start later) and still counts as done.
Exit codes: 0 all done; 2 a name is unknown; 1 an HCS call failed; 3 HCS unavailable.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    from hcs_sandbox.cli.common import add_common, names_argument

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "kill",
        help="terminate one or more sandboxes at once (no guest shutdown)",
        description="Terminate sandboxes at once, without a guest shutdown "
        "(HcsTerminateComputeSystem).",
    )
    names_argument(parser, what="what to kill")
    add_common(parser)
    parser.set_defaults(handler=handle)
    return parser


def handle(args: argparse.Namespace) -> int:
    from hcs_sandbox.cli.common import run_per_sandbox, summary

    def kill(sandbox: Any) -> dict[str, Any]:
        sandbox.kill()
        return summary(sandbox)

    return run_per_sandbox(args, kill)
