"""``hcs-sandbox inspect NAME...``: everything known about sandboxes, as JSON.

Prints one JSON list (like ``docker inspect``) with an object per sandbox found: state, ids,
spec, paths, uptime, memory/CPU statistics from HCS.  A sandbox whose record is damaged is
shown as far as it can be read (``damaged`` names the fields that are ``null``), with one
warning line on stderr.  An unknown name gets one error line on
stderr and the exit code 2; the others are still printed.
Exit codes: 0 all found; 2 a name is unknown; 1 a query failed; 3 HCS unavailable.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    from hcs_sandbox.cli.common import add_common, names_argument

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "inspect",
        help="show everything about one or more sandboxes (JSON)",
        description="Show everything known about sandboxes as one JSON list.",
    )
    names_argument(parser, what="what to inspect")
    add_common(parser, json_help="accepted for symmetry: inspect always prints JSON")
    parser.set_defaults(handler=handle)
    return parser


def handle(args: argparse.Namespace) -> int:
    from hcs_sandbox.cli.common import each_sandbox, is_simulated, with_simulated
    from hcs_sandbox.cli.output import notice_if_simulated, print_json, warn

    simulated = is_simulated()
    found: list[dict[str, Any]] = []

    def record(_name: str, _sandbox: Any, result: Any) -> None:
        found.append(with_simulated(result, simulated))
        damaged = result.get("damaged")
        if damaged:  # shown as far as it can be read (its damaged fields: null)
            fields = ", ".join(f"{field} ({problem})" for field, problem in damaged.items())
            warn(
                f"sandbox {result['name']!r}: its record in the state database is damaged: "
                f"{fields} (remove the sandbox: hcs-sandbox rm -f {result['id']})"
            )

    code = each_sandbox(args.names, lambda sb: sb.inspect(), on_done=record)
    print_json(found)
    notice_if_simulated(simulated)
    return code
