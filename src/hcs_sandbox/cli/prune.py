"""``hcs-sandbox prune [--dry-run] [-f]``: remove what crashed or finished runs left behind.

Removes compute systems owned by hcs-sandbox that have no record, records of ephemeral
sandboxes whose compute system is gone, half-made records whose creating process died,
endpoints without a record and sandbox files without either; prints what it removed.
Live sandboxes are never touched (a copied state directory aside: docs/cli.md): a compute
system or endpoint without a record is removed only when its id carries this state
directory's mark (sandbox/owned.py) or none, and a folder of this state directory names it;
the others are left alone and listed.  ``--dry-run`` only reports.  On a terminal it asks
first unless ``-f``; when stdin is not a terminal (scripts) it proceeds.
Exit codes: 0 ok (also when there was nothing to do); 1 something could not be removed;
3 HCS unavailable; 130 interrupted.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hcs_sandbox.sandbox.maintenance import PruneReport


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


#: The :class:`PruneReport` lists :func:`describe` shows, with what introduces each item
#: (done, and with ``--dry-run``).
_LINES = (
    ("endpoints", "removed endpoint", "would remove endpoint"),
    ("files", "removed file", "would remove file"),
    ("marked_stopped", "marked stopped", "would mark stopped"),
    ("records", "removed record", "would remove record"),
    ("systems", "removed compute system", "would remove compute system"),
)


def describe(report: PruneReport, *, dry_run: bool) -> list[str]:
    """Human lines for a prune report, one per item (``removed record: web (id)``);
    ``report.failures`` are not among them (they are error lines)."""
    lines: list[str] = []
    for field, done, would in _LINES:
        head = would if dry_run else done
        lines.extend(f"{head}: {item}" for item in getattr(report, field))
    return lines


#: Why prune leaves a compute system or endpoint of hcs-sandbox's without a record alone:
#: made in another state directory (its mark, and how to see a state directory's: which
#: one made it is not known here), carrying this one's mark with no folder here, or
#: carrying no mark (docs/cli.md, ``prune``).
_SEE_MARK = (
    "'hcs-sandbox prune --dry-run --json --state-dir DIR' shows the state_mark of an "
    "existing state directory DIR"
)
_UNMARKED = (
    "left alone (its id carries no state directory's mark and no folder here names it: made "
    "in another state directory by an older hcs-sandbox, or by hand)"
)


def _other(report: PruneReport, what: str, item: str) -> str:
    return (
        f"left alone (made in another state directory: it carries mark "
        f"{report.other_state_dir_marks.get(item, '?')}, this one's is {report.state_mark}; "
        f"{_SEE_MARK}): {what} {item}"
    )


def _no_folder(report: PruneReport, what: str, item: str) -> str:
    return (
        f"left alone (it carries this state directory's mark {report.state_mark} but no "
        "folder in its sandboxes/ names it: made in a copy of this state directory after "
        f"the copy, or its folder was deleted by hand): {what} {item}"
    )


def left_alone(report: PruneReport) -> list[str]:
    """Lines for what prune leaves alone: records made through another HCS host, compute
    systems and endpoints another state directory made (or this one's mark names with no
    folder here, or no state directory's mark names: sandbox/owned.py), and the records it
    found damaged (judged like the others; ``hcs-sandbox rm -f`` removes one that prune
    leaves)."""
    return [
        *(f"left alone (made through another HCS host): {item}" for item in report.other_host),
        *(_other(report, "compute system", i) for i in report.other_state_dir_systems),
        *(_other(report, "endpoint", i) for i in report.other_state_dir_endpoints),
        *(_no_folder(report, "compute system", i) for i in report.no_folder_systems),
        *(_no_folder(report, "endpoint", i) for i in report.no_folder_endpoints),
        *(f"{_UNMARKED}: compute system {i}" for i in report.unmarked_systems),
        *(f"{_UNMARKED}: endpoint {i}" for i in report.unmarked_endpoints),
        *(f"damaged record: {item}" for item in report.damaged),
    ]


def handle(args: argparse.Namespace) -> int:
    import sys

    from hcs_sandbox.cli.common import error_line, is_simulated, with_simulated
    from hcs_sandbox.cli.output import Progress, notice_if_simulated, print_json
    from hcs_sandbox.sandbox import maintenance

    simulated = is_simulated()
    dry_run = bool(args.dry_run)
    if not dry_run and not args.force and sys.stdin.isatty() and not args.json:
        preview = maintenance.prune(dry_run=True)
        lines = describe(preview, dry_run=True)
        if not lines:
            print("\n".join([*left_alone(preview), "nothing to prune"]))
            notice_if_simulated(simulated)
            return 0
        print("\n".join(lines))
        try:
            answer = input("remove these? [y/N] ").strip().lower()
        except EOFError:  # Ctrl+D (or the input ran out): no
            print()
            answer = ""
        if answer not in {"y", "yes"}:
            print("nothing removed")
            return 0
    # On a terminal, a file still held open is waited for with a line that says so (as rm).
    progress = Progress()
    with progress.running():
        report = maintenance.prune(dry_run=dry_run, progress=progress)
    if args.json:
        print_json(with_simulated(report.to_dict(), simulated))
    else:
        lines = describe(report, dry_run=dry_run)
        for line in [*lines, *left_alone(report)]:
            print(line)
        if not lines and not report.failures:
            print("nothing to prune")
    if not args.json:
        from hcs_sandbox.cli.output import warn

        for note in report.notes:
            warn(note)
    for failure in report.failures:
        error_line(failure)
    notice_if_simulated(simulated)
    return 1 if report.failures else 0
