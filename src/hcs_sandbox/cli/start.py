"""``hcs-sandbox start NAME...``: start created or stopped sandboxes.

A stopped persistent sandbox is re-created on its own scratch disk and started again.
Exit codes: 0 all started; 2 a name is unknown; 1 a start failed; 3 HCS unavailable.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    from hcs_sandbox.cli.common import add_common, names_argument

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "start",
        help="start one or more sandboxes",
        description="Start created or stopped sandboxes (a persistent one keeps its disk).",
    )
    names_argument(parser, what="what to start")
    add_common(parser)
    parser.set_defaults(handler=handle)
    return parser


def handle(args: argparse.Namespace) -> int:
    from hcs_sandbox.cli.common import run_per_sandbox, summary
    from hcs_sandbox.cli.output import Progress, warn

    def start(sandbox: Any) -> dict[str, Any]:
        progress = Progress()
        with progress.running():
            sandbox.start(progress=progress)  # returns once the logon command runs
        if sandbox.logon_error is not None:  # as run says it
            warn(
                f"the logon command was not started ({sandbox.logon_error}); the "
                f"sandbox runs without it (see 'hcs-sandbox logs {sandbox.name}')"
            )
        elif sandbox.logon_warning is not None:  # this process ends now
            warn(f"the logon command runs, but {sandbox.logon_warning}")
        return summary(sandbox)

    return run_per_sandbox(args, start)
