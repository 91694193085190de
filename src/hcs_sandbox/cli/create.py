"""``hcs-sandbox create [FILE.wsb] [flags]``: create a sandbox without starting it.

Prints the new sandbox's id (``--json``: its summary object).  Same flags as ``run``.
Exit codes: 0 created; 2 bad input (flag values, .wsb, the name is in use); 1 creation failed
(everything made so far is released); 3 HCS unavailable; 130 interrupted (also released).
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    from hcs_sandbox.cli.common import add_common, add_spec_options

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "create",
        help="create a sandbox (not started) and print its id",
        description="Create a sandbox from a .wsb file and/or flags, without starting it.",
    )
    add_spec_options(parser)
    add_common(parser)
    parser.set_defaults(handler=handle)
    return parser


def handle(args: argparse.Namespace) -> int:
    from hcs_sandbox.cli.common import print_sandbox_warnings, spec_from_args, with_simulated
    from hcs_sandbox.cli.output import Progress, notice_if_simulated, print_json
    from hcs_sandbox.sandbox.sandbox import Sandbox

    warned: set[str] = set()
    spec = spec_from_args(args, check_paths=True, warned=warned)
    progress = Progress()
    with progress.running():
        sandbox = Sandbox.create(spec, progress=progress)
    try:
        # Every setting that loosens isolation, said when the sandbox is made (the .wsb's
        # own warnings were printed above; --json too: its object has no warnings).
        print_sandbox_warnings(sandbox, warned)
        if args.json:
            print_json(with_simulated(sandbox.to_dict(), sandbox.simulated))
        else:
            print(sandbox.id, flush=True)
        notice_if_simulated(sandbox.simulated)
    finally:
        sandbox.close()
    return 0
