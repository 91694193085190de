"""What each verb may do with a record whose fields the state database holds damaged.

The store reads a record leniently (:attr:`hcs_sandbox.sandbox.store.Record.damaged`): a
``labels``, ``files``, ``endpoint_ids`` or ``extra`` that is not JSON, not of its kind or
holds a value of the wrong kind (a file that is no absolute path, an endpoint id that is no
GUID, ...) reads as empty and is named, and so is a ``system_id``, time or ``revision`` of
the wrong kind; a ``spec`` that is not JSON is named too (and :attr:`Record.spec` raises
for it).  This module is the one place that decides what that allows:

* **listed, inspected, stopped, killed, paused, resumed, waited for**: these need none of
  the damaged values (``ls`` and ``inspect`` show a damaged field as unknown, ``null``);
  ``stop`` and ``kill`` write the new state and keep a damaged extra as it is (the exit
  status is then not recorded: ``wait`` says ``unknown``).  But a damaged ``system_id``
  (no GUID: it names no compute system of hcs-sandbox's) is never opened
  (:func:`refuse_system`): a verb that asks HCS about the sandbox's compute system
  (``stop``, ``kill``, ``pause``, ``resume``, ``wait``) opens it by the id a removal
  looks for it by (:func:`system_id`: the sandbox's, which hcs-sandbox gives its
  system); when no id is usable, one the record says may have a system (``rm -f`` too)
  is refused with the remedy that works (``prune``: :data:`PRUNE_REMEDY`), and
  ``inspect`` shows the state as recorded;
* **removed** (``rm -f``, ``prune``): everything the record still tells -- its compute
  system (``system_id``), its folder by the folder convention (``<state>/sandboxes/<id>``:
  every file a sandbox owns is in it) when its file list is damaged, its endpoints by their
  name (``hcs-sandbox-<id>``) when its endpoint ids are damaged -- then the record itself.
  The VM access it granted to a file outside its folder (``extra.foreign_grants``: a
  ``vhdx:`` base's disk) is taken back; with a damaged extra, the spec tells that file
  (:func:`foreign_grants`); what neither tells is said once, with what to do
  (:func:`remove_note`).  The two conventions name a record's things only when its id is
  exactly in the store's form (:func:`conventions_apply`: a hand-edited id may be another
  sandbox's in upper case); a damaged ``system_id`` is looked for by the sandbox's id
  (:func:`system_id`); what was not looked for is said once each (:func:`remove_notes`);
* **refused** (:func:`refuse`): every verb that starts it or works in it (``start``,
  ``exec``, ``cp``, publishing and unpublishing ports, mapping folders), before anything
  is done: they need the spec, or read or write the files, endpoint ids or extra.  (Listing
  its ports reads the spec's and, from a damaged extra, none of those published later.)
  Damaged labels alone refuse nothing: no verb but ``ls`` and ``inspect`` reads them.
  An ``id`` not in the store's form (edited by hand) is damage too: its folder (the
  folder convention) may be another sandbox's (:func:`conventions_apply`).

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

    from hcs_sandbox.sandbox.store import Record, Store

__all__ = [
    "PRUNE_REMEDY",
    "conventions_apply",
    "describe",
    "foreign_grants",
    "refuse",
    "refuse_system",
    "remove_note",
    "remove_notes",
    "system_id",
]


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


def refuse_system(store: Store, record: Record, doing: str) -> str:
    """The compute system id a verb ``doing`` (``stop``, ...) opens ``record``'s system by:
    its own; when that is damaged, the one a removal looks for it by (:func:`system_id`:
    the sandbox's id, which hcs-sandbox always gives its system).  When neither is usable
    (the sandbox's id is not in the store's form, or another record names a system by it),
    a :class:`~hcs_sandbox.errors.StoreError`: one line, the damaged fields, and the
    remedy that works: ``prune`` judges such a record as one whose system is gone (none
    is named by it), terminates a compute system this state directory made and no record names
    (``rm -f`` cannot: it would fail on the endpoint still attached to the running system,
    HCN_E_ENDPOINT_ALREADY_ATTACHED, each time) and removes the record, or marks a
    persistent one stopped with its disk kept."""
    usable = system_id(store, record)  # (its own when that is sound)
    if usable is not None:
        return usable
    raise errors.StoreError(
        f"cannot {doing} sandbox {record.name!r}: its record in the state database is "
        f"damaged: {describe(record.damaged)}",
        remedy=PRUNE_REMEDY,
    )


#: The remedy of a sandbox whose compute system cannot be named by its record (see
#: :func:`refuse_system`).
PRUNE_REMEDY = (
    "its compute system cannot be named by it; run 'hcs-sandbox prune': it terminates a "
    "compute system that this state directory made and no record names, and removes the "
    "record (a "
    "persistent sandbox's is marked stopped, its disk kept: 'hcs-sandbox rm -f' then "
    "removes it)"
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


def conventions_apply(record: Record) -> bool:
    """True when the folder and endpoint-name conventions (``sandboxes/<id>``,
    ``hcs-sandbox-<id>``) name ``record``'s own things: its id is exactly in the form the
    store writes (a lowercase GUID).  A hand-edited id may be another sandbox's in upper
    case (review RV58 F4): its folder and endpoint are then never this record's to delete."""
    from hcs_sandbox.sandbox.paths import is_canonical_id

    return is_canonical_id(record.id)


def system_id(store: Store, record: Record) -> str | None:
    """The compute system id a removal of ``record`` may use: its own; when that is
    damaged, the one hcs-sandbox gives a sandbox's compute system (its sandbox's id,
    ``Store.reserve``), if that id is in the store's form and no other record names a
    system by it; else None (nothing to terminate or revoke grants for)."""
    if record.damaged_field("system_id") is None:
        return record.system_id
    if not conventions_apply(record):
        return None
    for other in store.list(all=True, kind=None):
        if other.id != record.id and str(other.system_id).lower() == record.id:
            return None
    return record.id


def remove_note(record: Record) -> str | None:
    """The one line a removal of ``record`` adds about the VM access it could not take
    back, with what the administrator can do, or None when the record told everything (see
    the module docstring)."""
    if foreign_grants(record) is not None:
        return None
    # The grant is an entry for the compute system in the file's access control list
    # (HcsGrantVmAccess.md; storage.grant_vm_access); HcsRevokeVmAccess(vmId, filePath)
    # removes it (HcsRevokeVmAccess.md).
    system = record.system_id
    if record.damaged_field("system_id") is not None:
        system = record.id if conventions_apply(record) else "<its compute system id>"
    return (
        f"sandbox {record.name!r}: its extra data and spec in the state database are "
        f"damaged ({describe(record.damaged)}): if it had a vhdx: base, the VM access "
        "granted to that disk was not taken back (HcsRevokeVmAccess needs the file's path) "
        f"(check the disk you gave as its vhdx: base: its access control list keeps an entry "
        f"for compute system {system}; take it back with HcsRevokeVmAccess('{system}', "
        "<that disk's path>), or delete the disk if it was a copy made for this sandbox)"
    )


def remove_notes(record: Record) -> list[str]:
    """Every line a removal of ``record`` adds about what it could not identify: the VM
    access it could not take back (:func:`remove_note`), and the folder and endpoints it
    did not look for by the conventions because its id is not in the store's form
    (:func:`conventions_apply`).  Empty for a record that told everything."""
    if not record.has_damaged_fields:
        return []
    notes: list[str] = []
    problem = record.damaged_field("system_id")
    if problem is not None:
        if conventions_apply(record):
            done = (
                "its compute system was looked for by the sandbox's id (the one hcs-sandbox "
                "gives it)"
            )
        else:
            done = "no compute system was terminated by it"
            if foreign_grants(record):
                done += " and the VM access granted to files outside its folder was not taken back"
        notes.append(
            f"sandbox {record.name!r}: its compute system id in the state database is "
            f"damaged ({problem}), so {done} ('hcs-sandbox prune' terminates a compute "
            "system that this state directory made and no record names)"
        )
    if record.damaged_field("extra") is not None:
        grant = remove_note(record)
        if grant is not None:
            notes.append(grant)
    unnamed = [
        what
        for field, what in (("files", "its folder"), ("endpoint_ids", "its endpoints"))
        if record.damaged_field(field) is not None
    ]
    if unnamed and not conventions_apply(record):
        notes.append(
            f"sandbox {record.name!r}: its id {record.id!r} in the state database is not in "
            f"the form hcs-sandbox writes (a lowercase GUID), so the removal did not look "
            f"for {' and '.join(unnamed)} by it (once the record is gone, 'hcs-sandbox "
            "prune' removes a folder or endpoint that no record names)"
        )
    return notes
