"""Reconcile the store with HCS and the disk, and prune what is left over.

Three sources can disagree after a crash, a reboot or a killed process:

* the **records** in the state store;
* the **compute systems** HCS knows (``HcsEnumerateComputeSystems`` with
  ``{"Owners": ["hcs-sandbox"]}``: SystemQuery, SchemaReference.md) and the HCN
  **endpoints** named ``hcs-sandbox-*``;
* the **folders** under ``<state>/sandboxes``.

:func:`reconcile` only looks and reports. :func:`prune` removes:

1. compute systems owned by hcs-sandbox without a record, made by this state directory
   (terminated);
2. records of **ephemeral** sandboxes whose compute system is gone (their files and
   endpoints too);
3. half-made records — state ``creating``/``removing``/``error`` — whose owner process is
   dead (write-ahead lists say exactly what to release);
4. endpoints without a record, made by this state directory;
5. sandbox folders without a record.

Every state directory on a host sees the same compute systems (Owner ``hcs-sandbox``) and
the same ``hcs-sandbox-*`` endpoints; what says that this store made one without a record
here (an endpoint by the sandbox id in its name) is BOTH of these (review RV-scope2):

- its id carries this store's mark (:attr:`Store.mark`, sandbox/owned.py) or no mark at
  all (an hcs-sandbox older than the mark made it);
- and a real directory named by its id is in this state directory's ``sandboxes/`` (lstat:
  a directory, not a link, a junction or a file), or a record here is named by its id (in
  another spelling, its compute system id damaged: sandbox/damage.py).  A sandbox's
  folder is made before its endpoint and compute system, and a removal deletes it after
  terminating its system; a copy of this state directory shares its mark but not the
  folders of what was made in the other copy after the copy.  (Not covered: a failed
  create whose rollback could not terminate its system deletes the folder and the record
  all the same; that system is listed in ``no_folder_systems``.)

Then it is an orphan.  Everything else is left alone and listed: one whose id carries
another store's mark is that store's, maybe a live sandbox (``other_state_dir_*``, also
when a folder here names it: a ``sandboxes/`` shared by two state directories through a
link); one with this store's mark and no folder here (``no_folder_*``: made in a copy of
this state directory after the copy, or its folder deleted by hand); one with no mark and
no folder here (``unmarked_*``: made in another state directory by an older hcs-sandbox,
or by hand).  A folder whose name is the id of a system or endpoint left alone is never an
orphan file.  (QA analyst F1: a prune in a new, empty or mistyped state directory
terminated every other state directory's sandboxes.)

Persistent sandboxes whose system is gone are only marked ``stopped`` (their disk is
kept). Records being made by a live process are left alone, and so are records made
through another HCS host (Windows, or another simulator directory: ``other_host``), whose
systems this process cannot see.

Snapshots are taken HCS/disk first, records second: a resource that exists when HCS/disk
is read had its record reserved before (records are always written ahead), so a sandbox
being created concurrently is never mistaken for an orphan.  The records are also read once
BEFORE HCS: a record judged "system gone" must be unchanged (same revision) across the
whole scan, so a create or restart that finished during the scan (its system made after
HCS was read, its record ``created``/``running`` when the records are read again) is not
taken for gone; prune's compare-and-set then requires that same revision.

A persistent sandbox whose restart was interrupted (the starting process died: its record
is ``creating`` with ``extra.restarting``) is not half-made: its disk holds the user's data.
Prune terminates the system that restart may have made and marks it ``stopped`` again.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hcs_sandbox import errors
from hcs_sandbox.sandbox.store import LIVE_STATES

#: The record's ``extra`` key a persistent sandbox's restart sets while it re-creates the
#: compute system (``Sandbox._restart_persistent``), cleared when it ends either way.
RESTARTING_KEY = "restarting"

if TYPE_CHECKING:
    from collections.abc import Callable

    from hcs_sandbox.sandbox.store import Record, Store

__all__ = ["PruneReport", "ReconcileReport", "prune", "reconcile"]

_log = logging.getLogger("hcs_sandbox.sandbox")

_HALF_MADE = ("creating", "removing", "error")


@dataclasses.dataclass
class ReconcileReport:
    """What :func:`reconcile` found. Lists hold ids (records: ``name (id)``)."""

    records: int = 0
    systems: int = 0
    orphan_systems: list[str] = dataclasses.field(default_factory=list)
    gone_ephemeral: list[str] = dataclasses.field(default_factory=list)
    gone_persistent: list[str] = dataclasses.field(default_factory=list)
    half_made: list[str] = dataclasses.field(default_factory=list)
    in_progress: list[str] = dataclasses.field(default_factory=list)
    other_host: list[str] = dataclasses.field(default_factory=list)
    orphan_endpoints: list[str] = dataclasses.field(default_factory=list)
    orphan_files: list[str] = dataclasses.field(default_factory=list)
    #: Compute systems and endpoints (ids) of hcs-sandbox's without a record here whose id
    #: carries another state directory's mark: left alone (prune with that state directory
    #: removes them if they are its orphans).  Not counted in :attr:`clean`.
    other_state_dir_systems: list[str] = dataclasses.field(default_factory=list)
    other_state_dir_endpoints: list[str] = dataclasses.field(default_factory=list)
    #: The same whose id carries this store's mark but names no folder in its
    #: ``sandboxes/`` (made in a copy of this state directory after the copy, or whose
    #: folder was deleted by hand): left alone, as they may be a copy's live sandboxes.
    no_folder_systems: list[str] = dataclasses.field(default_factory=list)
    no_folder_endpoints: list[str] = dataclasses.field(default_factory=list)
    #: The same whose id carries no state directory's mark (made by an hcs-sandbox older
    #: than the mark, or by hand) and names no folder here: left alone, as whose they are
    #: cannot be told.
    unmarked_systems: list[str] = dataclasses.field(default_factory=list)
    unmarked_endpoints: list[str] = dataclasses.field(default_factory=list)
    #: The mark each of ``other_state_dir_*`` carries (its id's, an endpoint's by its name):
    #: ``{id: mark}``.
    other_state_dir_marks: dict[str, str] = dataclasses.field(default_factory=dict)
    #: This store's mark (:attr:`Store.mark`): what the ids of the compute systems and
    #: endpoints it made end in, to compare with those of ``other_state_dir_marks``.
    state_mark: str = ""
    #: Persistent sandboxes whose restart was interrupted: marked ``stopped`` by prune.
    restart_interrupted: list[str] = dataclasses.field(default_factory=list)
    #: Records with damaged fields (``name (id): field (problem), ...``): judged by the
    #: rules above all the same (sandbox/damage.py), and listed.
    damaged: list[str] = dataclasses.field(default_factory=list)
    # internal: the records behind gone_*/half_made (not in to_dict)
    _to_remove: list[Record] = dataclasses.field(default_factory=list, repr=False)
    _to_stop: list[Record] = dataclasses.field(default_factory=list, repr=False)

    @property
    def clean(self) -> bool:
        """True when nothing needs pruning."""
        return not (
            self.orphan_systems
            or self.gone_ephemeral
            or self.gone_persistent
            or self.half_made
            or self.restart_interrupted
            or self.orphan_endpoints
            or self.orphan_files
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "systems": self.systems,
            "orphan_systems": list(self.orphan_systems),
            "gone_ephemeral": list(self.gone_ephemeral),
            "gone_persistent": list(self.gone_persistent),
            "half_made": list(self.half_made),
            "restart_interrupted": list(self.restart_interrupted),
            "in_progress": list(self.in_progress),
            "other_host": list(self.other_host),
            "orphan_endpoints": list(self.orphan_endpoints),
            "orphan_files": list(self.orphan_files),
            "other_state_dir_systems": list(self.other_state_dir_systems),
            "other_state_dir_endpoints": list(self.other_state_dir_endpoints),
            "no_folder_systems": list(self.no_folder_systems),
            "no_folder_endpoints": list(self.no_folder_endpoints),
            "unmarked_systems": list(self.unmarked_systems),
            "unmarked_endpoints": list(self.unmarked_endpoints),
            "other_state_dir_marks": dict(self.other_state_dir_marks),
            "state_mark": self.state_mark,
            "damaged": list(self.damaged),
            "clean": self.clean,
        }


@dataclasses.dataclass
class PruneReport:
    """What :func:`prune` removed (or, with ``dry_run``, would remove)."""

    dry_run: bool = False
    systems: list[str] = dataclasses.field(default_factory=list)
    records: list[str] = dataclasses.field(default_factory=list)
    marked_stopped: list[str] = dataclasses.field(default_factory=list)
    endpoints: list[str] = dataclasses.field(default_factory=list)
    files: list[str] = dataclasses.field(default_factory=list)
    failures: list[str] = dataclasses.field(default_factory=list)
    #: Records made through another HCS host: left alone (not counted).
    other_host: list[str] = dataclasses.field(default_factory=list)
    #: Compute systems and endpoints another state directory made, those of this store's
    #: mark that no folder here names, and those no state directory's mark names: left
    #: alone (not counted), as :attr:`ReconcileReport.other_state_dir_systems` and the
    #: others.
    other_state_dir_systems: list[str] = dataclasses.field(default_factory=list)
    other_state_dir_endpoints: list[str] = dataclasses.field(default_factory=list)
    no_folder_systems: list[str] = dataclasses.field(default_factory=list)
    no_folder_endpoints: list[str] = dataclasses.field(default_factory=list)
    unmarked_systems: list[str] = dataclasses.field(default_factory=list)
    unmarked_endpoints: list[str] = dataclasses.field(default_factory=list)
    #: As :attr:`ReconcileReport.other_state_dir_marks` and
    #: :attr:`ReconcileReport.state_mark`.
    other_state_dir_marks: dict[str, str] = dataclasses.field(default_factory=dict)
    state_mark: str = ""
    #: Records with damaged fields, as :attr:`ReconcileReport.damaged` (judged and, when
    #: left over, removed like the others: also listed in ``records`` then).
    damaged: list[str] = dataclasses.field(default_factory=list)
    #: What the removal of a damaged record in ``records`` could not take back or
    #: identify, one line each (``hcs_sandbox.sandbox.damage.remove_notes``: the VM access
    #: to a ``vhdx:`` base's disk, with what to do).
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.systems) + len(self.records) + len(self.endpoints) + len(self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "systems": list(self.systems),
            "records": list(self.records),
            "marked_stopped": list(self.marked_stopped),
            "endpoints": list(self.endpoints),
            "files": list(self.files),
            "failures": list(self.failures),
            "other_host": list(self.other_host),
            "other_state_dir_systems": list(self.other_state_dir_systems),
            "other_state_dir_endpoints": list(self.other_state_dir_endpoints),
            "no_folder_systems": list(self.no_folder_systems),
            "no_folder_endpoints": list(self.no_folder_endpoints),
            "unmarked_systems": list(self.unmarked_systems),
            "unmarked_endpoints": list(self.unmarked_endpoints),
            "other_state_dir_marks": dict(self.other_state_dir_marks),
            "state_mark": self.state_mark,
            "damaged": list(self.damaged),
            "notes": list(self.notes),
        }


def _remove_notes(store: Store, record: Record) -> list[str]:
    """:func:`hcs_sandbox.sandbox.damage.remove_notes` of ``record`` as the damage rules
    judge it (:func:`hcs_sandbox.sandbox.damage.judged`, as the removal did)."""
    from hcs_sandbox.sandbox import damage

    record = damage.judged(store, record, links=True)
    if not record.has_damaged_fields:
        return []
    return damage.remove_notes(record)


def restart_interrupted(record: Record) -> bool:
    """True for a persistent sandbox's record left ``creating`` by a restart (not by its
    first create): its files are the user's data, not a half-made sandbox's.  One whose
    extra is damaged (which would say so) is taken for one: its disk is kept."""
    return bool(
        record.persistent
        and (record.extra.get(RESTARTING_KEY) or record.damaged_field("extra") is not None)
    )


def _terminate_restarted(store: Store, record: Record) -> str | None:
    """Terminate the compute system an interrupted restart may have made (HCS may keep it
    after the restarting process died), by the id :func:`_scan` judged the record by
    (:func:`_system_id`: a damaged one by the sandbox's, as a removal looks for it).  None,
    or the note to report when no id is usable (nothing was opened)."""
    from hcs_sandbox.hcs.system import ComputeSystem

    system_id = _system_id(store, record)
    if system_id is None:
        # (Said as what this prune did: it has terminated every compute system of this
        # state directory's that no record names before it came here; review RV65 F3.)
        problem = record.damaged_field("system_id") or "another record names it too"
        return (
            f"sandbox {_label(record)}: its compute system id in the state database is "
            f"damaged ({problem}), so no compute system of its interrupted restart was "
            "looked for by it (this prune terminated every compute system this state "
            "directory made that no record names: listed among its systems)"
        )
    try:
        system = ComputeSystem.open(system_id)
    except errors.NotFoundError:
        return None
    system.terminate_and_close(timeout=60.0)
    return None


def _system_id(store: Store, record: Record) -> str | None:
    """``record``'s compute system id as :func:`_scan` judges it (see there)."""
    if not record.has_damaged_fields:  # (damage is imported for a damaged record only)
        return record.system_id
    from hcs_sandbox.sandbox import damage

    return damage.system_id(store, record)


def _label(record: Record) -> str:
    return f"{record.name} ({record.id})"


def _sandbox_folders(state: Path) -> list[Path]:
    from hcs_sandbox.sandbox.paths import SANDBOXES_DIR

    root = state / SANDBOXES_DIR
    try:
        return sorted(root.iterdir())
    except FileNotFoundError:
        return []


def _real_directory(path: Path) -> bool:
    """True when ``path`` is a directory itself (lstat): not a symbolic link, not a file, and
    on Windows not a junction either, which lstat reports as a directory (CPython's
    ``os.lstat`` docs: name-surrogate reparse points are opened as links; only a symbolic
    link is ``S_IFLNK``), so any reparse point is refused by its attribute
    (``FILE_ATTRIBUTE_REPARSE_POINT``, Microsoft "File Attribute Constants": "a file or
    directory that has an associated reparse point, or a file that is a symbolic link")."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    attributes: int = getattr(info, "st_file_attributes", 0)  # (Windows only)
    return stat.S_ISDIR(info.st_mode) and not attributes & stat.FILE_ATTRIBUTE_REPARSE_POINT


def _scan(state: Path, store: Store) -> ReconcileReport:
    from hcs_sandbox.sandbox import network
    from hcs_sandbox.sandbox.owned import id_mark, owned_systems
    from hcs_sandbox.sandbox.sandbox import _owner_alive, other_host

    # The records, then HCS and the disk, then the records again (see the module docstring).
    before = {r.id: r.revision for r in store.list(all=True, kind=None)}
    systems = owned_systems()
    try:
        endpoints = network.list_endpoints()
    except errors.HcsUnavailableError:
        endpoints = []
    folders = _sandbox_folders(state)
    # Each record as the damage rules judge it: a compute system id, endpoint id or file
    # that names something not the sandbox's own is damage (damage.judged: QA analyst F4/F5),
    # so that it is neither taken for the record's nor removed with it.
    from hcs_sandbox.sandbox.damage import judged

    records = [judged(store, r) for r in store.list(all=True, kind=None)]

    report = ReconcileReport(records=len(records), systems=len(systems), state_mark=store.mark)
    # Each record's compute system id; a damaged one (no GUID: it names no system) by the
    # id hcs-sandbox gives a sandbox's system, as a removal looks for it (damage.system_id),
    # so that a live sandbox whose record was edited so is not taken for gone, nor its
    # system for an orphan.
    system_of = {r.id: _system_id(store, r) for r in records}
    known_systems = {sid.lower() for sid in system_of.values() if sid}
    known_endpoints = {e.lower() for r in records for e in r.endpoint_ids}
    # Every record knows its endpoints by their name too (hcs-sandbox-<id>, the
    # planner's): never taken for orphans while it exists, whatever its list of endpoint
    # ids says (damaged, or emptied by hand under a live sandbox: review RV58 F1).
    prefix = network.ENDPOINT_NAME_PREFIX
    known_names = {f"{prefix}{r.id}".lower() for r in records if isinstance(r.id, str)}
    known_ids = {r.id.lower() for r in records}
    # A record whose file list is damaged and whose id is not in the store's form (edited
    # by hand) cannot name its folder: a folder whose name is in its id (that id in
    # another case, with a suffix, ...) is kept while the record exists (review RV58 F3).
    from hcs_sandbox.sandbox.paths import is_canonical_id

    unsure_ids = [
        r.id.lower()
        for r in records
        if r.has_damaged_fields
        and r.damaged_field("files")
        and isinstance(r.id, str)
        and not is_canonical_id(r.id)
    ]
    known_files = {os.path.normcase(os.path.abspath(f)) for r in records for f in r.files}

    # Whose is an owned system or endpoint that no record here names: this store's (an
    # orphan: its id carries this store's mark or none, and names a real folder in
    # sandboxes/ here), another store's (left alone), or one that cannot be told (left
    # alone): see the module docstring.
    mine = report.state_mark
    folder_of = {folder.name.lower(): folder for folder in folders}
    left_alone: set[str] = set()  # (the ids those left alone carry: their folders are kept)

    def sort(
        object_id: str,
        item: str,
        *,
        orphans: list[str],
        others: list[str],
        no_folder: list[str],
        no_mark: list[str],
    ) -> None:
        # ``object_id`` (lower case): the system's id, or the sandbox id in an endpoint's
        # name ("" when the name is not in the planner's form); ``item``: what is listed.
        mark = id_mark(object_id)
        if mark is not None and mark != mine:
            # Another store's, even when a folder here names it (a sandboxes/ that two
            # state directories share through a link: review RV-scope2 F2).
            left_alone.add(object_id)
            others.append(item)
            report.other_state_dir_marks[item] = mark
            return
        folder = folder_of.get(object_id) if object_id else None
        if (folder is not None and _real_directory(folder)) or object_id in known_ids:
            # Its folder here; or a record here named by its id in another spelling whose
            # compute system id is damaged (its removal deleted the folder but could not
            # name the system: the remedy says prune terminates it, sandbox/damage.py).
            orphans.append(item)
            return
        # No folder here: a copy of this state directory made it after the copy (its
        # mark), or an older hcs-sandbox in another state directory (no mark): review
        # RV-scope2 F1.
        left_alone.add(object_id)
        (no_mark if mark is None else no_folder).append(item)

    for system_id in sorted(systems):
        if system_id not in known_systems:
            sort(
                system_id.lower(),
                system_id,
                orphans=report.orphan_systems,
                others=report.other_state_dir_systems,
                no_folder=report.no_folder_systems,
                no_mark=report.unmarked_systems,
            )

    for record in records:
        damaged = record.damaged
        if damaged:
            from hcs_sandbox.sandbox.damage import describe

            report.damaged.append(f"{_label(record)}: {describe(damaged)}")
        if other_host(record) is not None:
            report.other_host.append(_label(record))
            continue  # its systems, endpoints and files still count as known (above)
        has_system = (system_of.get(record.id) or "").lower() in systems
        if before.get(record.id) != record.revision:
            # Changed during the scan (a create, start or stop going on): judged next time.
            report.in_progress.append(_label(record))
        elif record.state in _HALF_MADE:
            if _owner_alive(record) and record.state != "error":
                report.in_progress.append(_label(record))
            elif record.state == "creating" and restart_interrupted(record):
                report.restart_interrupted.append(_label(record))
                report._to_stop.append(record)
            else:
                report.half_made.append(_label(record))
                report._to_remove.append(record)
        elif not has_system and (record.state in LIVE_STATES or record.state == "stopped"):
            if record.persistent:
                if record.state != "stopped":
                    report.gone_persistent.append(_label(record))
                    report._to_stop.append(record)
            else:
                report.gone_ephemeral.append(_label(record))
                report._to_remove.append(record)

    for info in endpoints:
        name = (info.name or "").lower()
        if info.id.lower() not in known_endpoints and name not in known_names:
            # Its name is hcs-sandbox-<the sandbox's id> (the planner's): judged by that id.
            sort(
                name[len(prefix) :] if name.startswith(prefix) else "",
                info.id,
                orphans=report.orphan_endpoints,
                others=report.other_state_dir_endpoints,
                no_folder=report.no_folder_endpoints,
                no_mark=report.unmarked_endpoints,
            )

    for folder in folders:
        if folder.name.lower() in known_ids or folder.name.lower() in left_alone:
            continue
        if unsure_ids and any(folder.name.lower() in other for other in unsure_ids):
            continue
        if os.path.normcase(os.path.abspath(folder)) in known_files:
            continue
        report.orphan_files.append(str(folder))
    return report


def reconcile(state_dir: str | os.PathLike[str] | None = None) -> ReconcileReport:
    """Compare records with HCS and the disk; change nothing.  A state directory that does
    not exist: an empty report (nothing is made, HCS is not asked: QA s17 agent F8)."""
    from hcs_sandbox.sandbox.paths import existing_state_dir
    from hcs_sandbox.sandbox.store import open_store

    state = existing_state_dir(state_dir)
    if state is None:
        return ReconcileReport()
    with open_store(state) as store:
        return _scan(state, store)


def prune(
    state_dir: str | os.PathLike[str] | None = None,
    *,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> PruneReport:
    """Remove what :func:`reconcile` finds left over (see the module docstring).

    With ``dry_run`` nothing changes; the report says what would be removed. Failures are
    listed in ``failures`` (the next prune tries again); they do not stop the others.
    ``progress`` is called with a short text before each pause while a file another process
    still holds open is waited for (``storage.HeldWait``); never when nothing is held.
    A state directory that does not exist: nothing to do (nothing is made, HCS is not asked).
    """
    from hcs_sandbox.hcs.system import ComputeSystem
    from hcs_sandbox.sandbox import network, storage
    from hcs_sandbox.sandbox.paths import existing_state_dir
    from hcs_sandbox.sandbox.sandbox import release_resources
    from hcs_sandbox.sandbox.store import open_store

    state = existing_state_dir(state_dir)
    result = PruneReport(dry_run=dry_run)
    if state is None:
        return result
    # One wait for files held open for the whole run: records and orphan files alike
    # (review RV36 #1; storage.HeldWait).
    held = storage.HeldWait(progress=progress)
    with open_store(state) as store:
        found = _scan(state, store)
        result.other_host = list(found.other_host)
        result.other_state_dir_systems = list(found.other_state_dir_systems)
        result.other_state_dir_endpoints = list(found.other_state_dir_endpoints)
        result.no_folder_systems = list(found.no_folder_systems)
        result.no_folder_endpoints = list(found.no_folder_endpoints)
        result.unmarked_systems = list(found.unmarked_systems)
        result.unmarked_endpoints = list(found.unmarked_endpoints)
        result.other_state_dir_marks = dict(found.other_state_dir_marks)
        result.state_mark = found.state_mark
        result.damaged = list(found.damaged)
        if dry_run:
            result.systems = list(found.orphan_systems)
            result.records = found.half_made + found.gone_ephemeral
            result.notes = [n for r in found._to_remove for n in _remove_notes(store, r)]
            result.marked_stopped = found.gone_persistent + found.restart_interrupted
            result.endpoints = list(found.orphan_endpoints)
            result.files = list(found.orphan_files)
            return result

        for system_id in found.orphan_systems:
            try:
                try:
                    system = ComputeSystem.open(system_id)
                except errors.NotFoundError:
                    continue
                system.terminate_and_close(timeout=60.0)
                result.systems.append(system_id)
            except Exception as exc:
                result.failures.append(f"compute system {system_id}: {errors.in_brief(exc)}")

        # Each record in its own try: one that cannot be removed or stopped (whatever its
        # damage) is one failure line, and the others go on (review RV58 F3).
        for record in found._to_remove:
            label = _label(record)
            try:
                # Unchanged since the scan (its revision): a record that moved on meanwhile
                # (a create or start finished) is judged again by the next prune.
                current = store.update(record.id, expect_revision=record.revision, state="removing")
            except (errors.StateConflictError, errors.SandboxNotFoundError):
                continue  # someone else is handling it
            except errors.StateDatabaseError:
                raise  # the database itself (busy, damaged): no other record fares better
            except Exception as exc:
                result.failures.append(f"{label}: {_in_brief(exc)}")
                continue
            notes: list[str] = []
            try:
                notes = _remove_notes(store, current)  # (before: a link it names is still there)
                failures = release_resources(store, current, wait=held)
                if not failures:
                    store.delete(current.id, missing_ok=True, exact=True)
            except errors.StateDatabaseError:
                raise
            except Exception as exc:
                failures = [exc]
            for failure in failures:  # (crossing off what was released: the database)
                if isinstance(failure, errors.StateDatabaseError):
                    raise failure
            if failures:
                result.failures.extend(f"{label}: {_in_brief(f)}" for f in failures)
                continue
            result.records.append(label)
            result.notes.extend(notes)

        for record in found._to_stop:
            try:
                note = None
                if record.state == "creating":  # an interrupted restart: its system, if any
                    note = _terminate_restarted(store, record)
                store.update(
                    record.id,
                    expect_revision=record.revision,
                    state="stopped",
                    merge_extra={RESTARTING_KEY: None},
                )
                result.marked_stopped.append(_label(record))
                if note is not None:
                    result.notes.append(note)
            except (errors.StateConflictError, errors.SandboxNotFoundError):
                continue
            except errors.StateDatabaseError:
                raise  # (as above)
            except Exception as exc:
                result.failures.append(f"{_label(record)}: {errors.in_brief(exc)}")

        for endpoint_id in found.orphan_endpoints:
            try:
                if network.delete_endpoint(endpoint_id):
                    result.endpoints.append(endpoint_id)
            except Exception as exc:
                result.failures.append(f"endpoint {endpoint_id}: {errors.in_brief(exc)}")

        for path in found.orphan_files:
            try:
                if storage.remove_path(path, wait=held):
                    result.files.append(path)
            except Exception as exc:
                result.failures.append(f"{path}: {_in_brief(exc)}")
    for line in result.failures:
        # Info, not warning: the report lists them (the CLI prints each as its error line;
        # a warning too would say each one twice).
        _log.info("prune: %s", line)
    return result


#: The remedy of a file still held open, in prune's words (its own remedy says "prune
#: removes it later": circular inside prune).
_HELD_IN_PRUNE = (
    "something other than hcs-sandbox still has it open (an antivirus scan, an Explorer "
    "window, another program): prune again once it is closed"
)


def _in_brief(exc: BaseException) -> str:
    """One failure for :attr:`PruneReport.failures`: :func:`errors.in_brief`, except that a
    file still held open after the retries (``storage.remove_path``) gets a remedy that fits
    prune."""
    from hcs_sandbox.sandbox import storage

    if isinstance(exc, errors.StorageError) and storage.held_open(exc.__cause__):
        return f"{exc.message} ({_HELD_IN_PRUNE})"
    return errors.in_brief(exc)
