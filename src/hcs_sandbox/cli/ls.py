"""``hcs-sandbox ls`` (alias ``ps``): list sandboxes.

By default only running and paused sandboxes (like ``docker ps``); ``-a`` adds created and
stopped ones and any in a transitional or error state.  States come from the records,
checked against HCS with one enumeration (not one query per sandbox), so ``ls`` stays fast.
``-q`` prints ids only; ``--json`` a list of objects.  ``--filter`` (repeatable, all must
match): ``label=KEY``, ``label=KEY=VALUE``, ``name=TEXT`` (substring, case-insensitive),
``state=STATE``.  Exit codes: 0 ok; 2 a bad --filter; 3 HCS unavailable.
"""

from __future__ import annotations

import argparse
from typing import Any

_FILTER_KEYS = ("label", "name", "state")
_LIVE = ("created", "running", "paused")


def register(subparsers: Any) -> argparse.ArgumentParser:
    from hcs_sandbox.cli.common import add_common

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "ls",
        aliases=["ps"],
        help="list sandboxes",
        description="List running and paused sandboxes (-a: all).",
    )
    parser.add_argument(
        "-a",
        "--all",
        action="store_true",
        help="include created and stopped sandboxes (default: running and paused only)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print ids only")
    parser.add_argument(
        "-f",
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="label=KEY, label=KEY=VALUE, name=TEXT or state=STATE (repeatable; all must match)",
    )
    parser.add_argument("--no-trunc", action="store_true", help="print full ids in the table")
    add_common(parser)
    parser.set_defaults(handler=handle)
    return parser


def parse_filters(texts: list[str]) -> list[tuple[str, str, str | None]]:
    """``["label=a=b", "name=x"]`` → ``[("label", "a", "b"), ("name", "x", None)]``."""
    from hcs_sandbox.errors import SpecError

    out: list[tuple[str, str, str | None]] = []
    for text in texts:
        key, sep, rest = text.partition("=")
        key = key.strip().lower()
        if not sep or key not in _FILTER_KEYS or not rest:
            raise SpecError(
                f"invalid --filter {text!r}",
                field="filter",
                value=text,
                allowed="label=KEY, label=KEY=VALUE, name=TEXT or state=STATE",
            )
        if key == "label":
            label, has_value, value = rest.partition("=")
            out.append(("label", label, value if has_value else None))
        else:
            out.append((key, rest, None))
    return out


def matches(sandbox: Any, state: str, filters: list[tuple[str, str, str | None]]) -> bool:
    for key, value, extra in filters:
        if key == "label":
            labels = sandbox.spec.labels
            if value not in labels or (extra is not None and labels[value] != extra):
                return False
        elif key == "name":
            if value.lower() not in sandbox.name.lower():
                return False
        elif key == "state" and state.lower() != value.lower():
            return False
    return True


def ago(seconds: float) -> str:
    """``"5 seconds ago"``, ``"3 minutes ago"``, ... like docker ps."""
    seconds = max(0.0, seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    n = int(seconds)
    return "just now" if n < 1 else f"{n} second{'s' if n != 1 else ''} ago"


def _gone(sandboxes: list[Any]) -> set[str]:
    """Labels (``name (id)``) of live records whose compute system no longer exists.

    One HcsEnumerateComputeSystems for all of them (``maintenance.reconcile``) instead of a
    query per sandbox, so ``ls`` stays fast with many records.
    """
    if not any(str(sb.to_dict().get("state")) in _LIVE for sb in sandboxes):
        return set()
    from hcs_sandbox.sandbox import maintenance

    report = maintenance.reconcile()
    return set(report.gone_ephemeral) | set(report.gone_persistent)


def handle(args: argparse.Namespace) -> int:
    import time

    from hcs_sandbox.cli.common import is_simulated, with_simulated
    from hcs_sandbox.cli.output import notice_if_simulated, print_json, table
    from hcs_sandbox.sandbox.sandbox import Sandbox

    filters = parse_filters(args.filter)
    simulated = is_simulated()
    sandboxes = Sandbox.list(all=args.all)
    gone = _gone(sandboxes)
    rows: list[tuple[Any, str]] = []
    for sandbox in sandboxes:
        state = str(sandbox.to_dict().get("state") or "")
        if f"{sandbox.name} ({sandbox.id})" in gone:
            state = "stopped"  # its compute system exited since the record was written
            if not args.all:
                continue
        if matches(sandbox, state, filters):
            rows.append((sandbox, state))
    if args.quiet:
        print("\n".join(sb.id if args.no_trunc else sb.id[:12] for sb, _ in rows))
    elif args.json:
        print_json([with_simulated(sb.to_dict(), simulated) for sb, _ in rows])
    else:
        now = time.time()
        lines = []
        for sb, state in rows:
            spec = sb.spec
            ports = ", ".join(f"{p.host_port}->{p.guest_port}/{p.protocol}" for p in spec.ports)
            lines.append(
                {
                    "id": sb.id if args.no_trunc else sb.id[:12],
                    "name": sb.name,
                    "state": state,
                    "created": ago(now - sb.created_at),
                    "network": spec.network,
                    "ports": ports,
                }
            )
        columns = [
            ("id", "SANDBOX ID"),
            ("name", "NAME"),
            ("state", "STATE"),
            ("created", "CREATED"),
            ("network", "NETWORK"),
            ("ports", "PORTS"),
        ]
        print(table(lines, columns))
    for sb, _ in rows:
        sb.close()
    notice_if_simulated(simulated)
    return 0
