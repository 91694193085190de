"""What each verb may do with a record whose fields the state database holds damaged.

The store reads a record leniently (:attr:`hcs_sandbox.sandbox.store.Record.damaged`): a
``labels``, ``files``, ``endpoint_ids`` or ``extra`` that is not JSON (or not of its kind)
reads as empty and is named; a ``spec`` that is not JSON is named too (and
:attr:`Record.spec` raises for it).  This module is the one place that decides what that
allows:

* **listed, inspected, stopped, killed, paused, resumed, waited for**: these need none of
  the damaged values (``ls`` and ``inspect`` show a damaged field as unknown, ``null``);
  ``stop`` and ``kill`` write the new state and keep a damaged extra as it is (the exit
  status is then not recorded: ``wait`` says ``unknown``);
* **removed** (``rm -f``, ``prune``): everything the record still tells -- its compute
  system (``system_id``), its folder by the folder convention (``<state>/sandboxes/<id>``:
  every file a sandbox owns is in it) when its file list is damaged, its endpoints by their
  name (``hcs-sandbox-<id>``) when its endpoint ids are damaged -- then the record itself.
  The VM access it granted to a file outside its folder (``extra.foreign_grants``: a
  ``vhdx:`` base's disk) is taken back; with a damaged extra, the spec tells that file
  (:func:`foreign_grants`); what neither tells is said once (:func:`remove_note`);
* **refused** (:func:`refuse`): every verb that starts it or works in it (``start``,
  ``exec``, ``cp``, publishing and unpublishing ports, mapping folders), before anything
  is done: they need the spec, or read or write the files, endpoint ids or extra.  (Listing
  its ports reads the spec's and, from a damaged extra, none of those published later.)
  Damaged labels alone refuse nothing: no verb but ``ls`` and ``inspect`` reads them.

``prune`` judges a damaged record by its usual rules (a damaged extra cannot name another
HCS host: it is judged as this host's, as a record older than that tag; a persistent one
left ``creating`` with a damaged extra is taken for an interrupted restart, so its disk is
kept) and lists it (:func:`describe`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hcs_sandbox import errors

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hcs_sandbox.sandbox.store import Record

__all__ = ["describe", "foreign_grants", "refuse", "remove_note"]


def describe(damaged: Mapping[str, str]) -> str:
    """``files (not JSON (...)), extra (not a JSON object)``: the damaged fields in words."""
    return ", ".join(f"{field} ({problem})" for field, problem in damaged.items())


def refuse(record: Record, doing: str) -> None:
    """Raise :class:`~hcs_sandbox.errors.StoreError` when ``record`` has a damaged field
    (spec included) and the verb ``doing`` (``start``, ``exec``, ...) may not use it (see
    the module docstring).  (``Sandbox`` asks only for a record with damaged fields other
    than the spec: a damaged spec is refused when the verb reads it, with its own words.)"""
    damaged = record.damaged
    damaged.pop("labels", None)  # (only listed and filtered on: see the module docstring)
    if not damaged:
        return
    if "spec" in damaged and len(damaged) == 1:
        _ = record.spec  # the spec's own error (its words are documented): raises
    raise errors.StoreError(
        f"cannot {doing} sandbox {record.name!r}: its record in the state database is "
        f"damaged: {describe(damaged)}",
        remedy=f"remove the sandbox: hcs-sandbox rm -f {record.id}",
    )


def foreign_grants(record: Record) -> list[str] | None:
    """The files outside the sandbox's folder its VM was granted access to, for a removal
    to take that access back: ``extra.foreign_grants``; when the extra is damaged, what the
    spec tells (only a ``vhdx:`` base has such a file, its disk: the planner grants the
    VM its scratch disk, guest state file and that parent); None when neither can tell."""
    problem = record.damaged_field("extra")
    if problem is None:
        return [str(path) for path in record.extra.get("foreign_grants") or ()]
    try:
        spec = record.spec
    except errors.StoreError:
        return None
    base = spec.get("base") if isinstance(spec, dict) else None
    if not isinstance(base, dict) or not isinstance(base.get("kind"), str):
        return None
    path = base.get("path")
    if base["kind"] != "vhdx":
        return []
    return [path] if isinstance(path, str) and path else None


def remove_note(record: Record) -> str | None:
    """The one line a removal of ``record`` adds about what it could not identify, or None
    when the record told everything (see the module docstring)."""
    if foreign_grants(record) is not None:
        return None
    return (
        f"sandbox {record.name!r}: its extra data and spec in the state database are "
        f"damaged ({describe(record.damaged)}): if it had a vhdx: base, the VM access "
        "granted to that disk was not taken back (HcsRevokeVmAccess needs the file's path)"
    )
