"""``hcs-sandbox resume NAME...``: resume one or more paused sandboxes.

Exit codes: 0 all done; 2 a name is unknown; 1 an HCS call failed (e.g. not running);
3 HCS unavailable.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    from hcs_sandbox.cli.common import add_common, names_argument

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "resume",
        help="resume one or more paused sandboxes",
        description="Resume paused sandboxes (HcsResumeComputeSystem).",
    )
    names_argument(parser, what="what to resume")
    add_common(parser)
    parser.set_defaults(handler=handle)
    return parser


def handle(args: argparse.Namespace) -> int:
    from hcs_sandbox.cli.common import run_per_sandbox, summary

    def resume(sandbox: Any) -> dict[str, Any]:
        sandbox.resume()
        return summary(sandbox)

    return run_per_sandbox(args, resume)
