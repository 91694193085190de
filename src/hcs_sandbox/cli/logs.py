"""``hcs-sandbox logs [-f] NAME``: print a sandbox's log.

The log is the sandbox's lifecycle (created, started, mapped, stopped ...) followed by the
output of its logon command.  ``-f`` keeps printing new lines until the sandbox stops
(or Ctrl+C).  Exit codes: 0; 2 no such sandbox; 1 the log cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    from hcs_sandbox.cli.main import add_global_options

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "logs",
        help="print a sandbox's log and its logon command's output",
        description="Print a sandbox's lifecycle log and the output of its logon command.",
    )
    parser.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new output until it stops"
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=0.5,
        help=argparse.SUPPRESS,  # polling interval for --follow (tests)
    )
    parser.add_argument("name", metavar="NAME", help="the sandbox (name or id)")
    add_global_options(parser, suppress=True)
    parser.set_defaults(handler=handle)
    return parser


def handle(args: argparse.Namespace) -> int:
    import time

    from hcs_sandbox.cli.output import notice_if_simulated
    from hcs_sandbox.sandbox.sandbox import Sandbox
    from hcs_sandbox.sandbox.store import LIVE_STATES

    sandbox = Sandbox.get(args.name)
    notice_if_simulated(sandbox.simulated)
    try:
        shown = sandbox.logs()
        sys.stdout.write(shown)
        sys.stdout.flush()
        if not args.follow:
            return 0
        try:
            while True:
                state = sandbox.state
                running = state in LIVE_STATES or state == "creating"
                time.sleep(max(0.05, args.interval))
                current = sandbox.logs()
                # A rewritten log (not an extension of what was shown) is printed again.
                new = current[len(shown) :] if current.startswith(shown) else current
                if new:
                    sys.stdout.write(new)
                    sys.stdout.flush()
                shown = current
                if not running:
                    return 0
        except KeyboardInterrupt:
            return 0
    finally:
        sandbox.close()
