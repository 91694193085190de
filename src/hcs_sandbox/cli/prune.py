"""``hcs-sandbox prune [--dry-run] [-f]``: remove what crashed or finished runs left behind.

Removes compute systems owned by hcs-sandbox that have no record, records of ephemeral
sandboxes whose compute system is gone, half-made records whose creating process died,
endpoints without a record and sandbox files without either; prints what it removed.
Live sandboxes are never touched.  ``--dry-run`` only reports.  On a terminal it asks first
unless ``-f``; when stdin is not a terminal (scripts) it proceeds.
Exit codes: 0 ok (also when there was nothing to do); 1 something could not be removed;
3 HCS unavailable; 130 interrupted.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    from hcs_sandbox.cli.common import add_common

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "prune",
        help="remove leftovers: orphaned systems, stale records, endpoints and files",
        description="Remove what crashed or finished runs left behind (never live sandboxes).",
    )
    parser.add_argument("--dry-run", action="store_true", help="only report what would be removed")
    parser.add_argument(
        "-f", "--force", action="store_true", help="do not ask for confirmation on a terminal"
    )
    add_common(parser)
    parser.set_defaults(handler=handle)
    return parser


_WHAT = {
    "systems": "compute system",
    "records": "record",
    "endpoints": "endpoint",
    "files": "file",
}


def describe(report: dict[str, Any], *, dry_run: bool) -> list[str]:
    """Human lines for a prune report dict: one per item (``removed record: web (id)``).

    Known keys get a readable noun; any other list (a newer report field) is shown by its key.
    ``failures``/``errors`` are kept apart (see :func:`_errors`).
    """
    removed = "would remove" if dry_run else "removed"
    lines: list[str] = []
    for key in sorted(report):
        value = report[key]
        if key in {"errors", "failures", "failed"} or not isinstance(value, list):
            continue
        if key == "marked_stopped":
            head = "would mark stopped" if dry_run else "marked stopped"
        else:
            head = f"{removed} {_WHAT.get(key, key.replace('_', ' '))}"
        for item in value:
            if isinstance(item, dict):
                text = " ".join(f"{k}={v}" for k, v in sorted(item.items()))
            else:
                text = str(item)
            lines.append(f"{head}: {text}")
    return lines


def _errors(report: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key in ("errors", "failures", "failed"):
        value = report.get(key)
        if isinstance(value, list):
            out.extend(str(v) for v in value)
    return out


def handle(args: argparse.Namespace) -> int:
    import sys

    from hcs_sandbox.cli.common import is_simulated, with_simulated
    from hcs_sandbox.cli.output import notice_if_simulated, print_json
    from hcs_sandbox.sandbox import maintenance

    simulated = is_simulated()
    dry_run = bool(args.dry_run)
    if not dry_run and not args.force and sys.stdin.isatty() and not args.json:
        preview = maintenance.prune(dry_run=True).to_dict()
        lines = describe(preview, dry_run=True)
        if not lines:
            print("nothing to prune")
            notice_if_simulated(simulated)
            return 0
        print("\n".join(lines))
        answer = input("remove these? [y/N] ").strip().lower()
        if answer not in {"y", "yes"}:
            print("nothing removed")
            return 0
    report = maintenance.prune(dry_run=dry_run).to_dict()
    errors = _errors(report)
    if args.json:
        print_json(with_simulated(report, simulated))
    else:
        lines = describe(report, dry_run=dry_run)
        for line in lines:
            print(line)
        if not lines:
            print("nothing to prune")
    for error in errors:
        print(f"hcs-sandbox: error: {' '.join(error.split())}", file=sys.stderr)
    notice_if_simulated(simulated)
    return 1 if errors else 0
