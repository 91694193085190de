"""``hcs-sandbox rm [-f] NAME...``: remove sandboxes and everything they own.

Removes the compute system, network endpoint, files (a persistent sandbox's disk too) and
record.  A running sandbox needs ``-f`` (it is killed first).  A record with damaged fields
is removed as far as it tells (hcs_sandbox.sandbox.damage); what it cannot tell is one
warning line.  Continues past failures: one
error line each.  Exit codes: 0 all removed; 2 a name is unknown (and nothing else failed);
1 a removal failed; 3 HCS unavailable.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    from hcs_sandbox.cli.common import add_common, names_argument

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "rm",
        help="remove one or more sandboxes",
        description="Remove sandboxes: compute system, endpoint, files and record.",
    )
    parser.add_argument(
        "-f", "--force", action="store_true", help="kill a running sandbox before removing it"
    )
    names_argument(parser, what="what to remove")
    add_common(parser)
    parser.set_defaults(handler=handle)
    return parser


def handle(args: argparse.Namespace) -> int:
    from hcs_sandbox.cli.common import run_per_sandbox
    from hcs_sandbox.cli.output import Progress

    # On a terminal, a file still held open by another process is waited for with a line
    # that says so ("waiting for ..., held open by another process (3 s of 10 s)"), as
    # create shows its steps; nothing when stderr is no terminal or nothing is held.
    progress = Progress()

    def remove(sandbox: Any) -> dict[str, Any]:
        name, ident = sandbox.name, sandbox.id
        notes = _damage_notes(sandbox.judged_record)
        try:
            with progress.running():
                sandbox.remove(force=args.force, progress=progress)
        except KeyboardInterrupt as exc:
            from hcs_sandbox.cli.main import note_left

            note_left(exc, left_behind(name, ident, removing=True))
            raise
        if notes:
            from hcs_sandbox.cli.output import warn

            for note in notes:
                warn(note)
        return {"name": name, "id": ident, "removed": True}

    return run_per_sandbox(args, remove)


def left_behind(name: str, ident: str, *, removing: bool = False) -> str | None:
    """What a Ctrl+C left of sandbox ``name`` (its record read again) and what to do, for
    the "interrupted" line (``cli.main.note_left``); ``removing``: a removal was cut short.
    None when the record cannot be read (a damaged one, the database busy)."""
    from hcs_sandbox.errors import HcsSandboxError, SandboxNotFoundError
    from hcs_sandbox.sandbox.sandbox import Sandbox

    try:
        left = Sandbox.get(ident)
        state, persistent = left.record.state, left.record.persistent
    except SandboxNotFoundError:
        return f"sandbox '{name}' was removed" if removing else None
    except HcsSandboxError:
        return None
    rm = f"'hcs-sandbox rm -f {name}'"
    if state == "removing":  # (docs/cli.md: "an rm cut short leaves it removing")
        return f"sandbox '{name}' is left 'removing': finish it with {rm} or 'hcs-sandbox prune'"
    if removing:
        return f"sandbox '{name}' was not removed (it is {state}): remove it with {rm}"
    if state == "stopped" and not persistent:
        return (
            f"sandbox '{name}' is left stopped: remove it with 'hcs-sandbox rm {name}' or "
            "'hcs-sandbox prune'"
        )
    if state in ("stopped", "created"):
        return (
            f"sandbox '{name}' is left {state}: start it with 'hcs-sandbox start {name}' or "
            f"remove it with 'hcs-sandbox rm {name}'"
        )
    return f"sandbox '{name}' is left {state}: remove it with {rm}"


def _damage_notes(record: Any) -> list[str]:
    """What removing a record with damaged fields cannot take back or identify, one line
    each (:func:`hcs_sandbox.sandbox.damage.remove_notes`); empty for a sound record."""
    if not record.has_damaged_fields:  # (nothing imported for a sound record)
        return []
    from hcs_sandbox.sandbox import damage

    return damage.remove_notes(record)
