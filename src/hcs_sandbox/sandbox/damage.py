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

A value the store reads as sound but that names something not the sandbox's own is damage
too (:func:`judged`, QA analyst F4, F5): a compute system id or endpoint id not derived
from the sandbox's id (another tool's), a listed file outside its folder or reached through
a link; every verb above uses the record so judged, so such a thing is never terminated,
deleted or opened, and a removal says what it left (:func:`remove_notes`).

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
    "foreign",
    "foreign_grants",
    "judged",
    "local_files",
    "own_endpoint_id",
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
    problem = record.damaged_field("endpoint_ids")
    if problem is not None and problem.startswith(_FOREIGN_ENDPOINTS) and conventions_apply(record):
        notes.append(
            f"sandbox {record.name!r}: its endpoint ids in the state database are damaged "
            f"({problem}), so its endpoints were looked for by their name "
            f"(hcs-sandbox-{record.id}) ('hcs-sandbox prune' removes an endpoint of "
            "hcs-sandbox's that no record names)"
        )
    problem = record.damaged_field("files")
    if problem is not None and problem.startswith(_FOREIGN_FILES):
        done = "its folder was removed" if conventions_apply(record) else "nothing was deleted"
        notes.append(
            f"sandbox {record.name!r}: its file list in the state database is damaged "
            f"({problem}), so {done} (check the files it names outside its folder: delete "
            "one by hand only if you know it is this sandbox's)"
        )
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


# -- values the store reads as sound that name something not the sandbox's own ----------
#
# hcs-sandbox derives every id and path a record holds from the sandbox's id: its compute
# system's id IS the sandbox's id (``Sandbox._create``, ``Store.reserve``), its endpoint's id
# is a UUIDv5 of it (``HostFacts.for_sandbox``), and every file it owns is in its folder
# ``<state>/sandboxes/<id>`` (the planner puts the scratch disk and the guest state file
# there, for every base kind; a ``vhdx:`` base's disk, outside, is in ``extra.foreign_grants``,
# never in ``files``).  A record whose value does not match that derivation (edited by hand)
# names another tool's compute system or endpoint, or a host file: damage, read as empty
# (:func:`judged`), so that no verb terminates, deletes or opens it (QA analyst F4, F5): the
# derivation needs no HCS call.  Only a record whose own id is not in the store's form (then
# nothing can be derived from it) has its compute system id checked with HCS: the ``Owner``
# hcs-sandbox gives its systems (SchemaReference.md, ComputeSystem.Owner; hcsshim
# internal/hcs/schema2/compute_system.go ``Owner``), as ``prune`` checks it.

#: The start of each problem :func:`foreign` names (remove_notes tells them apart).
_FOREIGN_SYSTEM = "names a compute system not the sandbox's"
_FOREIGN_ENDPOINTS = "names endpoints not the sandbox's"
_FOREIGN_FILES = "names files outside the sandbox's folder"


def own_endpoint_id(sandbox_id: str) -> str:
    """The id of the endpoint the planner gives sandbox ``sandbox_id`` (a canonical id):
    ``HostFacts.for_sandbox``'s UUIDv5 of the sandbox's id (:func:`owned.endpoint_id`)."""
    from hcs_sandbox.sandbox.owned import endpoint_id

    return endpoint_id(sandbox_id)


def judged(store: Store, record: Record, *, links: bool = False, files: bool = True) -> Record:
    """``record`` with every value that names something not the sandbox's own
    (:func:`foreign`) named damaged and read as empty (:meth:`Record.with_damage`), so
    that the rules above apply to it: its compute system is looked for by the sandbox's
    id, its endpoints by their name, its files by its folder; nothing else is touched.
    The same object when there is none.  ``links``: a listed file reached through a link
    (a symbolic link or junction between its folder and it) is outside too (a removal asks:
    one ``lstat`` per folder between, none for a file directly in its folder).  ``files``
    False: the file list is not judged (the verbs that never read it: start, exec, cp,
    ports, stop, kill...: only the ids)."""
    problems = foreign(store, record, links=links, files=files)
    return record.with_damage(problems) if problems else record


def foreign(
    store: Store, record: Record, *, links: bool = False, files: bool = True
) -> dict[str, str]:
    """The fields of ``record`` the store reads as sound that name something not the
    sandbox's own, each with what is wrong (see the comment above :data:`_FOREIGN_SYSTEM`)."""
    import os

    from hcs_sandbox.sandbox import paths

    problems: dict[str, str] = {}
    own, mine = _own_id(store, record)
    system = record.system_id
    if record.damaged_field("system_id") is None and not mine:
        problems["system_id"] = (
            f"{_FOREIGN_SYSTEM} ({_brief(system)}), left alone: hcs-sandbox gives a "
            "sandbox's compute system the sandbox's id"
        )
    # An id edited only in its case still names its endpoint by derivation.
    lower = record.id.lower()
    base = own if own is not None else (lower if paths.is_canonical_id(lower) else None)
    if record.damaged_field("endpoint_ids") is None and record.endpoint_ids:
        endpoint = own_endpoint_id(base) if base is not None else None
        stray = [e for e in record.endpoint_ids if e.lower() != endpoint]
        if stray:
            problems["endpoint_ids"] = (
                f"{_FOREIGN_ENDPOINTS} ({_listed(stray)}), left alone: hcs-sandbox derives "
                "its endpoint's id from the sandbox's id"
            )
    if files and record.damaged_field("files") is None and record.files:
        state = os.path.dirname(os.fspath(store.path))
        if own is not None:
            where = paths.sandbox_dir_text(state, own)
        else:
            # No folder is named by its id: each file must be in a sandbox's folder
            # (``<anything>/sandboxes/<a GUID>/...``), never elsewhere on the host.
            where = f"a folder in {os.path.join(state, paths.SANDBOXES_DIR)}"
        local = [_local(f, own, state) for f in record.files]
        outside = [f for f, here in zip(record.files, local, strict=True) if here is None]
        if links and not outside:
            outside = [
                f
                for f, here in zip(record.files, local, strict=True)
                if here is not None and _through_link(*here)
            ]
        if outside:
            problems["files"] = (
                f"{_FOREIGN_FILES} ({_listed(outside, 300)}), left as they are: every file a "
                f"sandbox owns is in {where}"
            )
    return problems


def _own_id(store: Store, record: Record) -> tuple[str | None, bool]:
    """(the id the sandbox's folder and endpoint were derived from, or None when none can be
    told; whether its compute system id is its own).  ONE derivation for judging a record
    (:func:`foreign`) and acting on its files (:func:`local_files`): they must agree on the
    folder a listed file is in (review RV-foreign2 F1: an id not in the store's form judged
    a file in one sandbox's folder and deleted it in another's)."""
    from hcs_sandbox.sandbox import paths

    own = record.id if conventions_apply(record) else None
    system = record.system_id
    if record.damaged_field("system_id") is not None:
        return own, False
    if own is not None:
        return own, system.lower() == own
    # An id edited by hand names nothing by derivation: its compute system id is its own
    # only when no other record names that system, it carries no other state directory's
    # mark (owned.id_mark), and, when it is not the id in another case, when HCS says the
    # opened system's Owner is hcs-sandbox's.
    mine = (
        _unclaimed(store, record)
        and _no_other_mark(store, system)
        and (system.lower() == record.id.lower() or _owned(system))
    )
    if mine and paths.is_canonical_id(system.lower()):
        own = system.lower()  # (what its folder and endpoint were derived from)
    return own, mine


def local_files(store: Store, record: Record) -> tuple[str, ...]:
    """The files ``record`` lists (judged its own: :func:`judged`) as this run's state
    directory names them: ``<anything>/sandboxes/<id>/<rest>`` is acted on as
    ``<this state dir>/sandboxes/<id>/<rest>``, never as listed (review RV-foreign R1: a
    state directory reached through a link, moved, copied, or spelled another way -- the
    extended-length prefix, an 8.3 name, a mapped drive -- names the same files; a copy's
    record names the original's, and its removal deletes its own).  In the listed order.
    (For an id not in the store's form, each file by the sandbox folder it names, as
    :func:`foreign` accepted it.)"""
    import os

    state = os.path.dirname(os.fspath(store.path))
    own = _own_id(store, record)[0]  # (as foreign judged them)
    found = [_local(f, own, state) for f in record.files]
    local: list[str] = []
    for here in found:
        if here is None:  # (a caller's bug: judged names such a list damaged)
            raise ValueError("local_files: the record lists a file that is not its own")
        local.append(here[0])
    return tuple(local)


def _local(path: str, sandbox_id: str | None, state: str) -> tuple[str, str] | None:
    """(``path`` as this state directory names it, the sandbox folder it is in) when
    ``path`` is ``<anything>/sandboxes/<sandbox_id>[/<rest>]`` (the last such pair; on
    Windows in any case and with either separator): ``<state>/sandboxes/<sandbox_id>``
    and that ``[/<rest>]``; ``sandbox_id`` None: any GUID in the store's form there.  None
    when ``path`` has no such form or ``<rest>`` has an empty, ``.`` or ``..`` part.  Text
    only: nothing before ``sandboxes`` is looked at (it is never acted on)."""
    import os

    from hcs_sandbox.sandbox import paths

    text = path.replace(os.altsep, os.sep) if os.altsep else path
    parts = text.split(os.sep)
    nt = os.name == "nt"
    key = paths.SANDBOXES_DIR.lower() if nt else paths.SANDBOXES_DIR
    ident = sandbox_id.lower() if nt and sandbox_id is not None else sandbox_id
    at = name = None
    for i in range(len(parts) - 2, 0, -1):  # (never part 0: no absolute path starts so)
        here = parts[i + 1].lower() if nt else parts[i + 1]
        if (parts[i].lower() if nt else parts[i]) == key and (
            here == ident if ident is not None else paths.is_canonical_id(here)
        ):
            at, name = i, here
            break
    if at is None or name is None:
        return None
    rest = parts[at + 2 :]
    if any(part in ("", ".", "..") for part in rest):
        return None
    folder = paths.sandbox_dir_text(state, name)
    return (os.sep.join([folder, *rest]) if rest else folder), folder


def _through_link(path: str, folder: str) -> bool:
    """Whether deleting ``path`` (under ``folder``: :func:`_local`) would go through a
    link: a folder between ``folder`` and ``path`` is a symbolic link or a junction
    (``os.lstat``: its mode, and on Windows its reparse tag, as files._link_kind tells
    them; the last part itself is deleted as the link it is, not followed).  ``folder``
    itself is not looked at: making it a link takes write access to the state directory,
    the owner's alone; and a sandbox's own files, directly in it, cost no system call
    here (a removal makes none it does not need: test_held_files)."""
    import os
    import stat

    parent = os.path.dirname(path)
    chain: list[str] = []
    while len(parent) > len(folder) and len(chain) < 64:
        chain.append(parent)
        parent = os.path.dirname(parent)
    for part in chain:
        try:
            st = os.lstat(part)
        except OSError:
            continue  # (not there: nothing is deleted through it)
        tag = getattr(st, "st_reparse_tag", 0)
        if stat.S_ISLNK(st.st_mode) or tag in (0xA0000003, 0xA000000C):
            # IO_REPARSE_TAG_MOUNT_POINT, IO_REPARSE_TAG_SYMLINK (winnt.h; files.py)
            return True
    return False


def _owned(system_id: str) -> bool:
    """Whether compute system ``system_id`` exists and is hcs-sandbox's: opened, and the
    ``Owner`` of its properties is the one hcs-sandbox gives its systems.  The Owner is in
    the basic properties (``HcsGetComputeSystemProperties`` with no query: "a JSON document
    representing a compute system's Properties", HcsGetComputeSystemProperties.md;
    ``Properties.Owner``, SchemaReference.md; hcsshim internal/hcs/system.go
    ``getCachedProperties`` reads ``props.Owner`` from that same query).  Asked of the
    opened system itself, not of an enumeration filtered by id (whose matching of the id
    no document describes: review RV-foreign R3).  True when opening it finds no system
    (the verbs open it by that same id, which then finds nothing either: nothing is acted
    on; a removal already done by another process, say); False when its Owner is another
    or none, or HCS cannot tell (refused: nothing is opened by it)."""
    from hcs_sandbox.hcs.system import ComputeSystem
    from hcs_sandbox.sandbox.owned import OWNER

    try:
        with ComputeSystem.open(system_id) as system:
            owner = system.properties().get("Owner")
    except errors.NotFoundError:
        return True
    except errors.HcsSandboxError:
        return False
    return owner == OWNER


def _no_other_mark(store: Store, system_id: str) -> bool:
    """Whether ``system_id`` carries no state directory's mark but this store's
    (:func:`hcs_sandbox.sandbox.owned.id_mark`: a system another state directory made is
    never this one's to act on); False when this store's mark cannot be read."""
    from hcs_sandbox.sandbox.owned import id_mark

    mark = id_mark(system_id)
    if mark is None:
        return True
    try:
        return mark == store.mark
    except errors.HcsSandboxError:
        return False


def _unclaimed(store: Store, record: Record) -> bool:
    """Whether no other record names ``record``'s compute system (by its id or its
    system's)."""
    system = record.system_id.lower()
    for other in store.list(all=True, kind=None):
        if other.id != record.id and system in (other.id.lower(), str(other.system_id).lower()):
            return False
    return True


def _brief(value: str, limit: int = 60) -> str:
    return repr(value) if len(value) <= limit else repr(value[: limit - 3] + "...")


def _listed(values: list[str], limit: int = 60) -> str:
    """The first of ``values`` (cut at ``limit`` characters) and how many more."""
    more = f" and {len(values) - 1} more" if len(values) > 1 else ""
    return f"{_brief(values[0], limit)}{more}"
