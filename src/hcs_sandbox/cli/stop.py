"""``hcs-sandbox stop [-t SECONDS] NAME...``: shut sandboxes down gracefully.

Each guest gets ``-t`` seconds (default 30) to shut down, then it is terminated.  A sandbox
that is not running or paused is left as it is (a ``created`` one stays ``created`` and can
start later, as ``docker stop`` leaves a created container).
Exit codes: 0 all stopped; 2 a name is unknown or a bad -t; 1 a stop failed; 3 HCS unavailable.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    from hcs_sandbox.cli.common import add_common, names_argument, seconds_or_zero

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "stop",
        help="stop one or more sandboxes (graceful, then terminate)",
        description="Shut sandboxes down gracefully; terminate any still running after -t seconds.",
    )
    parser.add_argument(
        "-t",
        "--time",
        type=seconds_or_zero,
        default=30.0,
        metavar="SECONDS",
        help="seconds to wait for a graceful shutdown before terminating (default 30)",
    )
    names_argument(parser, what="what to stop")
    add_common(parser)
    parser.set_defaults(handler=handle)
    return parser


def handle(args: argparse.Namespace) -> int:
    from hcs_sandbox.cli.common import run_per_sandbox, summary

    def stop(sandbox: Any) -> dict[str, Any]:
        sandbox.stop(timeout=args.time)
        return summary(sandbox)

    return run_per_sandbox(args, stop)
