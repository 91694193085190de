"""``hcs-sandbox wait NAME...``: block until sandboxes exit and print how each ended.

Prints one line per sandbox: ``0`` for a clean exit, else the HCS exit status as
``0xXXXXXXXX`` followed by the exit type.  HCS's ``SystemExitStatus`` (SchemaReference.md)
has both: ``Status``, an HRESULT, and ``ExitType`` (``NotificationType``: ``GracefulExit``,
``ForcedExit``, ``UnexpectedExit``...); a terminated system (``kill``, ``rm -f``, a ``stop``
past its timeout) has status 0 and ``ForcedExit``, printed ``0x00000000 ForcedExit``.
``unknown`` when no exit status was recorded (the system stopped while nothing watched it).
``--json`` prints a list of ``{"name", "id", "status", "exit_type", "attribution"}``
(``status``/``exit_type`` null when unknown).
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


#: Exit types that are not a clean exit even with status 0 (S_OK): the system was terminated
#: or died (NotificationType, SchemaReference.md).
UNCLEAN_EXIT_TYPES = ("ForcedExit", "UnexpectedExit")


def is_clean(status: int | None, exit_type: str | None) -> bool:
    """A clean exit: status 0, not forced nor unexpected (an ``Unknown`` exit type that HCS
    sent is clean; an exit status nobody recorded, ``None``, is not)."""
    return status == 0 and exit_type is not None and exit_type not in UNCLEAN_EXIT_TYPES


def status_text(status: int | None, exit_type: str | None) -> str:
    """``0`` for a clean exit (:func:`is_clean`), ``unknown`` when no exit status was
    recorded, else ``0xSTATUS ExitType``."""
    if is_clean(status, exit_type):
        return "0"
    if status is None:
        return "unknown"
    return f"0x{status & 0xFFFFFFFF:08X} {exit_type or 'Unknown'}"


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
