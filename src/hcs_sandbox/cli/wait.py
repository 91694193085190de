"""``hcs-sandbox wait NAME...``: block until sandboxes exit and print how each ended.

Prints one line per sandbox: ``0`` for a clean exit, else the HCS exit status as
``0xXXXXXXXX`` followed by the exit type (``ForcedExit``, ``UnexpectedExit``...).
``--json`` prints a list of ``{"name", "id", "status", "exit_type", "attribution"}``.
Exit codes: 0 all waited; 2 a name is unknown; 124 ``--timeout`` expired; 1 other failures;
3 HCS unavailable.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    from hcs_sandbox.cli.common import add_common, names_argument, seconds

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "wait",
        help="wait for sandboxes to exit and print their exit status",
        description="Block until each sandbox exits; print its exit status.",
    )
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="give up after this many seconds per sandbox (exit code 124)",
    )
    names_argument(parser, what="what to wait for")
    add_common(parser)
    parser.set_defaults(handler=handle)
    return parser


def status_text(status: int, exit_type: str) -> str:
    return "0" if status == 0 else f"0x{status & 0xFFFFFFFF:08X} {exit_type}"


def handle(args: argparse.Namespace) -> int:
    from hcs_sandbox.cli.common import each_sandbox, is_simulated, with_simulated
    from hcs_sandbox.cli.output import notice_if_simulated, print_json

    simulated = is_simulated()
    results: list[dict[str, Any]] = []

    def wait(sandbox: Any) -> dict[str, Any]:
        info = sandbox.wait(timeout=args.timeout)
        out: dict[str, Any] = {"name": sandbox.name, "id": sandbox.id}
        out.update(info.to_dict())
        return out

    def record(_name: str, _sandbox: Any, result: Any) -> None:
        results.append(result)
        if not args.json:
            print(status_text(result["status"], result["exit_type"]), flush=True)

    code = each_sandbox(args.names, wait, on_done=record)
    if args.json:
        print_json([with_simulated(r, simulated) for r in results])
    notice_if_simulated(simulated)
    return code
