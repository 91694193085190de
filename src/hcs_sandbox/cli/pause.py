"""``hcs-sandbox pause NAME...``: pause one or more running sandboxes.

Exit codes: 0 all done; 2 a name is unknown; 1 an HCS call failed (e.g. not running);
3 HCS unavailable.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    from hcs_sandbox.cli.common import add_common, names_argument

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "pause",
        help="pause one or more running sandboxes",
        description="Pause running sandboxes (HcsPauseComputeSystem); 'resume' continues them.",
    )
    names_argument(parser, what="what to pause")
    add_common(parser)
    parser.set_defaults(handler=handle)
    return parser


def handle(args: argparse.Namespace) -> int:
    from hcs_sandbox.cli.common import run_per_sandbox, summary

    def pause(sandbox: Any) -> dict[str, Any]:
        sandbox.pause()
        return summary(sandbox)

    return run_per_sandbox(args, pause)
