"""The state store: one sqlite database of sandbox records that survives crashes and races.

Design
------
- One sqlite3 database (``<state>/state.db``), WAL journal (another process's reads and
  writes do not block each other), every write in ``BEGIN IMMEDIATE`` so read-check-write
  sequences are atomic across threads *and* processes, and up to ``timeout`` of waiting
  for another process's writer.
- Durability: ``synchronous=NORMAL`` under WAL (https://www.sqlite.org/pragma.html#pragma_synchronous
  and https://www.sqlite.org/wal.html).  Precisely:

  * a committed write survives the **process** crashing or being killed at any point
    (the commit is in the WAL file, i.e. in the OS's cache, before ``COMMIT`` returns), so
    "records survive crashes" holds for every crash of hcs-sandbox itself;
  * an **OS crash or power loss** may lose the last commits made since the previous WAL
    checkpoint (the WAL is fsynced at checkpoints, not at every commit), but never
    corrupts the database: it reopens consistent, as of an earlier commit.  A write-ahead
    file/endpoint record lost that way names a resource made just before the power cut;
    ``prune`` finds such leftovers by their names (sandbox folders without a record,
    compute systems and endpoints owned by hcs-sandbox without a record).

  (``synchronous=FULL`` would fsync every commit: ~10 commits per lifecycle made the
  store the largest cost of a sandbox's life, see docs/performance.md.)
- Connections: one per (process, database), cached and shared by every :class:`Store` of
  that database in every thread of the process, which take turns on its lock (each read,
  and each write transaction as a whole); PRAGMAs are applied once per connection.  A
  thread waiting for ANOTHER process's writer retries with the lock released (the
  connection's own busy timeout is short), so the process's other threads go on reading.
  A transaction left open by an interrupted block is rolled back by the next user.  A
  child process after ``fork()`` never uses (nor closes) an inherited connection: it opens
  its own.  Opening a :class:`Store` costs one ``stat`` (is it still the same file?) and
  one ``PRAGMA data_version`` (has another connection written since the schema was
  checked?).
- Page size: a new database gets 1 KiB pages (``_NEW_DATABASE_PAGE_SIZE``: fewer bytes
  written and checksummed per commit); an existing one keeps the page size it was made with.
- Versioned schema: table ``meta(key, value)`` holds ``schema_version``; :data:`MIGRATIONS`
  upgrades an older database in one transaction; a newer one is refused with a clear message.
  Additions that older code of the same ``schema_version`` can ignore (a new table, index or
  trigger that keeps itself consistent) are counted apart, in ``schema_additions``
  (:data:`ADDITIONS`): they are made in the same way, and a database with more of them than
  this code knows is used as it is -- so a process of an older hcs-sandbox that has the
  database open goes on working after a newer one added something.
- The store's mark: meta ``state_mark`` (addition 2), 12 lower-case hex digits (6 random
  bytes) made once per database: every new sandbox id ends in it (:attr:`Store.mark`,
  sandbox/owned.py), so that prune and reconcile tell this store's compute systems and
  endpoints from other stores' on the same host.  It goes with the database: a moved state
  directory keeps it, a new one (also one wiped and made again) gets another.
- The lifecycle log: table ``sandbox_log(sandbox_id, time, line)`` (addition 1).  A line
  that reports a state change is written in the same transaction as the change
  (``update(log_line=...)``: no commit of its own); other lines with :meth:`Store.add_log_line`.
  A trigger deletes a record's lines with the record, whoever deletes it (older code too).
- The store knows nothing about HCS: it keeps what the sandbox layer tells it.  ``spec`` is
  the SandboxSpec dict (opaque JSON); ``extra`` is a JSON dict for later features
  (``template_id``, ``pool``, ``save_file``...).

A record (:class:`Record`)
--------------------------
``id`` (GUID, primary key) and ``name`` (unique, case-insensitive: ``COLLATE NOCASE``; names
are ASCII ``[A-Za-z0-9][A-Za-z0-9_.-]{0,62}`` so NOCASE folding is exact) share one namespace
across kinds.  ``kind`` is one of :data:`KINDS`; ``state`` one of :data:`STATES`:

============  ==========================================================================
``creating``  reserved; resources are being made (files/endpoints written ahead here)
``created``   the compute system exists and is not running
``running``   started
``paused``    paused (warm-pool members wait here)
``saving``    being saved (to a file or as a template)
``saved``     memory saved to a file (``extra["save_file"]``) or, for kind ``template``,
              saved as a template and ready to clone
``stopped``   stopped; a persistent sandbox can start again
``removing``  being removed; ``prune`` finishes what a crashed ``rm`` left
``error``     something failed; ``extra["error"]`` may say what; ``rm``/``prune`` clean it
============  ==========================================================================

Transitions are not enforced here; callers make them race-free with ``expect_state=``
(compare-and-set) on :meth:`Store.update` / :meth:`Store.delete`.

Write-ahead resources: call :meth:`Store.add_file` / :meth:`Store.add_endpoint` *before*
creating the file or endpoint, and :meth:`Store.remove_file` / :meth:`Store.remove_endpoint`
after deleting it, so a crash at any point leaves a record whose lists ``prune`` can follow.
:meth:`Store.add_resources` / :meth:`Store.remove_resources` do several in one transaction
(record all, then create all; delete all, then forget all).
``owner_pid``/``owner_host`` name the creating process, so ``prune`` can tell a half-made
record whose creator died from one still being made.

Import cost: sqlite3, json and the standard library only (``hcs-sandbox ls`` imports this).
"""

from __future__ import annotations

import _thread  # not threading (~1 ms of CLI start-up): its C RLock and local
import builtins
import json
import os
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping

# The C module itself, not ``sqlite3`` (its ``dbapi2`` imports ``datetime``: ~2 ms of every
# ``hcs-sandbox ls``): the same connect() and exception classes (``sqlite3.dbapi2`` does
# ``from _sqlite3 import *``, 3.10-3.13).  What ``sqlite3`` adds is not used here: the
# default date/datetime adapters and converters (only for datetime parameters or
# ``detect_types``; the store binds str, int, float and None only), DB-API constructors.
try:
    import _sqlite3 as sqlite3
except ImportError:  # pragma: no cover - an interpreter without the private module
    import sqlite3  # type: ignore[no-redef]

from hcs_sandbox._frozen import Frozen
from hcs_sandbox.errors import (
    NameInUseError,
    SandboxNotFoundError,
    SpecError,
    StateConflictError,
    StateDatabaseError,
    StoreError,
)
from hcs_sandbox.sandbox.paths import canonical_id as _canonical_id
from hcs_sandbox.sandbox.paths import is_canonical_id as _is_canonical
from hcs_sandbox.sandbox.paths import reads_as_id as _reads_as_id

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~5 ms at start-up
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Final, TypeVar

    _T = TypeVar("_T")

__all__ = [
    "ACTIVE_STATES",
    "ADDITIONS",
    "KINDS",
    "LIVE_STATES",
    "MIGRATIONS",
    "NAME_PATTERN",
    "SCHEMA_ADDITIONS",
    "SCHEMA_VERSION",
    "STATES",
    "Record",
    "Store",
    "close_cached_connections",
    "generate_name",
    "open_existing_store",
    "open_store",
    "published_ports",
    "validate_name",
]

SCHEMA_VERSION: Final = 1
#: Compatible additions to schema version 1 (see :data:`ADDITIONS`).
SCHEMA_ADDITIONS: Final = 2

STATES: Final = (
    "creating",
    "created",
    "running",
    "paused",
    "saving",
    "saved",
    "stopped",
    "removing",
    "error",
)
#: States shown by ``list(all=False)`` (like ``docker ps`` without ``-a``).
ACTIVE_STATES: Final = ("running", "paused")
#: States in which a sandbox's compute system (and endpoint) should exist.
LIVE_STATES: Final = ("created", "running", "paused")
#: ``sandbox``: a user's sandbox; ``template``: a system saved as a template to clone from;
#: ``pool``: a warm-pool member not yet handed out.
KINDS: Final = ("sandbox", "template", "pool")

NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_NAME_RULE = "1-63 characters: letters, digits, '-', '_' or '.', starting with a letter or digit"
_RM_REMEDY = "choose another name or remove it with 'hcs-sandbox rm {name}'"
_HEX_PREFIX = re.compile(r"[0-9a-fA-F-]+")


_COLUMNS: Final = (
    "id",
    "name",
    "kind",
    "state",
    "spec",
    "owner_pid",
    "owner_host",
    "files",
    "endpoint_ids",
    "labels",
    "persistent",
    "system_id",
    "extra",
    "created_at",
    "started_at",
    "updated_at",
    "revision",
)
_SELECT: Final = f"SELECT {', '.join(_COLUMNS)} FROM sandboxes"
#: :meth:`Store.reserve`'s INSERT: every column but ``started_at`` (NULL) and ``revision``
#: (1), the columns' defaults.
_INSERT_COLUMNS: Final = (
    "id", "name", "kind", "state", "spec", "owner_pid", "owner_host", "files", "endpoint_ids",
    "labels", "persistent", "system_id", "extra", "created_at", "updated_at",
)  # fmt: skip
_INSERT: Final = (
    f"INSERT INTO sandboxes ({', '.join(_INSERT_COLUMNS)}) "
    f"VALUES ({', '.join(['?'] * len(_INSERT_COLUMNS))})"
)

# Every column but the identity and the bookkeeping the store maintains itself.
_UPDATABLE: Final = frozenset(_COLUMNS) - {"id", "created_at", "updated_at", "revision"}


# --------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    from datetime import datetime, timezone  # not at import: ``ls`` never needs it

    text = datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


#: The lock taken while a record's spec is decoded on its first read (:attr:`Record.spec`).
#: A child made by ``fork()`` while another thread held it would wait for it forever: the
#: child gets a new one before any of its threads runs (review RV49 F2, RV50 F2).
_spec_decoding = _thread.allocate_lock()
_spec_fork_hook = False


def _renew_spec_lock() -> None:
    global _spec_decoding
    _spec_decoding = _thread.allocate_lock()


def _spec_lock() -> Any:
    global _spec_fork_hook
    if not _spec_fork_hook:  # registered at the first use, not at import
        if hasattr(os, "register_at_fork"):  # not on Windows (no fork there)
            os.register_at_fork(after_in_child=_renew_spec_lock)
        _spec_fork_hook = True  # after: no fork in between finds it set, hook-less
    return _spec_decoding


class Record(Frozen):
    """One row of the store.  Treat the dict fields as read-only (they are copies).

    Times are seconds since the epoch (``time.time()``); :meth:`to_dict` renders them as
    ISO 8601 UTC strings.  ``revision`` grows by one on every write (for ``expect_revision``).

    Immutable and compared by value, as the ``@dataclass(frozen=True)`` it was (a plain
    class: importing ``dataclasses`` costs every CLI verb's start-up ~10 ms).

    ``spec`` is decoded from its JSON text when first read, not when the record is made:
    the store's own records (written or read) carry the text, and most are never asked
    for their spec (a create keeps the SandboxSpec it was given; ``rm``, ``stop``...
    need the state and the lists).  Decoding it costs as much as ~3 records.
    """

    _FIELDS = (*_COLUMNS, "damaged")
    #: The fields' slots, but ``spec``'s: ``_spec`` (the decoded dict, None until read)
    #: and ``_spec_text`` (its JSON text, when made by the store); and ``_damage``, the
    #: columns the store could not read (:attr:`damaged`).
    __slots__ = (*(f for f in _COLUMNS if f != "spec"), "_spec", "_spec_text", "_damage")

    id: str
    name: str
    kind: str
    state: str
    _spec: Any
    _spec_text: str | None
    owner_pid: int | None
    owner_host: str | None
    files: tuple[str, ...]
    endpoint_ids: tuple[str, ...]
    labels: dict[str, str]
    persistent: bool
    system_id: str
    extra: dict[str, Any]
    created_at: float
    started_at: float | None
    updated_at: float
    revision: int
    _damage: tuple[tuple[str, str], ...]

    def __init__(  # noqa: PLR0917 - positional, like the dataclass it replaces
        self,
        id: str,
        name: str,
        kind: str,
        state: str,
        spec: dict[str, Any],
        owner_pid: int | None,
        owner_host: str | None,
        files: tuple[str, ...],
        endpoint_ids: tuple[str, ...],
        labels: dict[str, str],
        persistent: bool,
        system_id: str,
        extra: dict[str, Any],
        created_at: float,
        started_at: float | None,
        updated_at: float,
        revision: int = 1,
        damaged: Mapping[str, str] | None = None,
    ) -> None:
        # The same fields as _record() sets, for the store's own records: keep both in step
        # (test_records_the_store_builds_are_plain_records compares them).
        put = object.__setattr__
        put(self, "id", id)
        put(self, "name", name)
        put(self, "kind", kind)
        put(self, "state", state)
        put(self, "_spec", spec)
        put(self, "_spec_text", None)
        put(self, "owner_pid", owner_pid)
        put(self, "owner_host", owner_host)
        put(self, "files", files)
        put(self, "endpoint_ids", endpoint_ids)
        put(self, "labels", labels)
        put(self, "persistent", persistent)
        put(self, "system_id", system_id)
        put(self, "extra", extra)
        put(self, "created_at", created_at)
        put(self, "started_at", started_at)
        put(self, "updated_at", updated_at)
        put(self, "revision", revision)
        put(self, "_damage", tuple(damaged.items()) if damaged else ())

    @property
    def damaged(self) -> dict[str, str]:
        """The fields of this record that the state database holds damaged (edited by hand,
        a damaged disk), each with what is wrong with it; empty for a sound record.

        ``labels``, ``files``, ``endpoint_ids`` and ``extra`` are read leniently: one that is
        not JSON (NaN, Infinity and ``1e999`` are not), not of its kind (an object; a list)
        or holding a value of the wrong kind (:func:`_values_problem`), reads as empty
        (``{}``, ``()``) and is named here, as is a ``system_id`` that is no GUID
        (:func:`_is_system_id`), a time or ``revision`` of the wrong kind (read as ``""``,
        0.0 or None, 0: :data:`_SCALARS`), so the record can still be listed, stopped and
        removed (what each verb may do: ``hcs_sandbox.sandbox.damage``).  An ``id`` not in
        the store's form (a lowercase GUID, edited by hand) is named too, and kept as it is
        (it still names the record).
        ``spec`` is named when its JSON text is damaged (decoded here when not read yet:
        :attr:`spec` raises for it).  A new dict each time, in the columns' order."""
        found = dict(self._damage)
        if self._spec is None and self._spec_text is not None and "spec" not in found:
            try:
                _ = self.spec  # decoded once, kept (as any first read)
            except StoreError:
                found["spec"] = _problem(self._spec_text, "spec") or "not JSON"
                found = {c: found[c] for c in _COLUMNS if c in found}
        return found

    @property
    def has_damaged_fields(self) -> bool:
        """True when a field other than the spec could not be read (:attr:`damaged` names
        it); the spec's damage shows when the spec is read.  Cheap: nothing is decoded."""
        return bool(self._damage)

    def damaged_field(self, column: str) -> str | None:
        """What is wrong with the stored ``column`` of this record (as in :attr:`damaged`),
        or None when it was read.  Cheap for every column but ``spec`` (decoded, once)."""
        if column == "spec":
            return self.damaged.get("spec")
        for name, problem in self._damage:
            if name == column:
                return problem
        return None

    def with_damage(self, problems: Mapping[str, str]) -> Record:
        """This record with ``problems`` (column: what is wrong) named in :attr:`damaged`
        too, each such column read as empty, as the store reads a damaged one (``()``; a
        ``system_id``: ``""``): for values the store reads as sound but the sandbox layer
        finds naming something not the sandbox's own (``hcs_sandbox.sandbox.damage.judged``:
        a file outside its folder, a compute system or endpoint id not derived from its
        id).  Only ``files``, ``endpoint_ids`` and ``system_id`` can be named so."""
        found = dict(self._damage)
        for column, problem in problems.items():
            if column not in ("files", "endpoint_ids", "system_id"):
                raise ValueError(f"with_damage: {column!r} cannot be named damaged")
            found.setdefault(column, problem)
        damage = tuple((c, found[c]) for c in _COLUMNS if c in found)
        return _record(
            self.id,
            self.name,
            self.kind,
            self.state,
            self._spec,
            self._spec_text,
            self.owner_pid,
            self.owner_host,
            () if "files" in problems else self.files,
            () if "endpoint_ids" in problems else self.endpoint_ids,
            self.labels,
            self.persistent,
            "" if "system_id" in problems else self.system_id,
            self.extra,
            self.created_at,
            self.started_at,
            self.updated_at,
            self.revision,
            damage,
        )

    @property
    def spec(self) -> Any:
        """The SandboxSpec dict (decoded on first use; the same object afterwards).

        Raises :class:`StoreError` when the stored value is not JSON text, or nests too
        deep to decode (the database was damaged or edited by hand): the record can still be
        stopped and removed."""
        spec: dict[str, Any] = self._spec  # (None until read, when made by the store)
        if spec is None and self._spec_text is not None:
            # One decoding per record, even when threads read it first at once: every
            # reader gets the same dict (review RV46 F1).  Kept: not a change of the
            # record's value.
            with _spec_lock():
                spec = self._spec
                if spec is None:
                    # (A spec that is JSON but not an object is the store's to keep:
                    # reserve() takes any JSON value; the sandbox layer refuses it.)
                    try:
                        decoded = _loads_spec(self._spec_text)
                    except (ValueError, RecursionError, TypeError) as exc:
                        problem = str(exc) or type(exc).__name__
                    else:
                        problem = ""
                    if problem:
                        raise StoreError(
                            f"the spec of sandbox {self.name!r} in the state database is "
                            f"damaged ({problem})",
                            remedy=f"remove the sandbox: hcs-sandbox rm -f {self.id}",
                        ) from None
                    spec = decoded
                    object.__setattr__(self, "_spec", spec)
        return spec

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict for ``--json`` output (shallow copies; times as ISO 8601 UTC)."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "state": self.state,
            "system_id": self.system_id,
            "persistent": self.persistent,
            "labels": dict(self.labels),
            # (a dict copy; any other JSON value, which only a hand edit stores, as it is)
            "spec": dict(spec) if isinstance(spec := self.spec, dict) else spec,
            "files": list(self.files),
            "endpoint_ids": list(self.endpoint_ids),
            "owner": {"pid": self.owner_pid, "host": self.owner_host},
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "updated_at": _iso(self.updated_at),
            "extra": dict(self.extra),
            "revision": self.revision,
        }


class _Unfrozen(Record):
    """A :class:`Record` being filled in (:func:`_record`), then turned into a plain Record.

    Frozen's ``__setattr__`` makes every field assignment of ``Record.__init__`` a call of
    ``object.__setattr__`` (~1.2 k instructions each, ~20 k per record); this class assigns
    its slots (Record's own) the ordinary way (both ``__setattr__`` and ``__delattr__`` are
    object's again, so the interpreter stores straight into the slot), and then the object
    becomes a Record by ``__class__`` assignment (allowed: same layout, no slots of its
    own).  Never seen outside :func:`_record`."""

    __slots__ = ()
    __setattr__ = object.__setattr__  # type: ignore[assignment]
    __delattr__ = object.__delattr__


_new_object = object.__new__


def _record(  # noqa: PLR0917 - positional, in _COLUMNS order
    id: str,
    name: str,
    kind: str,
    state: str,
    spec: dict[str, Any] | None,
    spec_text: str | None,
    owner_pid: int | None,
    owner_host: str | None,
    files: tuple[str, ...],
    endpoint_ids: tuple[str, ...],
    labels: dict[str, str],
    persistent: bool,
    system_id: str,
    extra: dict[str, Any],
    created_at: float,
    started_at: float | None,
    updated_at: float,
    revision: int,
    damage: tuple[tuple[str, str], ...] = (),
) -> Record:
    """``Record(...)`` (the same object) for the store's own records: ~5 k instructions
    instead of ~25 k (see :class:`_Unfrozen`).  The spec as a dict, or None and its JSON
    text (decoded when first read: :attr:`Record.spec`).  Sets what ``Record.__init__``
    sets: keep both in step."""
    r = _new_object(_Unfrozen)
    r.id = id
    r.name = name
    r.kind = kind
    r.state = state
    r._spec = spec
    r._spec_text = spec_text
    r.owner_pid = owner_pid
    r.owner_host = owner_host
    r.files = files
    r.endpoint_ids = endpoint_ids
    r.labels = labels
    r.persistent = persistent
    r.system_id = system_id
    r.extra = extra
    r.created_at = created_at
    r.started_at = started_at
    r.updated_at = updated_at
    r.revision = revision
    r._damage = damage
    r.__class__ = Record  # type: ignore[assignment]
    return r


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    """A JSON number with a fraction or exponent, refused when it does not fit a float:
    ``1e999`` decodes to infinity (sqlite's ``json_valid`` accepts it), which the store
    could not write back (``allow_nan=False``) any more than NaN (review RV58 F2)."""
    value = float(text)
    if value - value != 0.0:  # inf - inf is NaN (math.isfinite without importing math)
        raise ValueError(f"{text} is out of a float's range")
    return value


#: The store writes with ``allow_nan=False``: NaN and Infinity are refused on the way back
#: too, as sqlite's ``json_valid`` (the listing's test, _SUMMARY_SELECT) refuses them (and a
#: record holding one could not be written back), and so is a number too large for a float
#: (``1e999``: :func:`_finite_float`).
_strict_raw_decode = json.JSONDecoder(
    parse_constant=_no_constant, parse_float=_finite_float
).raw_decode
_JSON_SPACE: Final = " \t\n\r"  # RFC 8259's whitespace (str.strip() takes more)


def _loads(text: str) -> Any:
    """json.loads for the compact JSON this store writes, minus its per-call overhead
    (``list()`` of 1,000 records decodes 5,000 of these).  Lenient, for the columns a
    record needs to be stopped and removed (files, endpoint ids, labels, extra): what
    follows the value is not looked at, so a hand-damaged tail does not make the record
    impossible to remove (review RV54 F1).  NaN and Infinity are refused (ValueError).
    The spec is read by :func:`_loads_spec`; a value that is not JSON at all by
    :func:`_row_to_record`'s lenient path (:func:`_read_column`)."""
    if text == "[]":
        return []
    if text == "{}":
        return {}
    return _strict_raw_decode(text)[0]


def _loads_spec(text: str) -> Any:
    """A record's spec: what it accepts is what sqlite's ``json_valid`` accepts (RFC 8259
    text, NaN refused, whitespace around the value), so that the listing (which shows a
    spec only when ``json_valid`` says so) and :attr:`Record.spec` agree on a spec edited
    by hand (review RV52 F1b): text after the value is refused (``ValueError``, as
    ``json.loads`` does), and the record's spec is then reported damaged."""
    body = text.strip(_JSON_SPACE)
    value, end = _strict_raw_decode(body)
    if end != len(body):
        raise ValueError(f"extra data after the JSON value at character {end}")
    return value


#: The errors decoding a column's text can raise: not JSON (ValueError, NaN included),
#: nested too deep (RecursionError), not text at all (TypeError: a BLOB, a number).
_UNDECODABLE: Final = (ValueError, RecursionError, TypeError)
#: What each leniently read column must hold, in words (:func:`_read_column`).
_KIND_WORDS: Final = {
    "files": "a JSON list",
    "endpoint_ids": "a JSON list",
    "labels": "a JSON object",
    "extra": "a JSON object",
}


def _problem(text: Any, column: str) -> str | None:
    """What is wrong with ``text`` as the stored value of ``column`` (None: nothing):
    ``not JSON (...)``, ``not <its kind>`` or what is wrong with a value in it
    (:func:`_values_problem`)."""
    if not isinstance(text, str):  # (a BLOB: sqlite keeps what it was given)
        return f"not JSON text ({'a BLOB' if isinstance(text, bytes) else type(text).__name__})"
    try:
        value = _loads_spec(text) if column == "spec" else _loads(text)
    except _UNDECODABLE as exc:
        return f"not JSON ({str(exc) or type(exc).__name__})"
    if column == "spec":
        return None
    kind = list if column in _LIST_COLUMNS else dict
    if type(value) is not kind:
        return f"not {_KIND_WORDS[column]}"
    return _values_problem(column, value) if value else None


def _is_guid_text(value: object) -> bool:
    """True for a GUID as text: canonical (an endpoint id as the planner makes it), or in
    another form the removal can still open and delete it by (upper case, braces): the
    rule of the call that deletes it, :meth:`hcs_sandbox.native.types.GUID.from_string`
    (imported only for such a form: ctypes is not on ``ls``'s start-up path)."""
    if _is_canonical(value):
        return True
    if type(value) is not str:
        return False
    from hcs_sandbox.native.types import GUID

    try:
        GUID.from_string(value)
    except SpecError:
        return False
    return True


def _is_system_id(value: object) -> bool:
    """True for a compute system id as hcs-sandbox gives one: its sandbox's id, a GUID in
    the ``8-4-4-4-12`` form (:meth:`Store.reserve`), in any case (prune compares them
    lowercased; a hand-edited record's id in upper case still names its system).  Any
    other text names no compute system of hcs-sandbox's: opening it finds nothing (the
    record was taken for stopped while its system ran on) or fails (the simulator refuses
    ``""`` with E_INVALIDARG), so it is damage (:attr:`Record.damaged`)."""
    return type(value) is str and value.isascii() and _is_canonical(value.lower())


#: Ids the reader found in the store's form (:func:`_sound_id`): a record read again costs
#: a set lookup, not the regular expression of ``is_canonical_id`` (~3.9 k instructions
#: per read under CPython 3.11, ~8 % of a sound record's whole read).  Bounded: emptied
#: past :data:`_SOUND_IDS_SIZE` entries.  (Membership is equality: a str equal to a
#: canonical id is one.)
_SOUND_IDS: Final[set[str]] = set()
_SOUND_IDS_SIZE: Final = 4096


def _sound_id(value: object) -> bool:
    """True for an id in the store's form (a lowercase GUID), remembered in
    :data:`_SOUND_IDS`."""
    if not _is_canonical(value):
        return False
    if len(_SOUND_IDS) >= _SOUND_IDS_SIZE:
        _SOUND_IDS.clear()
    _SOUND_IDS.add(value)  # type: ignore[arg-type]  # (a str: _is_canonical says so)
    return True


#: What :attr:`Record.damaged` says of an id that is not in the store's form (edited by
#: hand): it still names its record (``get`` finds it as stored), never its folder or
#: endpoints by the conventions (``damage.conventions_apply``).
_ID_PROBLEM: Final = "not in the form hcs-sandbox writes (a lowercase GUID)"


#: What else starts a path from a root: on Windows also a path from the current drive's
#: root (``\\dir\\x``, ``/dir/x``), which ``os.path.isabs`` called absolute before Python
#: 3.13 and not since; the spec takes such a ``vhdx:`` base path on Windows (with a
#: warning), so a record written under one Python must not read damaged under another
#: (review RV60 F3).  A drive-relative ``C:x`` is not rooted.
_ROOTED = ("/", "\\") if os.name == "nt" else ("/",)


def _is_absolute_path(value: object) -> bool:
    """True for a path string that names its file wherever the process runs: a removal
    deletes each recorded file, and a relative one would be taken from the working
    directory (review RV58 F1).  (:data:`_ROOTED`: the same answer on every Python.)"""
    return (
        type(value) is str
        and bool(value)
        and "\0" not in value
        and (os.path.isabs(value) or value.startswith(_ROOTED))
    )


def _is_text_list(value: object) -> bool:
    return type(value) is list and all(type(item) is str for item in value)


def _is_path_list(value: object) -> bool:
    return type(value) is list and all(_is_absolute_path(item) for item in value)


def _is_exit(value: object) -> bool:
    """``extra.exit``: a ``SystemExitStatus`` document, whose ``Status`` (if any) is a number
    (``Sandbox.wait``/``inspect`` read it as one)."""
    if type(value) is not dict:
        return False
    status = value.get("Status")
    return status is None or (type(status) is int) or (type(status) is float)


#: The keys of ``extra`` that verbs iterate or read into (grep ``extra.get``), each with the
#: test its value must pass (null: absent) and the words for it: a value that fails makes
#: the extra damaged (:attr:`Record.damaged`), so no verb iterates a number or takes back
#: a grant on a path that is no path (review RV58 F1).  Those whose test is their type
#: alone: :data:`_EXTRA_KINDS`.
_EXTRA_CHECKS: Final[dict[str, tuple[Callable[[object], bool], str]]] = {
    "foreign_grants": (_is_path_list, "a list of absolute paths"),
    "warnings": (_is_text_list, "a list of strings"),
    "exit": (_is_exit, "an exit status (an object whose Status is a number)"),
}
#: The keys of ``extra`` whose value must be of one type (null: absent), as
#: :data:`_EXTRA_CHECKS`, tested inline (no call: three of them are in every record's
#: extra).  ``ip``, ``mac``: shown as they are (ls, inspect, port); ``hcs_host``: compared
#: (the HCS host the record was made through, sandbox.other_host): strings, as the
#: sandbox writes them.
_EXTRA_KINDS: Final[dict[str, tuple[type, str]]] = {
    "guest_links": (list, "a list"),
    "mappings": (list, "a list"),
    "ports": (list, "a list"),
    "gpu_request": (dict, "an object"),
    "ip": (str, "a string"),
    "mac": (str, "a string"),
    "hcs_host": (str, "a string"),
}


def _values_problem(column: str, value: Any) -> str | None:
    """What is wrong with a value inside ``column``'s decoded (non-empty) container, or
    None: ``files`` holds absolute path strings, ``endpoint_ids`` GUID strings, ``labels``
    string values, ``extra`` the kinds :data:`_EXTRA_KINDS` and :data:`_EXTRA_CHECKS` name."""
    if column == "files":
        for i, item in enumerate(value):
            if not _is_absolute_path(item):
                return f"not a JSON list of absolute paths (item {i}: {_brief(item)})"
    elif column == "endpoint_ids":
        for i, item in enumerate(value):
            if not _is_guid_text(item):
                return f"not a JSON list of GUIDs (item {i}: {_brief(item)})"
    elif column == "labels":
        for key, item in value.items():
            if type(item) is not str:
                return f"not a JSON object of strings (the value of {key!r}: {_brief(item)})"
    elif column == "extra":
        for key, item in value.items():
            if item is None:
                continue
            kind = _EXTRA_KINDS.get(key)
            if kind is not None:
                if type(item) is not kind[0]:
                    return f"not as verbs read it (its {key!r} is not {kind[1]}: {_brief(item)})"
                continue
            check = _EXTRA_CHECKS.get(key)
            if check is not None and not check[0](item):
                return f"not as verbs read it (its {key!r} is not {check[1]}: {_brief(item)})"
    return None


def _brief(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _read_column(text: Any, column: str, damage: builtins.list[tuple[str, str]]) -> Any:
    """``column``'s value read leniently: a damaged one (:func:`_problem`) reads as its empty
    value (``()`` or ``{}``) and is added to ``damage``."""
    problem = _problem(text, column)
    if problem is not None:
        damage.append((column, problem))
        return () if column in _LIST_COLUMNS else {}
    value = _loads(text)
    return tuple(value) if column in _LIST_COLUMNS else value


def _row_to_record(row: tuple[Any, ...]) -> Record:
    (
        id_,
        name,
        kind,
        state,
        spec,
        owner_pid,
        owner_host,
        files,
        endpoint_ids,
        labels,
        persistent,
        system_id,
        extra,
        created_at,
        started_at,
        updated_at,
        revision,
    ) = row
    # Each must be of its kind too: a JSON string's tuple() would be its characters, taken
    # for paths to delete; a list's get() an AttributeError.
    try:
        files_value = _loads(files)
        endpoints_value = _loads(endpoint_ids)
        labels_value = _loads(labels)
        extra_value = _loads(extra)
    except _UNDECODABLE:
        return _damaged_record(row)
    if (
        type(files_value) is not list
        or type(endpoints_value) is not list
        or type(labels_value) is not dict
        or type(extra_value) is not dict
        # ... and so must what they hold (review RV58 F1): a number taken for a path, an
        # endpoint id that is no GUID (never deletable: a removal stuck for ever).
        or (files_value and _values_problem("files", files_value) is not None)
        or (endpoints_value and _values_problem("endpoint_ids", endpoints_value) is not None)
        or (labels_value and _values_problem("labels", labels_value) is not None)
        or (extra_value and _values_problem("extra", extra_value) is not None)
        # The plain columns the verbs compute with (review RV58 F6): sqlite keeps what it
        # was given (REAL and INTEGER columns keep text they cannot convert).  The same
        # tests as _SCALARS's, written out on this path every read takes: keep both in step.
        or type(revision) is not int
        or type(created_at) is not float
        or type(updated_at) is not float
        or (started_at is not None and type(started_at) is not float)
        # The id in the store's form, and a compute system id that is a GUID: the record's
        # own id (as the store gives it, checked just before) or another (_SCALARS's test).
        or (id_ not in _SOUND_IDS and not _sound_id(id_))
        or (system_id != id_ and not _is_system_id(system_id))
    ):
        return _damaged_record(row)
    return _record(
        id_,
        name,
        kind,
        state,
        None,
        spec,
        owner_pid,
        owner_host,
        tuple(files_value),
        tuple(endpoints_value),
        labels_value,
        bool(persistent),
        system_id,
        extra_value,
        created_at,
        started_at,
        updated_at,
        revision,
    )


def _damaged_record(row: tuple[Any, ...]) -> Record:
    """:func:`_row_to_record` of a row whose labels, files, endpoint ids or extra the store
    cannot read (edited by hand, a damaged disk): each such column reads as its empty value
    and is named in :attr:`Record.damaged`, so that the record can still be listed,
    stopped and removed (what each verb may do with it: the sandbox layer decides)."""
    damage: builtins.list[tuple[str, str]] = []
    if not _is_canonical(row[0]):  # (kept as stored: it still names the record)
        damage.append(("id", _ID_PROBLEM))
    values = {
        column: _read_column(row[_COLUMNS.index(column)], column, damage)
        for column in ("files", "endpoint_ids", "labels", "extra")
    }
    for column, check, words, empty in _SCALARS:
        value = row[_COLUMNS.index(column)]
        if not check(value):
            damage.append((column, f"not {words} ({_brief_scalar(value)})"))
            values[column] = empty
        else:
            values[column] = value
    order = {column: i for i, column in enumerate(_COLUMNS)}
    damage.sort(key=lambda item: order[item[0]])
    return _record(
        row[0],
        row[1],
        row[2],
        row[3],
        None,
        row[4],
        row[5],
        row[6],
        values["files"],
        values["endpoint_ids"],
        values["labels"],
        bool(row[10]),
        values["system_id"],
        values["extra"],
        values["created_at"],
        values["started_at"],
        values["updated_at"],
        values["revision"],
        tuple(damage),
    )


#: The plain columns the lenient reader checks (review RV58 F6): each with its test, its
#: kind in words and what a damaged one reads as (a damaged ``system_id`` reads as "":
#: no compute system to open; a removal and the other verbs look for it by the sandbox's
#: id, or skip it and say so, or refuse: ``damage.system_id``, ``damage.refuse_system``).
_SCALARS: Final[tuple[tuple[str, Callable[[object], bool], str, Any], ...]] = (
    ("system_id", _is_system_id, "a compute system id (a GUID)", ""),
    ("created_at", lambda v: type(v) is float, "a time", 0.0),
    ("started_at", lambda v: v is None or type(v) is float, "a time", None),
    ("updated_at", lambda v: type(v) is float, "a time", 0.0),
    ("revision", lambda v: type(v) is int, "a revision number", 0),
)


def _brief_scalar(value: object) -> str:
    if isinstance(value, bytes):
        return "a BLOB"
    return _brief(value)


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid sandbox name, else raise :class:`SpecError`."""
    if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
        raise SpecError(
            f"invalid sandbox name {name!r}",
            field="name",
            value=name,
            allowed=_NAME_RULE,
        )
    return name


def _check_choice(value: str, allowed: Collection[str], what: str) -> str:
    if value not in allowed:
        raise SpecError(
            f"invalid {what} {value!r}",
            field=what,
            value=value,
            allowed="one of " + ", ".join(allowed),
        )
    return value


#: ``json.dumps(value, separators=(",", ":"), allow_nan=False)`` without building a new
#: encoder at every call, as ``json.dumps`` does for any non-default argument (half the
#: cost of a small dict).  An encoder keeps no state between calls: shared by all threads.
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def _checked_system_id(value: object) -> str:
    """``value`` as a record's ``system_id`` (what the reader reads back as sound:
    :func:`_is_system_id`), else :class:`StoreError`."""
    if not _is_system_id(value):
        raise StoreError(f"system_id must be a GUID (8-4-4-4-12 hex digits), not {_brief(value)}")
    return value  # type: ignore[return-value]  # (a str: _is_system_id says so)


def _dump(value: Any, what: str) -> str:
    try:
        return _encode(value)
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"cannot store {what}: it is not JSON-serialisable ({exc})",
            remedy="this is a bug in the caller; please report it",
        ) from exc


def _dump_object(value: Mapping[str, Any] | None, what: str) -> str:
    if value is None:
        return "{}"
    if not isinstance(value, Mapping):
        raise StoreError(f"cannot store {what}: expected a mapping, got {type(value).__name__}")
    return _dump(dict(value), what)


def _dump_labels(labels: Mapping[str, str] | None) -> str:
    if not labels:
        return "{}"
    for key, value in labels.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise SpecError(
                f"invalid label {key!r}={value!r}",
                field="labels",
                value=dict(labels),
                allowed="non-empty string keys with string values",
            )
    return _dump(dict(labels), "labels")


def _dump_strings(values: Iterable[str], what: str) -> str:
    items = builtins.list(values)
    if isinstance(values, str) or any(not isinstance(v, str) or not v for v in items):
        raise StoreError(f"cannot store {what}: expected a list of non-empty strings")
    return _dump(items, what) if items else "[]"


_JSON_COLUMNS: Final = frozenset({"spec", "extra", "labels"})
_LIST_COLUMNS: Final = frozenset({"files", "endpoint_ids"})


#: Where each column's value goes among :func:`_record`'s arguments: _COLUMNS' order,
#: with the spec's JSON text after the spec.
_SPEC_AT: Final = _COLUMNS.index("spec")
_INDEX: Final = {name: i + (i > _SPEC_AT) for i, name in enumerate(_COLUMNS)}


_EVERY_WRITE_SETS: Final = ("updated_at", "revision")


def _changed(record: Record, values: Mapping[str, Any], updated_at: float) -> Record:
    """``record`` with the column ``values`` of an UPDATE applied (what reading the row
    back would give): JSON columns decoded, ``persistent`` as a bool, the next revision."""
    r = record
    fields: builtins.list[Any] = [  # _record's order (plain attribute loads, no getattr)
        r.id, r.name, r.kind, r.state, r._spec, r._spec_text, r.owner_pid, r.owner_host,
        r.files, r.endpoint_ids, r.labels, r.persistent, r.system_id, r.extra, r.created_at,
        r.started_at, updated_at, r.revision + 1, r._damage,
    ]  # fmt: skip
    for column, value in values.items():
        if column == "spec":  # decoded when read (Record.spec)
            fields[_SPEC_AT] = None
            fields[_SPEC_AT + 1] = value
        elif column in _JSON_COLUMNS:
            fields[_INDEX[column]] = _loads(value)
        elif column in _LIST_COLUMNS:
            fields[_INDEX[column]] = tuple(_loads(value))
        elif column == "persistent":
            fields[_INDEX[column]] = bool(value)
        else:
            fields[_INDEX[column]] = value
    if r._damage:  # a column written anew is sound again (every write sets these two)
        fields[-1] = tuple(
            d for d in r._damage if d[0] not in values and d[0] not in _EVERY_WRITE_SETS
        )
    return _record(*fields)


#: :func:`_update_sql`'s statements by (assigned columns, guarded).  The text is a pure
#: function of its key: nothing invalidates an entry.  Bounded: the keys are the column
#: sets (in the caller's order) that update/claim/the list edits are called with, a
#: handful; past ``_UPDATE_SQL_SIZE`` of them a statement is built each time, not kept.
_UPDATE_SQL: dict[tuple[tuple[str, ...], bool], str] = {}
_UPDATE_SQL_SIZE: Final = 64


def _update_sql(columns: tuple[str, ...], guarded: bool) -> str:
    """The UPDATE of :meth:`Store._apply` (``guarded``: :meth:`Store._apply_guarded`) that
    sets ``columns`` (validated names), ``updated_at`` and the next revision."""
    key = (columns, guarded)
    sql = _UPDATE_SQL.get(key)
    if sql is None:
        sql = (
            f"UPDATE sandboxes SET {''.join(f'{c} = ?, ' for c in columns)}"
            "updated_at = ?, revision = revision + 1 WHERE id = ?"
        )
        if guarded:
            sql += " AND revision = ? AND updated_at = ? AND created_at = ?"
        if len(_UPDATE_SQL) < _UPDATE_SQL_SIZE:
            _UPDATE_SQL[key] = sql
    return sql


def _field_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate :meth:`Store.update` keyword fields and turn them into column values."""
    if not _UPDATABLE.issuperset(fields):
        unknown = set(fields) - _UPDATABLE
        raise StoreError(
            f"cannot update unknown record field(s): {', '.join(sorted(unknown))}",
            remedy=f"updatable fields: {', '.join(sorted(_UPDATABLE))}",
        )
    values: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "name":
            values[key] = validate_name(value)
        elif key == "state":
            values[key] = _check_choice(value, STATES, "state")
        elif key == "kind":
            values[key] = _check_choice(value, KINDS, "kind")
        elif key in ("spec", "extra"):
            values[key] = _dump_object(value, key)
        elif key in ("files", "endpoint_ids"):
            values[key] = _dump_strings(value, key)
        elif key == "labels":
            values[key] = _dump_labels(value)
        elif key == "persistent":
            values[key] = 1 if value else 0
        elif key == "system_id":
            values[key] = _checked_system_id(value)
        elif key in ("started_at",):
            values[key] = None if value is None else float(value)
        elif key == "owner_pid":
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63
            ):
                raise StoreError(f"owner_pid must be a process id or None, not {value!r}")
            values[key] = value
        else:  # owner_host
            if value is not None and not isinstance(value, str):
                raise StoreError(f"owner_host must be a host name or None, not {value!r}")
            values[key] = value
    return values


def _hostname() -> str:
    import socket

    try:
        return socket.gethostname()
    except OSError:  # pragma: no cover - gethostname practically never fails
        return ""


# --------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------

# Our own word lists (adjective_noun, docker-like shape); all lowercase ASCII.
_ADJECTIVES: Final = (
    "agile", "amber", "ample", "azure", "bold", "brave", "breezy", "bright", "brisk", "calm",
    "clever", "cosmic", "crisp", "dapper", "eager", "early", "fancy", "fleet", "fluffy", "frosty",
    "gentle", "giddy", "glossy", "golden", "happy", "hardy", "humble", "jolly", "keen", "kind",
    "lively", "lucky", "mellow", "merry", "mighty", "misty", "nimble", "noble", "plucky", "polite",
    "proud", "quick", "quiet", "rapid", "rosy", "rustic", "shiny", "silent", "silver", "sleek",
    "snug", "sunny", "swift", "tidy", "tranquil", "vivid", "warm", "witty", "zany", "zesty",
)  # fmt: skip
_NOUNS: Final = (
    "anchor", "badger", "beacon", "birch", "bison", "brook", "canyon", "cedar", "comet", "coral",
    "crane", "delta", "dune", "ember", "falcon", "fern", "fjord", "glacier", "grove", "harbor",
    "heron", "island", "juniper", "kestrel", "lagoon", "lantern", "maple", "meadow", "mesa",
    "nebula", "oasis", "orchid", "otter", "panda", "pebble", "pine", "prairie", "quartz", "raven",
    "reef", "ridge", "river", "robin", "sequoia", "sparrow", "spruce", "summit", "thistle",
    "tundra", "valley", "walrus", "willow", "wren", "yak", "zephyr", "aurora", "basalt", "cobalt",
    "dolphin", "geyser",
)  # fmt: skip


def generate_name(
    attempt: int = 0, *, choice: Callable[[tuple[str, ...]], str] | None = None
) -> str:
    """A random ``adjective_noun`` name; from the 6th attempt on, a numeric suffix is added."""
    if choice is None:
        import random

        choice = random.SystemRandom().choice
    name = f"{choice(_ADJECTIVES)}_{choice(_NOUNS)}"
    if attempt >= 5:
        import random

        name += f"_{random.SystemRandom().randrange(10, 10_000)}"
    return name


# --------------------------------------------------------------------------------------
# Schema and migrations
# --------------------------------------------------------------------------------------


def _migrate_to_1(conn: sqlite3.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE sandboxes (
            id           TEXT PRIMARY KEY NOT NULL,
            name         TEXT NOT NULL COLLATE NOCASE UNIQUE,
            kind         TEXT NOT NULL DEFAULT 'sandbox',
            state        TEXT NOT NULL,
            spec         TEXT NOT NULL DEFAULT '{}',
            owner_pid    INTEGER,
            owner_host   TEXT,
            files        TEXT NOT NULL DEFAULT '[]',
            endpoint_ids TEXT NOT NULL DEFAULT '[]',
            labels       TEXT NOT NULL DEFAULT '{}',
            persistent   INTEGER NOT NULL DEFAULT 0,
            system_id    TEXT NOT NULL,
            extra        TEXT NOT NULL DEFAULT '{}',
            created_at   REAL NOT NULL,
            started_at   REAL,
            updated_at   REAL NOT NULL,
            revision     INTEGER NOT NULL DEFAULT 1
        )
        """
    )
    conn.execute("CREATE INDEX sandboxes_kind_state ON sandboxes (kind, state)")


#: ``MIGRATIONS[n]`` brings a database from version ``n - 1`` to ``n``.  Append, never edit.
MIGRATIONS: Final[dict[int, Callable[[sqlite3.Connection], None]]] = {1: _migrate_to_1}


def _add_log_table(conn: sqlite3.Connection) -> None:
    """Addition 1: the lifecycle log, one row per line, in insertion (rowid) order.  The
    trigger deletes a record's lines with it, whoever deletes it (older code of schema
    version 1 knows nothing of this table and still deletes records)."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS sandbox_log ("
        "sandbox_id TEXT NOT NULL, time REAL NOT NULL, line TEXT NOT NULL)"
    )
    conn.execute("CREATE INDEX IF NOT EXISTS sandbox_log_sandbox ON sandbox_log (sandbox_id)")
    conn.execute(
        "CREATE TRIGGER IF NOT EXISTS sandbox_log_with_record AFTER DELETE ON sandboxes "
        "BEGIN DELETE FROM sandbox_log WHERE sandbox_id = old.id; END"
    )


def _add_state_mark(conn: sqlite3.Connection) -> None:
    """Addition 2: the store's mark (meta ``state_mark``, see :attr:`Store.mark`), made once:
    in the upgrade's write transaction (``BEGIN IMMEDIATE``, the additions read again in
    it), and ``OR IGNORE``, so two processes upgrading the same database at once keep the
    first one's.  Older code of schema version 1 never reads nor writes it."""
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('state_mark', ?)",
        (os.urandom(6).hex(),),
    )


#: ``ADDITIONS[n]`` makes compatible addition ``n`` to a database of :data:`SCHEMA_VERSION`
#: (meta ``schema_additions``: how many are made).  Older code of the same schema version
#: ignores them, so they never make a database "newer" than it understands; each must keep
#: itself consistent whatever older code writes (triggers), and be idempotent (``IF NOT
#: EXISTS``).  Append, never edit; an incompatible change is a new schema version.
ADDITIONS: Final[dict[int, Callable[[sqlite3.Connection], None]]] = {
    1: _add_log_table,
    2: _add_state_mark,
}

#: A store's mark as :attr:`Store.mark` gives it (12 lower-case hex digits).
_MARK_PATTERN: Final = re.compile(r"[0-9a-f]{12}")

#: A log line of a record, only while the record exists (a line written after the record
#: was deleted would outlive it: nothing would delete it).
_LOG_INSERT: Final = (
    "INSERT INTO sandbox_log (sandbox_id, time, line) "
    "SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM sandboxes WHERE id = ?1)"
)


# --------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------


class _Cached:
    """One cached connection: the process that opened it, the file it opened (device and
    inode, to notice a database replaced or deleted since), and the lock every use of it
    holds."""

    __slots__ = (
        "closed",
        "conn",
        "cursor",
        "ident",
        "lock",
        "mark",
        "pid",
        "schema_ok",
        "writing",
    )

    def __init__(self, conn: sqlite3.Connection, pid: int, ident: tuple[int, int]) -> None:
        self.conn = conn
        #: A cursor of ``conn`` kept for the statements a lifecycle runs most (BEGIN,
        #: COMMIT, the UPDATE/INSERT/DELETE of a record, ``PRAGMA data_version``):
        #: ``conn.execute`` makes a new cursor at every call (~1 k instructions).  Used
        #: under ``lock`` only, and only for statements that return at most one row (so
        #: executing the next one never cuts another caller's rows short); the others
        #: (SELECTs of many rows, migrations) keep using ``conn.execute``.
        self.cursor = conn.cursor()
        self.pid = pid
        self.ident = ident
        #: Set (under ``lock``) when the connection is closed: a thread that was waiting for
        #: the lock then takes the database's current entry instead (Store._locked).
        self.closed = False
        #: True while a :meth:`Store._write` runs its body on this connection (under
        #: ``lock``; at most one: a nested write fails).  A transaction found open while
        #: False was left by an interrupted write (a Ctrl+C inside its clean-up): it is
        #: rolled back before the connection is used.  A flag, not a count of writes: an
        #: interrupted assignment leaves it wrong until the next write sets it again, never
        #: off by one for ever.
        self.writing = False
        #: Held for every statement and for a whole write transaction: the connection (and
        #: so its transaction) is shared by the threads of this process.  Re-entrant, so a
        #: nested write fails in sqlite ("cannot start a transaction within a
        #: transaction") instead of deadlocking here.
        self.lock = _thread.RLock()
        #: ``PRAGMA data_version`` when this connection last saw the current schema version,
        #: else None.  The value changes when ANOTHER connection commits (sqlite.org
        #: pragma.html#pragma_data_version), so an unchanged value means nobody else wrote
        #: since: the schema is still current without reading ``meta`` again.  A database
        #: replaced since is noticed by ``ident`` and gets a new connection.
        self.schema_ok: int | None = None
        #: The database's mark (meta ``state_mark``) as read with the schema when
        #: ``schema_ok`` was set (the same query), when sound; else None (Store.mark reads
        #: it then).  The same file (``ident``) keeps its mark for ever.
        self.mark: str | None = None


class _Connections:
    """The per-process connection cache: ``{database path: _Cached}`` (most recently used
    last).  ONE connection per database for all threads of the process, used under its
    lock: threads take turns in this process instead of meeting at sqlite's file lock,
    whose busy handler sleeps up to 100 ms between polls (sqlite.org
    c3ref/busy_timeout.html), and the connection's page and statement caches stay warm (a
    connection's cache is invalidated by every commit of ANOTHER connection).  Other
    processes still meet at sqlite's lock (busy timeout)."""

    def __init__(self) -> None:
        self.pid = -1
        self.entries: dict[str, _Cached] = {}
        self.lock = _thread.allocate_lock()


_connections = _Connections()
#: At most this many cached connections per process (each holds 3 file descriptors).
_CACHE_SIZE: Final = 8
#: Connections (and their kept cursors) inherited across ``fork()``: never used nor closed
#: in the child (closing could checkpoint or delete the parent's WAL); kept referenced so
#: they are never finalised there.
_ABANDONED: builtins.list[sqlite3.Connection | sqlite3.Cursor] = []


def _cache() -> dict[str, _Cached]:
    pid = os.getpid()
    if _connections.pid != pid:
        # A new process (or the first call): after fork() the parent's connections (and
        # locks some parent thread may have held at the fork) are never used here.
        for entry in _connections.entries.values():
            _ABANDONED.extend((entry.conn, entry.cursor))  # (a freed cursor resets its statement)
        _connections.entries = {}
        _connections.lock = _thread.allocate_lock()
        _connections.pid = pid
    return _connections.entries


def close_cached_connections() -> None:
    """Close this process's cached connections (tests, or before deleting a state dir).

    :class:`Store` objects stay usable: they open a new connection on their next call.
    """
    cache = _cache()
    while cache:
        _key, entry = cache.popitem()
        _close_entry(entry)


def _close_quietly(conn: sqlite3.Connection) -> None:
    try:
        conn.close()
    except sqlite3.Error:
        pass


def _close_entry(entry: _Cached) -> None:
    """Close ``entry``'s connection once nobody uses it (waits for its lock)."""
    with entry.lock:
        entry.closed = True
        _close_quietly(entry.conn)


def _busy(exc: sqlite3.Error) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


#: The connection's own busy timeout (ms): short, so that a thread waiting for ANOTHER
#: process's writer waits with this process's connection lock released (Store._locked):
#: the process's other threads -- readers above all -- keep using the connection meanwhile.
_BUSY_SLICE_MS: Final = 20


#: The page size of a database this code makes (sqlite's default is 4096).  Every commit
#: writes each page it changed to the WAL whole (a lifecycle's commits change ~4 pages
#: each: the record's leaf, the kind/state index, the log table and its index), and
#: checksums it: with 1 KiB pages a usual record (~0.9 KB) still fits its leaf and a
#: lifecycle's six commits cost ~83 k instructions fewer (docs/performance.md, session 10).
#: Larger records spill into overflow pages: no dearer in instructions, twice the WAL
#: writes (smaller ones).
_NEW_DATABASE_PAGE_SIZE: Final = 1024


def _rollback_quietly(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass


class Store:
    """The state database.  Use as a context manager, or call :meth:`close`.

    Cheap to open: one connection per (process, database), cached and reused by every
    :class:`Store` of that database in every thread of the process (PRAGMAs applied once
    per connection; a child process after ``fork()`` opens its own).  Threads take turns on
    it (each statement, and each write transaction as a whole, holds its lock); processes
    meet at sqlite's lock (one writer at a time, readers never blocked by another
    process).  ``path`` is the database file; its folder must exist.  ``timeout`` is how
    long a write waits for another writer (seconds).
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        self._setup(path, timeout)
        if self.is_current():
            return
        if not os.path.isdir(os.path.dirname(self._key)):
            raise StoreError(
                f"cannot open the state database {self._path_text}: its folder does not exist",
                remedy="create it first (hcs_sandbox.sandbox.paths.ensure_state_dir) or "
                "use open_store()",
            )
        while True:
            entry = self._entry(fresh_check=True)
            with entry.lock:
                if entry.closed:  # closed by another thread meanwhile: take the current one
                    continue
                conn = entry.conn
                # Opening (and migrating a new database) may meet another process that is
                # making the same database (before WAL, readers are blocked too): here
                # sqlite itself waits, up to the whole timeout, not one busy slice.
                try:
                    conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
                    # data_version first: a commit by another process after it (a
                    # migration, say) changes it, so the next Store() checks again.
                    seen = self._data_version(conn)
                    try:
                        version, additions, mark = self._meta_state(conn)
                    except sqlite3.Error as exc:
                        self._discard(entry)
                        raise self._error(exc, "open") from exc
                    if version != SCHEMA_VERSION or additions < SCHEMA_ADDITIONS:
                        try:
                            self._prepare(conn)
                            mark = self._meta_state(conn)[2]  # (made by the upgrade)
                        except BaseException:
                            self._discard(entry)
                            raise
                    entry.mark = mark if mark and _MARK_PATTERN.fullmatch(mark) else None
                    entry.schema_ok = seen
                    return
                finally:
                    if not entry.closed:
                        try:
                            conn.execute(f"PRAGMA busy_timeout = {_BUSY_SLICE_MS}")
                        except sqlite3.Error:
                            pass

    def _setup(self, path: str | os.PathLike[str], timeout: float) -> None:
        self._path_text = os.fspath(path)  # no Path here: pathlib costs `ls` ~4 ms to import
        self._key = os.path.abspath(path)
        self._timeout = timeout
        self._closed = False
        #: What :meth:`reread` needs to tell that the database has not changed since this
        #: store's last :meth:`update`: (the record it returned, the connection's cache
        #: entry, that connection's ``total_changes`` and the entry's ``schema_ok`` then).
        self._last: tuple[Record, _Cached, int, int | None] | None = None

    @classmethod
    def reuse(cls, path: str | os.PathLike[str], *, timeout: float = 30.0) -> Store | None:
        """A :class:`Store` of ``path`` when opening it would find nothing to check
        (:meth:`is_current`: this process's connection to this very file saw the current
        schema and no other connection has written since), else None.  Exactly the
        constructor's first step, without its fallback (the folder, the file and the schema
        checked again): for a caller that has just checked the folder itself."""
        store = cls.__new__(cls)
        store._setup(path, timeout)
        return store if store.is_current() else None

    def is_current(self) -> bool:
        """True when opening this database again would find nothing to check: this process
        has a connection to this very file (same device and inode: not deleted or replaced
        since) that saw the current schema, and no other connection has written since (its
        ``PRAGMA data_version`` is unchanged).  One ``stat`` and one PRAGMA: what a holder of
        a :class:`Store` (a ``Sandbox``) asks before each use instead of opening a new one;
        False means "open a new Store" (which checks the file and the schema again)."""
        if self._closed:
            return False
        cached = _cache().get(self._key)
        if cached is None or cached.schema_ok is None:
            return False
        lock = cached.lock
        # (not ``with``: ~1.5 k instructions more.)  The acquire inside the ``try``: a Ctrl+C
        # as it returns (CPython runs the handler as a C call returns) left the lock held
        # with no one to release it; the handler asks the lock whether this call took it
        # (as Store._locked does).
        try:
            lock.acquire()
            current = (
                not cached.closed
                and cached.ident == self._identity()
                and self._data_version(cached.cursor) == cached.schema_ok
            )
        except BaseException:
            if lock._is_owned():  # type: ignore[attr-defined]
                lock.release()
            raise
        lock.release()
        return current

    # -- lifecycle -----------------------------------------------------------------

    @property
    def mark(self) -> str:
        """This store's mark: 12 lower-case hex digits (6 random bytes) made once per
        database (addition 2) and kept in it (meta ``state_mark``).  Every new sandbox id
        ends in it (sandbox/owned.py), so that prune and reconcile tell the compute systems
        and endpoints this store made from other stores' on the same host.  It goes with
        the database: a moved state directory keeps it; a new database (a new state
        directory, or one wiped and made again) gets another.

        Read with the schema when the store is opened (the same query) and kept with this
        process's connection: no query of its own.  Raises
        :class:`~hcs_sandbox.errors.StateDatabaseError` when the database's mark is
        damaged (edited by hand)."""
        entry = _cache().get(self._key)
        if entry is not None and entry.mark is not None and not self._closed:
            return entry.mark
        return self._read_mark()

    def _read_mark(self) -> str:
        """:attr:`mark` read from the database; made first when missing (a row deleted by
        hand: made as addition 2 makes it)."""
        rows = self._read("SELECT value FROM meta WHERE key = 'state_mark'", doing="read")
        if not rows:
            self._write("write", lambda entry: _add_state_mark(entry.conn))
            rows = self._read("SELECT value FROM meta WHERE key = 'state_mark'", doing="read")
        mark = rows[0][0] if rows else None
        if not isinstance(mark, str) or not _MARK_PATTERN.fullmatch(mark):
            raise StateDatabaseError(
                f"the state database {self._path_text} is damaged: its mark (meta "
                f"state_mark) is {mark!r}, not 12 lower-case hex digits",
                remedy='delete that row (sqlite3 state.db "DELETE FROM meta WHERE key = '
                "'state_mark'\"): a new mark is made; compute systems and endpoints made "
                "under the old one are then left alone by prune unless a folder in "
                "sandboxes/ names them (docs/cli.md, prune)",
            )
        return mark

    @property
    def path(self) -> Path:
        """The database file."""
        from pathlib import Path

        return Path(self._path_text)

    def close(self) -> None:
        """Mark this store closed (idempotent).  The connection stays cached for the next
        :class:`Store` of this database (see :func:`close_cached_connections`)."""
        self._closed = True

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self._path_text!r})"

    # -- plumbing --------------------------------------------------------------------

    def _error(self, exc: sqlite3.Error, doing: str) -> StoreError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return StateDatabaseError(
                f"the state database {self._path_text} is busy: another hcs-sandbox process held "
                f"it for more than {self._timeout:g} s while trying to {doing}",
                remedy="try again; if it persists, look for a stuck hcs-sandbox process",
            )
        if isinstance(exc, sqlite3.DatabaseError) and (
            "not a database" in text or "malformed" in text or "corrupt" in text
        ):
            return StateDatabaseError(
                f"the state database {self._path_text} is damaged ({text})",
                remedy="move it aside and run again; sandboxes it listed then need to be "
                "removed by hand (hcs-sandbox prune lists leftovers)",
            )
        if "readonly" in text or "unable to open" in text or "disk I/O" in text:
            return StateDatabaseError(
                f"cannot {doing} the state database {self._path_text}: {text}",
                remedy="check permissions of the state directory (run as Administrator on "
                "Windows) and free disk space",
            )
        return StateDatabaseError(f"cannot {doing} the state database {self._path_text}: {text}")

    def _identity(self) -> tuple[int, int]:
        try:
            st = os.stat(self._key)
        except OSError:
            return (0, 0)
        return (st.st_dev, st.st_ino)

    @staticmethod
    def _data_version(conn: sqlite3.Connection | sqlite3.Cursor) -> int | None:
        try:
            row = conn.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            return None
        return int(row[0]) if row else None

    def _discard(self, entry: _Cached) -> None:
        """Drop (and close) ``entry``, this database's connection, unless another thread
        has replaced it in the cache already (then only ``entry`` is closed)."""
        cache = _cache()
        with _connections.lock:
            if cache.get(self._key) is entry:
                del cache[self._key]
        _close_entry(entry)

    def _connection(self, *, fresh_check: bool = False) -> sqlite3.Connection:
        """This process's connection to the database, opened (and set up) on first use.
        Use it under ``self._entry().lock`` (tests may use it directly from one thread)."""
        return self._entry(fresh_check=fresh_check).conn

    def _entry(self, *, fresh_check: bool = False) -> _Cached:
        """This process's cached connection to the database, opened on first use.

        ``fresh_check``: also make sure the cached connection still refers to the file at
        :attr:`path` (it may have been deleted or replaced since): one ``stat``.
        """
        if self._closed:
            raise StoreError(f"the state database {self._path_text} is closed")
        cache = _cache()
        entry = cache.get(self._key)
        if entry is not None and fresh_check and entry.ident != self._identity():
            self._discard(entry)
            entry = None
        if entry is None:
            fresh = self._open_connection()
            evicted: builtins.list[_Cached] = []
            with _connections.lock:
                entry = cache.setdefault(self._key, fresh)
                while len(cache) > _CACHE_SIZE:
                    evicted.append(cache.pop(next(iter(cache))))
            if entry is not fresh:  # another thread opened one meanwhile
                evicted.append(fresh)
            for old in evicted:
                _close_entry(old)
        elif fresh_check:
            with _connections.lock:
                if cache.get(self._key) is entry:
                    cache[self._key] = cache.pop(self._key)  # most recently used last
        return entry

    def _locked(
        self, begin: bool, doing: str, held: builtins.list[_Cached] | None = None
    ) -> _Cached:
        """This database's entry with its lock HELD (the caller releases it), after
        ``BEGIN IMMEDIATE`` on it when ``begin``.

        Waits up to ``timeout`` in all.  While another process holds the database (sqlite
        says busy after ``_BUSY_SLICE_MS``), this process's lock is released between tries,
        so its other threads are not held up.  An entry closed while this thread waited for
        its lock is replaced by the current one; a transaction left open by an interrupted
        write is rolled back first.

        ``held``: the entry is also appended to it, the last step (see :meth:`_write`).
        """
        deadline = time.monotonic() + self._timeout
        pause = 0.001
        while True:
            entry = self._entry()
            lock = entry.lock
            try:
                # In the ``try``: a Ctrl+C as ``acquire`` returns the lock (the handler runs
                # as a C call returns) left it held with no one to release it.  The handler
                # below asks the lock itself whether this call took it.
                if not lock.acquire(False) and not lock.acquire(
                    True, max(deadline - time.monotonic(), 0.0)
                ):
                    raise self._error(sqlite3.OperationalError("database is locked"), doing)
                if not entry.closed:  # (if closed: released after the ``try``, see there)
                    if not entry.writing and entry.conn.in_transaction:
                        _rollback_quietly(entry.conn)
                    if begin:
                        # Through executescript: one GIL release where a cursor's execute
                        # makes five (CPython 3.11's _sqlite module; each release under 50
                        # threads hands the GIL over: docs/performance.md, session 15).
                        # executescript COMMITs a pending transaction first: a nested write
                        # (the lock is re-entrant) must fail as BEGIN does there, not commit
                        # its caller's half-done transaction.
                        if entry.conn.in_transaction:
                            raise sqlite3.OperationalError(
                                "cannot start a transaction within a transaction"
                            )
                        entry.cursor.executescript("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                entry.lock.release()
                if not _busy(exc) or time.monotonic() >= deadline:
                    raise self._error(exc, doing) from exc
                time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
                pause = min(pause * 2, 0.05)
                continue
            except BaseException:
                # (a Ctrl+C, maybe as BEGIN returned: sqlite's write lock would stay held,
                # for every other process, until this one next used the store: review RV64;
                # or as acquire returned; or the wait for the lock timed out)
                if not lock._is_owned():  # type: ignore[attr-defined]
                    raise  # not taken here (another thread's transaction is not ours)
                # Owned: this call holds one count of it.  So too when this thread held the
                # lock before (a nested use: ``Store.__init__`` holds it while the upgrade
                # write runs, review RV67 F1): the non-blocking acquire of a re-entrant lock
                # its thread owns always succeeds, and no handler point precedes it in the
                # ``try``.  A transaction open while no write runs is this call's BEGIN (or
                # one an interrupted write left): rolled back.  Inside a write's body
                # (``writing``) it is that write's, not this call's.
                try:
                    if (
                        begin
                        and not entry.closed
                        and not entry.writing
                        and entry.conn.in_transaction
                    ):
                        _rollback_quietly(entry.conn)
                finally:
                    lock.release()
                raise
            if entry.closed:  # closed by another thread while this one waited for the lock
                # Released here, after the ``try``: a Ctrl+C as this ``release`` returns
                # must not reach the handler, which would release a second count when this
                # thread held the lock before (a nested use).
                lock.release()
                continue
            if held is not None:
                # The hand-over to the caller's try/finally (Store._write): after this
                # function's ``try``, not in it, so that a Ctrl+C as ``append`` returns is
                # cleaned up by the caller's ``finally`` alone, never by both.
                held.append(entry)
            return entry

    def _open_connection(self) -> _Cached:
        try:
            conn = sqlite3.connect(
                self._key,
                timeout=self._timeout,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=256,
            )
        except sqlite3.Error as exc:
            raise self._error(exc, "open") from exc
        try:
            # Under WAL, NORMAL syncs the WAL at checkpoints, not at every commit: a commit
            # survives the process crashing (it is in the OS's page cache); only an OS
            # crash or power loss may lose the last commits -- never corrupt the database.
            # (https://www.sqlite.org/pragma.html#pragma_synchronous, sqlite.org/wal.html)
            # connect(timeout=) set the whole timeout as the busy timeout: the first
            # statement reads the schema, which another process making the database may
            # hold for a while.  Then the short slice (see _BUSY_SLICE_MS).
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_SLICE_MS}")
        except sqlite3.Error as exc:
            conn.close()
            raise self._error(exc, "open") from exc
        return _Cached(conn, os.getpid(), self._identity())

    def _write(self, doing: str, body: Callable[[_Cached], _T]) -> _T:
        """``body(entry)`` in one write transaction (``BEGIN IMMEDIATE``): all or nothing,
        one writer at a time; its result::

            def body(entry: _Cached) -> None:
                entry.conn.execute(...)  # (entry.cursor for a statement of at most one row)

            self._write("update", body)

        The threads of this process take turns on the connection's lock (held for the
        whole transaction: the connection is shared); other processes meet at sqlite's
        lock, waiting up to ``timeout``.  An exception in the body rolls back (an sqlite
        error becomes a :class:`StoreError`); otherwise it commits.

        One frame, not a context manager: CPython runs a pending signal handler (Ctrl+C's
        KeyboardInterrupt) at a Python function's first instruction, and one at the first
        instruction of a context manager's ``__exit__`` skipped the whole exit: the lock
        stayed held by that thread and the transaction open, so later writes of the
        process failed and sqlite's write lock was held for every other process (review
        RV66 F1).  Here the commit, the ROLLBACK and the release are this function's own
        statements, nested ``try``/``finally``, and :meth:`_locked` (which takes the lock and
        begins the transaction, RV64) hands the entry over by appending it to ``held`` as
        its last step: an interrupt at any instruction of this function before the
        clean-up -- in the body, as ``commit()`` returns -- or at a handler point of the
        clean-up (the returns of ROLLBACK and of the release) rolls back a transaction
        still open and releases the lock exactly once (tests/sandbox/test_store_ctrlc.py
        interrupts each point of writes that commit and of one whose body fails).
        """
        held: builtins.list[_Cached] = []  # the entry, once its lock is this frame's to release
        try:
            try:
                entry = self._locked(True, doing, held)  # the lock held, the transaction begun
                entry.writing = True
                result = body(entry)
                # ``Connection.commit`` runs COMMIT in one GIL release where a cursor's
                # execute releases it five times (CPython 3.11's _sqlite module); each
                # release under 50 threads hands the GIL over (docs/performance.md, session
                # 15).  commit() does nothing outside a transaction, where COMMIT fails: a
                # body that swallowed an error which ended the transaction (sqlite rolls
                # back by itself on SQLITE_FULL, say) must still fail here rather than
                # report a write that never happened.
                if not entry.conn.in_transaction:
                    raise sqlite3.OperationalError("cannot commit - no transaction is active")
                entry.conn.commit()
            except sqlite3.Error as err:  # the body's or the commit's: rolled back below
                raise self._error(err, doing) from err
        finally:
            # The clean-up: statements, not calls of Python functions (a Ctrl+C lands at a
            # Python function's first instruction; one in _rollback_quietly left the
            # transaction open after the lock was released, sqlite's write lock held for
            # every other process until this one next used the store: review RV66).  Its
            # only handler points are the returns of ROLLBACK and of the release: a Ctrl+C
            # as ROLLBACK returns still reaches the release.
            if held:
                entry = held[0]
                try:
                    entry.writing = False
                    if entry.conn.in_transaction:  # not committed: failed or interrupted
                        try:
                            entry.conn.execute("ROLLBACK")
                        except sqlite3.Error:
                            pass
                finally:
                    entry.lock.release()
        return result

    def _read(
        self, sql: str, params: Iterable[Any] = (), doing: str = "read"
    ) -> builtins.list[Any]:
        deadline = time.monotonic() + self._timeout
        while True:
            entry = self._locked(False, doing)
            try:
                return entry.conn.execute(sql, tuple(params)).fetchall()
            except sqlite3.Error as exc:
                if not _busy(exc) or time.monotonic() >= deadline:
                    raise self._error(exc, doing) from exc
            finally:
                entry.lock.release()
            time.sleep(0.002)  # busy (another process's checkpoint or recovery): again

    def _schema_version(self, conn: sqlite3.Connection) -> int:
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return 0
            raise
        return int(row[0]) if row else 0

    def _schema_state(self, conn: sqlite3.Connection) -> tuple[int, int]:
        """``(schema_version, schema_additions)`` of the database (0, 0 when new)."""
        version, additions, _mark = self._meta_state(conn)
        return version, additions

    def _meta_state(self, conn: sqlite3.Connection) -> tuple[int, int, str | None]:
        """``(schema_version, schema_additions, state_mark)`` of the database (0, 0, None
        when new), in one query: the mark comes with the schema check, at no extra cost."""
        try:
            rows = conn.execute(
                "SELECT key, value FROM meta "
                "WHERE key IN ('schema_version', 'schema_additions', 'state_mark')"
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return 0, 0, None
            raise
        found = dict(rows)
        mark = found.get("state_mark")
        return (
            int(found.get("schema_version", 0)),
            int(found.get("schema_additions", 0)),
            mark if isinstance(mark, str) else None,
        )

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """WAL mode, schema migrations and additions; cheap when the database is current."""
        try:
            version, additions = self._schema_state(conn)
        except sqlite3.Error as exc:
            raise self._error(exc, "open") from exc
        if version == SCHEMA_VERSION and additions >= SCHEMA_ADDITIONS:
            return
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the state database {self._path_text} has schema version {version}, newer than "
                f"this hcs-sandbox understands ({SCHEMA_VERSION})",
                remedy="upgrade hcs-sandbox, or point HCS_SANDBOX_STATE_DIR elsewhere",
            )
        if version == 0:
            # A new database: its page size, before anything is written (an existing
            # database keeps the one it was made with; in WAL mode sqlite ignores a change:
            # sqlite.org/pragma.html#pragma_page_size).
            conn.execute(f"PRAGMA page_size = {_NEW_DATABASE_PAGE_SIZE}")
        self._set_wal(conn)
        self._write("upgrade", self._upgrade)

    def _upgrade(self, entry: _Cached) -> None:
        """:meth:`_prepare`'s write: the migrations and additions the database lacks."""
        wconn = entry.conn
        # Another process may have migrated meanwhile.
        version, additions = self._schema_state(wconn)
        if version > SCHEMA_VERSION:  # pragma: no cover - raced by a newer version
            raise StoreError(f"the state database {self._path_text} was upgraded meanwhile")
        if version == 0:
            wconn.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY NOT NULL, value TEXT)"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[target](wconn)
            wconn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(target),),
            )
        # Additions, to an existing database too, in the same transaction (whoever sees
        # the new schema_additions sees what they made).
        for target in range(additions + 1, SCHEMA_ADDITIONS + 1):
            ADDITIONS[target](wconn)
            wconn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_additions', ?)",
                (str(target),),
            )

    def _set_wal(self, conn: sqlite3.Connection) -> None:
        # Switching to WAL needs a moment with no other writer; retry within the timeout.
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL").fetchone()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise self._error(exc, "open") from exc
                time.sleep(0.01)

    def _fetch_by_id(self, conn: sqlite3.Connection, record_id: str) -> Record | None:
        row = conn.execute(f"{_SELECT} WHERE id = ?", (record_id,)).fetchone()
        return _row_to_record(row) if row else None

    @staticmethod
    def _stored_id(conn: sqlite3.Connection, record_id: str, *, exact: bool = False) -> str:
        """The id of the row ``record_id`` names: itself when canonical (the form the store
        writes) or ``exact``; else the id exactly as a row holds it (a record whose id was
        edited by hand: never taken for the sandbox whose id it is in another case, review
        RV58 F3/F4); else its canonical form (:class:`SpecError` when it is no GUID: any
        spelling of a record's id names it).  ``exact``: ``record_id`` is a stored id (the
        caller read that record), so a row that no longer holds it is gone; its canonical
        form may be another sandbox's (two removals of a hand-edited record at once: the
        second one's fallback deleted that other sandbox's record, review RV60 F1)."""
        if exact or _is_canonical(record_id):
            return record_id
        if conn.execute("SELECT 1 FROM sandboxes WHERE id = ?", (record_id,)).fetchone():
            return record_id
        return _canonical_id(record_id)

    def _require(self, conn: sqlite3.Connection, record_id: str, *, exact: bool = False) -> Record:
        record = self._fetch_by_id(conn, self._stored_id(conn, record_id, exact=exact))
        if record is None:
            raise _not_found(record_id)
        return record

    @staticmethod
    def _check_expectations(
        record: Record,
        expect_state: str | Collection[str] | None,
        expect_revision: int | None,
    ) -> None:
        # One rule: :meth:`_meets` says whether the record passes; this only words the
        # refusal (review RV48 #1: update's fast path on ``known`` trusts _meets alone).
        if Store._meets(record, expect_state, expect_revision):
            return
        if expect_state is not None:
            Store._check_state(record.id, record.name, record.state, expect_state)
        if expect_revision is not None and record.revision != expect_revision:
            raise StateConflictError(
                f"sandbox '{record.name}' changed meanwhile (revision {record.revision}, "
                f"expected {expect_revision})",
                record_id=record.id,
                expected=expect_revision,
                actual=record.revision,
                remedy="read it again and retry",
            )
        # Not reached while the wording above tests what _meets tests; if they ever drift,
        # still a refusal, never a write.
        raise StateConflictError(  # pragma: no cover
            f"sandbox '{record.name}' changed meanwhile",
            record_id=record.id,
            expected=(expect_state, expect_revision),
            actual=(record.state, record.revision),
            remedy="read it again and retry",
        )

    @staticmethod
    def _check_state(
        record_id: str, name: str, state: str, expect_state: str | Collection[str]
    ) -> None:
        allowed = _allowed_states(expect_state)
        if state not in allowed:
            wanted = " or ".join(repr(s) for s in allowed)
            raise StateConflictError(
                f"sandbox '{name}' is {state!r}, expected {wanted}",
                record_id=record_id,
                expected=allowed,
                actual=state,
                remedy="another process changed it; check it with "
                f"'hcs-sandbox inspect {name}' and try again",
            )

    @staticmethod
    def _name_taken(conn: sqlite3.Connection, name: str, except_id: str | None = None) -> None:
        row = conn.execute(
            "SELECT id, name, state FROM sandboxes WHERE name = ?", (name,)
        ).fetchone()
        if row is not None and row[0] != except_id:
            raise NameInUseError(
                f"the name '{name}' is already used by sandbox {row[0]} ('{row[1]}', {row[2]})",
                remedy=_RM_REMEDY.format(name=row[1]),
            )

    # -- public API ------------------------------------------------------------------

    def reserve(
        self,
        name: str | None,
        id: str | None = None,
        spec: Mapping[str, Any] | None = None,
        *,
        kind: str = "sandbox",
        state: str = "creating",
        labels: Mapping[str, str] | None = None,
        persistent: bool = False,
        system_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
        files: Iterable[str] = (),
        endpoint_ids: Iterable[str] = (),
        owner_pid: int | None = None,
        owner_host: str | None = None,
    ) -> Record:
        """Atomically take ``name`` for a new record and return it.

        ``name`` None: a generated ``adjective_noun`` name (retried on collision).
        ``id`` None: a new GUID.  ``system_id`` defaults to ``id``.  Owner defaults to this
        process and host.  Exactly one of many concurrent reservations of one name wins;
        the others raise :class:`NameInUseError`.  A duplicate id raises :class:`StoreError`.
        """
        if id is not None:
            record_id = _canonical_id(id)
        else:
            import uuid  # lazily (see _canonical_id), and only to make an id

            record_id = str(uuid.uuid4())
        _check_choice(kind, KINDS, "kind")
        _check_choice(state, STATES, "state")
        if name is not None:
            validate_name(name)
        spec_text = _dump_object(spec, "the sandbox spec")
        pid = os.getpid() if owner_pid is None else owner_pid
        host = _hostname() if owner_host is None else owner_host
        files_text = _dump_strings(files, "files")
        endpoints_text = _dump_strings(endpoint_ids, "endpoint ids")
        labels_text = _dump_labels(labels)
        system_id = _checked_system_id(system_id) if system_id is not None else record_id
        extra_text = _dump_object(extra, "extra")
        candidate = ""
        now = 0.0

        def insert(entry: _Cached) -> None:
            try:
                # The id (PRIMARY KEY) and the name (UNIQUE) are checked by the INSERT
                # itself; only when it is refused are they looked up, in this transaction
                # (a refused statement is undone, the transaction stays open), for the same
                # errors as before, in the same order.
                entry.cursor.execute(
                    _INSERT,  # the columns in _INSERT_COLUMNS order
                    (
                        record_id, candidate, kind, state, spec_text, pid, host,
                        files_text, endpoints_text, labels_text,
                        1 if persistent else 0, system_id, extra_text, now, now,
                    ),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                self._refused_reservation(entry.conn, record_id, candidate)
                raise

        for attempt in range(100):
            candidate = name if name is not None else generate_name(attempt)
            now = time.time()
            try:
                self._write("reserve a name in", insert)
            except NameInUseError:
                if name is not None:
                    raise
                continue
            # The new record without reading it back (as update does): the row is exactly
            # what was just inserted plus the columns' defaults (started_at NULL, revision
            # 1); JSON columns decoded from the text just written (fresh objects, as a read
            # gives).
            return _record(
                record_id,
                candidate,
                kind,
                state,
                None,
                spec_text,
                pid,
                host,
                tuple(_loads(files_text)),
                tuple(_loads(endpoints_text)),
                _loads(labels_text),
                bool(persistent),
                system_id,
                _loads(extra_text),
                now,
                None,
                now,
                1,
            )
        raise StoreError(  # pragma: no cover - 100 random collisions in a row
            "could not generate a free sandbox name after 100 attempts",
            remedy="give the sandbox a name",
        )

    def _refused_reservation(self, conn: sqlite3.Connection, record_id: str, name: str) -> None:
        """Why an INSERT of a new record was refused: a :class:`StoreError` for an id in
        use, else a :class:`NameInUseError` for a name in use; returns for anything else
        (the caller re-raises sqlite's error)."""
        existing = conn.execute("SELECT name FROM sandboxes WHERE id = ?", (record_id,)).fetchone()
        if existing is not None:
            raise StoreError(
                f"a sandbox with id {record_id} already exists ('{existing[0]}')",
                remedy="use a new id (omit it to get a fresh GUID)",
            )
        self._name_taken(conn, name)

    def get(self, name_or_id: str, *, kind: str | None = None) -> Record:
        """The record with this exact id, else this name (any case), else a unique id prefix;
        a key with the shape of an id (``paths.reads_as_id``: 8 or more hex digits as an id
        starts, what ``ls`` prints, a full id, 32 hex digits) is tried as an id and an id
        prefix before it is tried as a name; any other key is a name first.
        (An id in another form than the store's, upper case or braces, names the row that
        holds it exactly so first, then the record with its canonical form; text that is
        neither a GUID nor a name, a row whose id holds exactly that: ids edited by hand.)

        Raises :class:`SandboxNotFoundError` when nothing matches or a prefix is ambiguous.
        ``kind`` restricts the search to one kind.
        """
        key = (name_or_id or "").strip()
        if not key:
            raise SandboxNotFoundError(
                "no sandbox name or id given", remedy="list sandboxes with 'hcs-sandbox ls -a'"
            )
        kind_sql, kind_params = ("", []) if kind is None else (" AND kind = ?", [kind])
        # A key with the shape of an id (what `ls` prints, a GUID) is an id and an id prefix
        # before it is a name, any other key a name first: a name never shadows an id
        # (review F2: `stop $(hcs-sandbox ls -q)` reached the sandbox NAMED like another's
        # short id).  A new name of that shape is refused (spec.check_new_name: the same
        # function); one given before that rule is reached by name only while no id starts
        # with it, and by its id always.
        id_first = _reads_as_id(key)
        if not id_first:
            rows = self._read(f"{_SELECT} WHERE name = ?{kind_sql}", [key, *kind_params])
            if rows:
                return _row_to_record(rows[0])
        exact: str | None
        if _is_canonical(key):
            exact = key
        else:
            import uuid  # lazily (see _canonical_id)

            try:
                exact = str(uuid.UUID(key))
            except ValueError:
                exact = None
            if exact is not None:
                # A GUID in another form (upper case, braces): a row holding it exactly so
                # (an id edited by hand) is that one, never the sandbox whose id it is in
                # the store's form (review RV58 F4).
                rows = self._read(f"{_SELECT} WHERE id = ?{kind_sql}", [key, *kind_params])
                if rows:
                    return _row_to_record(rows[0])
        if exact is not None:
            rows = self._read(f"{_SELECT} WHERE id = ?{kind_sql}", [exact, *kind_params])
            if rows:
                return _row_to_record(rows[0])
        if exact is None:  # no GUID, no name: an id that is no GUID (edited by hand)
            rows = self._read(f"{_SELECT} WHERE id = ?{kind_sql}", [key, *kind_params])
            if rows:
                return _row_to_record(rows[0])
        prefix = key.replace("-", "").lower()
        if prefix and _HEX_PREFIX.fullmatch(key):
            rows = self._read(
                f"{_SELECT} WHERE replace(id, '-', '') GLOB ?{kind_sql} "
                "ORDER BY created_at LIMIT 6",
                [prefix + "*", *kind_params],
            )
            if len(rows) == 1:
                return _row_to_record(rows[0])
            if rows:
                matches = ", ".join(f"{r[1]} ({r[0]})" for r in rows[:5])
                more = ", ..." if len(rows) > 5 else ""
                raise SandboxNotFoundError(
                    f"'{key}' is ambiguous: it starts the id of several sandboxes: {matches}{more}",
                    remedy="give more characters of the id, or the name",
                )
        if id_first:  # no id starts with it: a name given before names of this shape were refused
            rows = self._read(f"{_SELECT} WHERE name = ?{kind_sql}", [key, *kind_params])
            if rows:
                return _row_to_record(rows[0])
        raise SandboxNotFoundError(
            f"no sandbox named or with id '{key}'",
            remedy="list sandboxes with 'hcs-sandbox ls -a'",
        )

    def list(
        self,
        *,
        all: bool = True,
        labels: Mapping[str, str | None] | None = None,
        kind: str | None = "sandbox",
        states: Collection[str] | None = None,
    ) -> builtins.list[Record]:
        """Records in creation order.

        ``all=False``: only :data:`ACTIVE_STATES`.  ``states``: only these states.
        ``labels``: every key must be present, with the given value (``None``: any value).
        ``kind``: only that kind (default ``"sandbox"``); ``None``: every kind.
        """
        where: builtins.list[str] = []
        params: builtins.list[Any] = []
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        wanted = None if states is None else tuple(states)
        if not all:
            base = ACTIVE_STATES if wanted is None else wanted
            wanted = tuple(s for s in base if s in ACTIVE_STATES)
        if wanted is not None:
            where.append(f"state IN ({', '.join('?' for _ in wanted)})" if wanted else "0")
            params.extend(wanted)
        sql = _SELECT + (f" WHERE {' AND '.join(where)}" if where else "")
        rows = self._read(sql + " ORDER BY created_at, name", params, "list")
        records = [_row_to_record(r) for r in rows]
        if labels:
            records = [r for r in records if _labels_match(r.labels, labels)]
        return records

    def update(
        self,
        id: str,
        *,
        expect_state: str | Collection[str] | None = None,
        expect_revision: int | None = None,
        merge_extra: Mapping[str, Any] | None = None,
        log_line: str | None = None,
        known: Record | None = None,
        **fields: Any,
    ) -> Record:
        """Change fields of one record in one transaction and return the new record.

        Fields: ``name, kind, state, spec, owner_pid, owner_host, files, endpoint_ids,
        labels, persistent, system_id, extra, started_at``.  ``expect_state`` /
        ``expect_revision`` make it a compare-and-set (:class:`StateConflictError` when the
        record no longer matches).  ``merge_extra`` updates keys of ``extra`` in place
        (a ``None`` value deletes the key); on a record whose extra could not be read
        (:attr:`Record.damaged`) the stored text is kept as it is and ``merge_extra`` is not
        applied (the other fields are written).  ``log_line``: a line of the record's lifecycle
        log that reports this change, written in the same transaction (:meth:`log_lines`).
        ``known``: this record as the caller last read it (or got it from a write), to skip
        reading it again when it is unchanged: the UPDATE then also requires the row's
        ``revision``, ``updated_at`` and ``created_at`` to be ``known``'s (every write
        changes the first two, so the row is ``known``: see :meth:`_apply_guarded`); when
        they differ (or ``known`` fails the expectations), the record is read and checked
        as without ``known``.  Same outcome either way.
        Raises :class:`SandboxNotFoundError` when gone.
        """
        fixed = _field_values(fields)
        if log_line is not None and not isinstance(log_line, str):
            raise StoreError(f"a log line must be text, not {type(log_line).__name__}")
        if known is not None and known.id != id and known.id != _canonical_id(id):
            known = None  # (``known.id`` is canonical: an equal ``id`` needs no check)

        def change(entry: _Cached) -> Record:
            conn = entry.conn
            cursor = entry.cursor
            new: Record | None = None
            if known is not None and self._meets(known, expect_state, expect_revision):
                values = self._values_for(conn, known, fixed, merge_extra)
                new = self._apply_guarded(cursor, known, values)
            if new is None:
                # ``known`` read as ``id``: that spelling is the stored one (RV60 F1).
                record = self._require(conn, id, exact=known is not None and known.id == id)
                self._check_expectations(record, expect_state, expect_revision)
                values = self._values_for(conn, record, fixed, merge_extra)
                new = self._apply(cursor, record, values)
            if log_line is not None:  # the record exists: it was just updated
                cursor.execute(
                    "INSERT INTO sandbox_log (sandbox_id, time, line) VALUES (?, ?, ?)",
                    (new.id, new.updated_at, log_line),
                )
            self._last = (new, entry, conn.total_changes, entry.schema_ok)
            return new

        return self._write("update", change)

    def reread(self, known: Record) -> Record:
        """The record as stored now (what ``get(known.id)`` returns): ``known`` itself when
        it is the record this store's last :meth:`update` returned and nothing has been
        written to the database since, by any connection, else read again.

        "Nothing written since" is two facts checked under the connection's lock: this
        process's connection (the one every :class:`Store` and thread of the process
        shares) made no change (its ``total_changes``, which counts every row its INSERT,
        UPDATE and DELETE statements changed, triggers included, is the same), and no
        other connection committed since the connection last saw the schema before that
        update (``PRAGMA data_version`` still equals the entry's ``schema_ok`` of then, as
        in :meth:`is_current`).  One PRAGMA instead of a SELECT and the decoding of the
        whole record (a third of a write's instructions)."""
        last = self._last
        if last is not None and last[0] is known and last[3] is not None:
            entry = self._locked(False, "read")
            try:
                if (
                    entry is last[1]
                    and entry.conn.total_changes == last[2]
                    and self._data_version(entry.cursor) == last[3]
                ):
                    return known
            finally:
                entry.lock.release()
        return self.get(known.id)

    def reread_if_current(self, known: Record) -> Record | None:
        """:meth:`is_current` and then :meth:`reread` of ``known`` as one call: None when
        this store is not current (the caller opens a new one, as after ``is_current()``
        False), else what ``reread(known)`` gives.  The file's identity, one ``PRAGMA
        data_version`` (compared with both the schema check's and the last update's) and
        the connection's lock once, instead of twice each (what a :class:`Sandbox`'s start
        and stop ask before acting on the record they hold).

        Keep in step with :meth:`is_current` and :meth:`reread`: it must answer None
        whenever ``is_current()`` would say False.  One difference: it takes the lock as
        :meth:`reread` does (``_locked``: a timed wait that can raise "database is locked"),
        where ``is_current`` waits plainly (review RV48 #2)."""
        if self._closed:
            return None
        cached = _cache().get(self._key)
        if cached is None or cached.schema_ok is None:
            return None
        entry = self._locked(False, "read")
        try:
            if entry is not cached or entry.ident != self._identity():
                return None
            version = self._data_version(entry.cursor)
            if version is None or version != entry.schema_ok:
                return None
            last = self._last
            if (
                last is not None
                and last[0] is known
                and last[1] is entry
                and entry.conn.total_changes == last[2]
                and version == last[3]
            ):
                return known
        finally:
            entry.lock.release()
        return self.get(known.id)

    @staticmethod
    def _meets(
        record: Record,
        expect_state: str | Collection[str] | None,
        expect_revision: int | None,
    ) -> bool:
        """True when ``record`` meets the expectations: THE compare-and-set rule
        (:meth:`_check_expectations` asks it first and only words a refusal)."""
        return (expect_state is None or record.state in _allowed_states(expect_state)) and (
            expect_revision is None or record.revision == expect_revision
        )

    def _values_for(
        self,
        conn: sqlite3.Connection,
        record: Record,
        fixed: Mapping[str, Any],
        merge_extra: Mapping[str, Any] | None,
    ) -> Mapping[str, Any]:
        """:meth:`update`'s column values for ``record`` (``merge_extra`` applied to its
        ``extra``); the new name is checked."""
        if "name" in fixed:
            self._name_taken(conn, fixed["name"], except_id=record.id)
        if not merge_extra:
            return fixed  # (never changed by the caller: a copy would be waste)
        if "extra" not in fixed and record._damage and record.damaged_field("extra"):
            # Its stored text could not be read: kept as it is (for a person to read or
            # repair), not replaced by the merged keys alone (Record.damaged).
            return fixed
        values = dict(fixed)
        base = json.loads(values["extra"]) if "extra" in values else dict(record.extra)
        for key, value in merge_extra.items():
            if value is None:
                base.pop(key, None)
            else:
                base[key] = value
        values["extra"] = _dump(base, "extra")  # (a dict: what _dump_object would check)
        return values

    def add_log_line(self, id: str, line: str) -> bool:
        """Append ``line`` to the record's lifecycle log (its own transaction).  False (and
        nothing written) when the record is gone: lines go with their record."""
        if not isinstance(line, str):
            raise StoreError(f"a log line must be text, not {type(line).__name__}")

        def append(entry: _Cached) -> bool:
            conn = entry.conn
            cursor = conn.execute(_LOG_INSERT, (self._stored_id(conn, id), time.time(), line))
            return cursor.rowcount > 0

        return self._write("write the log in", append)

    def log_lines(self, id: str) -> builtins.list[tuple[float, str]]:
        """The record's lifecycle log: ``(time, line)`` in the order written; empty when the
        record (and so its log) is gone."""
        rows = self._read(
            "SELECT time, line FROM sandbox_log WHERE sandbox_id = ? ORDER BY rowid",
            (_canonical_id(id),),
            "read the log in",
        )
        return [(float(t), str(line)) for t, line in rows]

    def _apply(
        self, conn: sqlite3.Connection | sqlite3.Cursor, record: Record, values: Mapping[str, Any]
    ) -> Record:
        now = time.time()
        conn.execute(_update_sql(tuple(values), False), [*values.values(), now, record.id])
        # The new record, without reading it back: ``record`` was read in this same write
        # transaction (BEGIN IMMEDIATE: no other writer since), so the row is now exactly
        # ``record`` with ``values``, ``updated_at = now`` and the next revision.  JSON
        # columns are decoded from the text just written (fresh objects, as a read gives).
        return _changed(record, values, now)

    def _apply_guarded(
        self, conn: sqlite3.Connection | sqlite3.Cursor, record: Record, values: Mapping[str, Any]
    ) -> Record | None:
        """:meth:`_apply` only if the row is still ``record``; else nothing is written (None).

        Every write adds one to ``revision`` and sets ``updated_at``, so a row with
        ``record``'s revision, ``updated_at`` and ``created_at`` is ``record``, unless the
        record was deleted and made again with the same id at the same clock reading
        (the library never reuses an id: each create takes a new ``uuid4``; note that
        ``time.time()`` ticks only every ~15.6 ms on Windows before Python 3.13)."""
        now = time.time()
        cursor = conn.execute(
            _update_sql(tuple(values), True),
            [
                *values.values(),
                now,
                record.id,
                record.revision,
                record.updated_at,
                record.created_at,
            ],
        )
        if cursor.rowcount != 1:
            return None
        return _changed(record, values, now)

    def _edit_lists(self, id: str, edits: Mapping[str, Iterable[str]], add: bool) -> Record:
        """Add or remove entries of the ``files``/``endpoint_ids`` lists in ONE transaction."""
        wanted = {column: builtins.list(items) for column, items in edits.items()}
        for column, items in wanted.items():
            if any(not isinstance(i, str) or not i for i in items):
                raise StoreError(f"cannot record an empty {column} entry")

        def edit(entry: _Cached) -> Record:
            conn = entry.conn
            record = self._require(conn, id)
            values: dict[str, str] = {}
            for column, items in wanted.items():
                problem = record.damaged_field(column) if add and record._damage else None
                if problem is not None:
                    # Written ahead of making the resource: a list that cannot be read
                    # cannot be added to (the new entry would replace what it holds).
                    raise StoreError(
                        f"the {column} field of sandbox {record.name!r} in the state "
                        f"database is damaged ({problem})",
                        remedy=f"remove the sandbox: hcs-sandbox rm -f {record.id}",
                    )
                current = builtins.list(getattr(record, column))
                changed = False
                for item in items:
                    if add and item not in current:
                        current.append(item)
                        changed = True
                    elif not add and item in current:
                        current.remove(item)
                        changed = True
                if changed:
                    values[column] = _dump(current, column)
            if not values:
                return record
            return self._apply(conn, record, values)

        return self._write("update", edit)

    def _edit_list(self, id: str, column: str, item: str, add: bool) -> Record:
        if not isinstance(item, str) or not item:
            raise StoreError(f"cannot record an empty {column} entry")
        return self._edit_lists(id, {column: (item,)}, add)

    def add_resources(
        self,
        id: str,
        *,
        files: Iterable[str | os.PathLike[str]] = (),
        endpoint_ids: Iterable[str] = (),
    ) -> Record:
        """Record several files and endpoint ids at once (one transaction), BEFORE creating
        any of them (idempotent).  Same guarantee as :meth:`add_file` for each: a crash
        after this leaves every one of them listed, created or not (``prune`` and
        ``remove`` treat a listed resource that does not exist as already released)."""
        return self._edit_lists(
            id,
            {"files": [os.fspath(f) for f in files], "endpoint_ids": builtins.list(endpoint_ids)},
            True,
        )

    def remove_resources(
        self,
        id: str,
        *,
        files: Iterable[str | os.PathLike[str]] = (),
        endpoint_ids: Iterable[str] = (),
    ) -> Record:
        """Forget several files and endpoint ids at once (one transaction), AFTER deleting
        all of them (idempotent)."""
        return self._edit_lists(
            id,
            {"files": [os.fspath(f) for f in files], "endpoint_ids": builtins.list(endpoint_ids)},
            False,
        )

    def add_file(self, id: str, path: str | os.PathLike[str]) -> Record:
        """Record a file the sandbox owns, BEFORE creating it (idempotent)."""
        return self._edit_list(id, "files", os.fspath(path), add=True)

    def remove_file(self, id: str, path: str | os.PathLike[str]) -> Record:
        """Forget a file AFTER deleting it (idempotent)."""
        return self._edit_list(id, "files", os.fspath(path), add=False)

    def add_endpoint(self, id: str, endpoint_id: str) -> Record:
        """Record an HCN endpoint id, BEFORE creating the endpoint (idempotent)."""
        return self._edit_list(id, "endpoint_ids", endpoint_id, add=True)

    def remove_endpoint(self, id: str, endpoint_id: str) -> Record:
        """Forget an HCN endpoint id AFTER deleting the endpoint (idempotent)."""
        return self._edit_list(id, "endpoint_ids", endpoint_id, add=False)

    def claim(
        self,
        *,
        kind: str,
        state: str,
        new_state: str,
        extra_match: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> Record | None:
        """Atomically take the oldest record of ``kind`` in ``state`` (warm pools).

        Only records whose ``extra`` contains every item of ``extra_match`` qualify, and
        only sound ones: a record with a damaged field (:attr:`Record.damaged`, its spec
        included) is never handed out (a member made from it could not be started, and
        its claim would write over what a person may still read), but left as it is for
        ``prune`` or ``rm -f`` (sandbox/damage.py).  The winner moves to ``new_state``
        (plus ``fields``, as in :meth:`update`) in the same transaction, so two processes
        never claim the same record.  None when none is free.
        """
        _check_choice(new_state, STATES, "state")
        values = _field_values({**fields, "state": new_state})

        def claim(entry: _Cached) -> Record | None:
            conn = entry.conn
            rows = conn.execute(
                f"{_SELECT} WHERE kind = ? AND state = ? ORDER BY created_at", (kind, state)
            ).fetchall()
            for row in rows:
                record = _row_to_record(row)
                if extra_match and any(record.extra.get(k) != v for k, v in extra_match.items()):
                    continue
                if record.has_damaged_fields or record.damaged_field("spec") is not None:
                    continue  # (the spec is decoded here: the claimant reads it next)
                if "name" in values:
                    self._name_taken(conn, values["name"], except_id=record.id)
                return self._apply(conn, record, values)
            return None

        return self._write("claim a record in", claim)

    def delete(
        self,
        id: str,
        *,
        expect_state: str | Collection[str] | None = None,
        missing_ok: bool = False,
        exact: bool = False,
    ) -> None:
        """Delete a record (after its resources are gone).  Compare-and-set with
        ``expect_state``; :class:`SandboxNotFoundError` when absent unless ``missing_ok``.
        ``exact``: ``id`` is the id as stored (the caller read the record), never taken for
        another spelling of it (:meth:`_stored_id`, review RV60 F1)."""

        def remove(entry: _Cached) -> None:
            conn = entry.conn
            record_id = self._stored_id(conn, id, exact=exact)
            if expect_state is None:
                # Nothing to check first: the DELETE itself tells whether the record was there.
                cursor = entry.cursor
                cursor.execute("DELETE FROM sandboxes WHERE id = ?", (record_id,))
                if cursor.rowcount == 0 and not missing_ok:
                    raise _not_found(id)
                return
            # Only what the checks need (not the whole record, decoded).
            row = conn.execute(
                "SELECT id, name, state FROM sandboxes WHERE id = ?", (record_id,)
            ).fetchone()
            if row is None:
                if missing_ok:
                    return
                raise _not_found(id)
            self._check_state(row[0], row[1], row[2], expect_state)
            conn.execute("DELETE FROM sandboxes WHERE id = ?", (row[0],))

        self._write("delete from", remove)

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: ``"ok"`` when the database is sound (doctor, tests)."""
        rows = self._read("PRAGMA integrity_check", (), "check")
        return "; ".join(str(r[0]) for r in rows)

    @property
    def schema_version(self) -> int:
        """The schema version of the open database."""
        entry = self._locked(False, "read")
        try:
            return self._schema_version(entry.conn)
        except sqlite3.Error as exc:
            raise self._error(exc, "read") from exc
        finally:
            entry.lock.release()

    def summaries(self, *, all: bool = True, kind: str = "sandbox") -> builtins.list[Summary]:
        """What a listing shows of each record (:class:`Summary`), in :meth:`list`'s order and
        with its ``all``/``kind`` selection, without decoding whole records: sqlite's JSON
        functions pick the few spec values out, and the extra is read as the record reads
        it (``ls`` with 1,000 records: ~9.5 ms instead of ~13 ms from whole records, session
        15; ~6.3 ms before the spec's numbers and the extra were checked as the record's
        reader checks them).  Without them (sqlite built without JSON1 or json_tree): from
        :meth:`list`.
        """
        global _json_functions
        if _json_functions:
            where = " WHERE kind = ?"
            params = (kind,) if all else (kind, *ACTIVE_STATES)
            if not all:
                where += f" AND state IN ({', '.join('?' for _ in ACTIVE_STATES)})"
            try:
                rows = self._read(_SUMMARY_SELECT + where + _SUMMARY_ORDER, params, "list")
            except StoreError as exc:
                cause = exc.__cause__
                if not (
                    isinstance(cause, sqlite3.OperationalError)
                    and (
                        "no such function" in str(cause) or "no such table: json_tree" in str(cause)
                    )
                ):
                    raise
                _json_functions = False
            else:
                return [_row_to_summary(row) for row in rows]
        return [Summary.of(record) for record in self.list(all=all, kind=kind)]


def _allowed_states(expect_state: str | Collection[str]) -> tuple[str, ...]:
    """The states an ``expect_state=`` argument allows (the rule of compare-and-set)."""
    return (expect_state,) if isinstance(expect_state, str) else tuple(expect_state)


def _not_found(record_id: str) -> SandboxNotFoundError:
    return SandboxNotFoundError(
        f"no sandbox with id {record_id}",
        remedy="it was removed meanwhile; list sandboxes with 'hcs-sandbox ls -a'",
    )


def _labels_match(have: Mapping[str, str], want: Mapping[str, str | None]) -> bool:
    """True when every wanted label is present (with the wanted value unless that is None)."""
    for key, value in want.items():
        if key not in have or (value is not None and have[key] != value):
            return False
    return True


def open_store(state_dir: str | os.PathLike[str] | None = None, *, timeout: float = 30.0) -> Store:
    """Open (creating if needed) the store in ``state_dir`` (default: the state directory).

    Creates and protects the directory first (:func:`~hcs_sandbox.sandbox.paths.ensure_state_dir`).
    """
    from hcs_sandbox.sandbox.paths import DATABASE_NAME, ensure_state_dir_text

    directory = ensure_state_dir_text(state_dir)
    return Store(os.path.join(directory, DATABASE_NAME), timeout=timeout)


def open_existing_store(
    state_dir: str | os.PathLike[str] | None = None, *, timeout: float = 30.0
) -> Store | None:
    """:func:`open_store` for a read: None when the state directory does not exist (nothing
    is created: :func:`~hcs_sandbox.sandbox.paths.existing_state_dir_text`)."""
    from hcs_sandbox.sandbox.paths import DATABASE_NAME, existing_state_dir_text

    directory = existing_state_dir_text(state_dir)
    if directory is None:
        return None
    return Store(os.path.join(directory, DATABASE_NAME), timeout=timeout)


# --------------------------------------------------------------------------------------
# Summaries: what a listing (``hcs-sandbox ls``) shows of a record
# --------------------------------------------------------------------------------------

#: False once sqlite said it has no JSON functions (then summaries come from whole records).
_json_functions = True

# The spec's ``base``, ``network`` and ``ports`` as ONE JSON array (their exact values, of
# any JSON type; null when missing or when the spec is not an object; NULL for all three
# when the spec is damaged as :attr:`Record.spec` reads it: not JSON text (a BLOB, even of
# JSON, is damage: Record.spec refuses it too; review RV52 F1), or holding a number no
# float holds (``1e999``: sqlite's ``json_valid`` accepts it, the record's reader does not,
# _finite_float; json_tree's ``real`` atoms are the numbers with a fraction or exponent,
# those Python reads as floats), so that the listing shows a damaged spec's values as
# unknown, as ``inspect`` does: a damaged record is listed, not the whole listing refused,
# so that it can be seen and removed: review RV51 F4; CASE evaluates its THEN only when
# its WHEN holds, so json_tree never sees text that is not JSON).  An integer too large
# for a float (more than 308 digits: its atom is infinite) may still be one Python reads
# (up to sys.int_max_str_digits, 4,300 by default) or not: such a spec (rare) comes back
# whole, marked with _WHOLE_SPEC, and is read as the record's reader reads it
# (_row_to_summary; review RV62 F4).  (The infinite atom is tested first: as fast as the
# test of ``real`` alone was; a string's atom that reads as infinite is not a number.)  And
# the extra's text:
# read as the record's reader reads it (_row_to_summary), so that a damaged extra's ip is
# unknown in the listing too (review RV54 F2: sqlite's json_extract of a damaged extra
# would refuse the whole listing with "malformed JSON").
_SUMMARY_SELECT: Final = (
    "SELECT id, name, kind, state, persistent, system_id, labels, created_at, started_at, "
    "CASE WHEN typeof(spec) = 'text' AND json_valid(spec) THEN CASE (SELECT max(type = 'real') "
    "FROM json_tree(spec) WHERE abs(atom) > 1.7976931348623157e308 "
    "AND type IN ('real', 'integer')) WHEN 1 THEN NULL WHEN 0 THEN '!' || spec "
    "ELSE json_extract(spec, '$.base', '$.network', '$.ports') END END, "
    "extra FROM sandboxes"
)
_SUMMARY_ORDER: Final = " ORDER BY created_at, name"  # as Store.list
#: The mark of a spec the listing returns whole, to be read in Python (_SUMMARY_SELECT);
#: json_extract's array of the three values never starts with it.
_WHOLE_SPEC: Final = "!"


def _row_to_summary(row: tuple[Any, ...]) -> Summary:
    id_, name, kind, state, persistent, system_id, labels, created_at, started_at = row[:9]
    spec_values, extra = row[9:]
    if type(created_at) is not float or (started_at is not None and type(started_at) is not float):
        # (damaged, as the record reads them: _row_to_record, _SCALARS)
        created_at = created_at if type(created_at) is float else 0.0
        started_at = started_at if type(started_at) is float else None
    if (system_id != id_ or (id_ not in _SOUND_IDS and not _sound_id(id_))) and not (
        _is_system_id(system_id)
    ):  # (damaged, as the record reads it: "", unknown; the same shortcut as the reader's)
        system_id = ""
    if spec_values is None:
        base, network, ports = None, None, None
    elif spec_values[0] == _WHOLE_SPEC:  # (rare: see _SUMMARY_SELECT)
        base, network, ports = _whole_spec_values(spec_values[1:])
    else:
        base, network, ports = _loads(spec_values)
    # (read leniently, as Record's: damaged labels are unknown, None; a damaged extra is
    # empty, its ip and host unknown)
    labels_value = _summary_object(labels, "labels")
    extra_value = _summary_object(extra, "extra") or {}
    return Summary(
        id_,
        name,
        kind,
        state,
        bool(persistent),
        system_id,
        labels_value,
        created_at,
        started_at,
        base,
        network,
        ports,
        extra_value.get("ip"),
        extra_value.get("hcs_host"),  # (a string or None: _EXTRA_KINDS)
        extra_value.get("ports"),
    )


def _summary_object(text: Any, column: str) -> dict[str, Any] | None:
    """``column``'s object as a listing reads it, decoded once: None when it is damaged
    (:func:`_problem`'s verdict, without decoding it twice as :func:`_read_column` does)."""
    try:
        value = _loads(text)
    except _UNDECODABLE:
        return None
    if type(value) is not dict or (value and _values_problem(column, value) is not None):
        return None
    return value


def _whole_spec_values(text: str) -> tuple[Any, Any, Any]:
    """A spec's ``base``, ``network`` and ``ports`` read from its whole text as
    :attr:`Record.spec` reads it (None for all three when it is damaged, as
    :meth:`Summary.of` shows it)."""
    try:
        spec = _loads_spec(text)
    except _UNDECODABLE:
        return None, None, None
    if type(spec) is not dict:
        return None, None, None
    return spec.get("base"), spec.get("network"), spec.get("ports")


class Summary(Frozen):
    """What a listing shows of a :class:`Record` (:meth:`Store.summaries`): its plain
    fields, and values from its JSON fields: ``spec_base``, ``spec_network`` and
    ``spec_ports`` (``record.spec.get(...)``; None when missing or when the spec is not a
    dict), ``extra_ip`` (``record.extra.get("ip")``), ``extra_host`` (the HCS host it was
    made through, ``record.extra.get("hcs_host")`` when a string) and ``extra_ports`` (the
    ports added with ``publish``, ``record.extra.get("ports")``; :attr:`ports` lists all).
    ``labels`` is None when the stored labels are damaged (:attr:`Record.damaged`:
    unknown).  Immutable, like :class:`Record`."""

    _FIELDS = (
        "id",
        "name",
        "kind",
        "state",
        "persistent",
        "system_id",
        "labels",
        "created_at",
        "started_at",
        "spec_base",
        "spec_network",
        "spec_ports",
        "extra_ip",
        "extra_host",
        "extra_ports",
    )
    __slots__ = _FIELDS

    id: str
    name: str
    kind: str
    state: str
    persistent: bool
    system_id: str
    labels: dict[str, str] | None
    created_at: float
    started_at: float | None
    spec_base: Any
    spec_network: Any
    spec_ports: Any
    extra_ip: Any
    extra_host: str | None
    extra_ports: Any

    def __init__(  # noqa: PLR0917 - positional: one per row of a listing
        self,
        id: str,
        name: str,
        kind: str,
        state: str,
        persistent: bool,
        system_id: str,
        labels: dict[str, str] | None,
        created_at: float,
        started_at: float | None,
        spec_base: Any,
        spec_network: Any,
        spec_ports: Any,
        extra_ip: Any,
        extra_host: str | None = None,
        extra_ports: Any = None,
    ) -> None:
        put = object.__setattr__
        put(self, "id", id)
        put(self, "name", name)
        put(self, "kind", kind)
        put(self, "state", state)
        put(self, "persistent", persistent)
        put(self, "system_id", system_id)
        put(self, "labels", labels)
        put(self, "created_at", created_at)
        put(self, "started_at", started_at)
        put(self, "spec_base", spec_base)
        put(self, "spec_network", spec_network)
        put(self, "spec_ports", spec_ports)
        put(self, "extra_ip", extra_ip)
        put(self, "extra_host", extra_host)
        put(self, "extra_ports", extra_ports)

    @classmethod
    def of(cls, record: Record) -> Summary:
        """The summary of a whole record (a damaged spec: no spec values, as a listing
        through sqlite's JSON functions shows it)."""
        try:
            spec: Any = record.spec
        except StoreError:
            spec = {}
        if not isinstance(spec, dict):
            spec = {}
        extra: Any = record.extra if isinstance(record.extra, dict) else {}
        return cls(
            record.id,
            record.name,
            record.kind,
            record.state,
            record.persistent,
            record.system_id,
            None if record.damaged_field("labels") else record.labels,
            record.created_at,
            record.started_at,
            spec.get("base"),
            spec.get("network"),
            spec.get("ports"),
            extra.get("ip"),
            host if isinstance(host := extra.get("hcs_host"), str) else None,
            extra.get("ports"),
        )

    @property
    def ports(self) -> list[dict[str, Any]] | None:
        """Every published port (:func:`published_ports`)."""
        return published_ports(self.spec_ports, self.extra_ports)


def published_ports(spec_ports: object, extra_ports: object) -> list[dict[str, Any]] | None:
    """A record's published ports as ``ls --json`` and ``Sandbox.to_dict`` show them: the
    spec's (``spec["ports"]``), then those added with ``publish`` (``extra["ports"]``), each
    ``{"host_port", "guest_port", "protocol", "runtime"}`` (as ``PublishedPort.to_dict``).
    None when the spec's list is unknown (missing or damaged); entries that are not
    objects are left out (as the table always did)."""
    if type(spec_ports) is not list:
        return None
    if not spec_ports and not extra_ports:
        return []  # (the usual case, per record of a listing: no work)
    return [
        {
            "host_port": e.get("host_port"),
            "guest_port": e.get("guest_port"),
            "protocol": e.get("protocol", "tcp"),
            "runtime": runtime,
        }
        for entries, runtime in ((spec_ports, False), (extra_ports, True))
        if type(entries) is list
        for e in entries
        if type(e) is dict
    ]
