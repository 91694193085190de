"""The :class:`Sandbox` object: one disposable Windows sandbox, from create to remove.

A sandbox is three things kept in step:

* a **record** in the state store (:mod:`hcs_sandbox.sandbox.store`): its name, id, spec,
  state, the files and HCN endpoints it owns (written *before* each resource is made, so a
  crash leaves a trail :func:`hcs_sandbox.sandbox.maintenance.prune` can follow);
* its **files** (:mod:`hcs_sandbox.sandbox.storage`): scratch VHDX and guest state file in
  its own directory under the state dir;
* an HCS **compute system** (:class:`hcs_sandbox.hcs.system.ComputeSystem`) whose
  ``Owner`` is ``"hcs-sandbox"``, plus an HCN endpoint when the network is ``nat``.

Every step of create/start/stop/remove pushes its undo onto a
:class:`hcs_sandbox.sandbox.rollback.UndoStack`; a failure (an HCS error, a disk error,
``KeyboardInterrupt``) runs the stack in reverse and re-raises, so nothing is left half-made.
What cannot be undone at once (the process was killed) is found by the next ``prune``:
records in ``creating``/``removing`` whose owner process is dead.

Many sandboxes may live at once, from threads and from separate processes: the store
arbitrates names; each :class:`Sandbox` instance holds its own compute-system handle and
takes no global lock on the hot path.

Record states (see also :mod:`hcs_sandbox.sandbox.store`):

``creating``  the record is reserved and resources are being made
``created``   the compute system exists and is not started
``running``   started
``paused``    paused
``stopped``   the compute system is gone (exited, stopped, killed) — a persistent
              sandbox keeps its disk and can be started again
``removing``  resources are being released
``error``     a step failed and its rollback failed too; ``prune`` cleans it up
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hcs_sandbox import errors
from hcs_sandbox.sandbox.guest import ExecResult, GuestProcess
from hcs_sandbox.sandbox.owned import OWNER, new_sandbox_id
from hcs_sandbox.sandbox.rollback import UndoStack

if TYPE_CHECKING:
    from hcs_sandbox.hcs.system import ComputeSystem
    from hcs_sandbox.sandbox.logon import LogonStart, LogRead
    from hcs_sandbox.sandbox.planner import PlanDocuments
    from hcs_sandbox.sandbox.ports import PublishedPort
    from hcs_sandbox.sandbox.spec import SandboxSpec
    from hcs_sandbox.sandbox.storage import HeldWait, ResolvedBase
    from hcs_sandbox.sandbox.store import Record, Store

__all__ = [
    "OWNER",
    "ExecResult",
    "ExitInfo",
    "GuestProcess",
    "Sandbox",
    "SandboxEvent",
]


Progress = Callable[[str], None]

#: The concrete class ``Path(...)`` makes on this OS (PosixPath or WindowsPath).
_PATH_TYPE = type(Path())


@dataclasses.dataclass(frozen=True)
class ExitInfo:
    """How a sandbox's compute system ended (from HCS's ``SystemExitStatus``).

    ``status`` is the HRESULT HCS reported (0 = success), ``exit_type`` one of
    ``GracefulExit``, ``ForcedExit``, ``UnexpectedExit``, ``Unknown``
    (``NotificationType``/``SystemExitStatus``: SchemaReference.md; ``Unknown`` also when
    HCS sent no ExitType, as schema 2.1 hosts do), ``attribution`` the ``Attribution``
    records when HCS gave them, ``raw`` the whole document.  ``status`` and ``exit_type``
    are both None when no exit status was recorded: the system stopped (a guest crash, a
    termination from outside hcs-sandbox) while no hcs-sandbox object was watching it.
    """

    status: int | None
    exit_type: str | None
    attribution: tuple[Mapping[str, Any], ...] = ()
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "exit_type": self.exit_type,
            "attribution": [dict(a) for a in self.attribution],
        }


@dataclasses.dataclass(frozen=True)
class SandboxEvent:
    """One event from HCS about a sandbox: ``type`` is the HCS event name (``SystemExited``,
    ``GuestConnectionClosed``, ``ServiceDisconnect``, ``CrashInitiated``, ...), ``data`` the
    event document, ``time`` the host clock (``time.time()``) when it arrived."""

    type: str
    data: Mapping[str, Any]
    time: float

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "data": dict(self.data), "time": self.time}


# ExecResult and GuestProcess live in hcs_sandbox.sandbox.guest (re-exported here).


_log = logging.getLogger("hcs_sandbox.sandbox")

#: HCS ``State`` values (SchemaReference.md ``State``) -> record states.
_HCS_STATES = {
    "created": "created",
    "running": "running",
    "paused": "paused",
    "stopped": "stopped",
    "savedastemplate": "saved",
}
#: The lifecycle log's file name in the sandbox's folder, where earlier versions
#: kept it (the log is in the store now: ``Store.log_lines``); ``logs()`` still reads it.
LOG_NAME = "sandbox.log"
#: A log line's start: ``2026-11-26T03:25:17Z `` (UTC, to the second).
_LOG_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")


def _log_text(when: float, line: str) -> str:
    """A log line as ``logs()`` shows it (and as the log file had it)."""
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(when))}Z {line}\n"


def _exit_info(raw: object) -> ExitInfo:
    """The :class:`ExitInfo` of a ``SystemExitStatus`` document (as HCS sent it or the record
    keeps it); ``status``/``exit_type`` None when there is none (``raw`` not a mapping).  An
    empty document is an exit HCS reported without details: 0 / ``Unknown``."""
    if not isinstance(raw, Mapping):
        return ExitInfo(status=None, exit_type=None)
    attribution = raw.get("Attribution") or ()
    return ExitInfo(
        status=int(raw.get("Status", 0) or 0) & 0xFFFFFFFF,
        exit_type=str(raw.get("ExitType") or "Unknown"),
        attribution=tuple(a for a in attribution if isinstance(a, Mapping)),
        raw=dict(raw),
    )


def _recorded_exit(raw: object) -> dict[str, Any] | None:
    """``inspect``'s ``exit``: the recorded exit status, None when none was recorded."""
    return _exit_info(raw).to_dict() if isinstance(raw, Mapping) else None


#: Record states in which a compute system should exist.
_LIVE = ("created", "running", "paused")
#: Record states in which the compute system has been started and not stopped: what
#: ``stop`` and ``kill`` act on.  A ``created`` sandbox was never started: stop and kill
#: leave it ``created`` (it can still start), as docker leaves a created container.
_STARTED = ("running", "paused")
#: Record states without a compute system to ask HCS about and not being created (every
#: state but ``creating`` and :data:`_LIVE`): remove needs neither ``force`` nor an HCS
#: query for them, so it marks the record ``removing`` with one compare-and-set.
_SETTLED = ("saving", "saved", "stopped", "removing", "error")
#: What HCS answers when an operation does not fit the system's current state: the system
#: is in another state (HCS_E_INVALID_STATE), has stopped (HCS_E_SYSTEM_ALREADY_STOPPED) or
#: is gone (HCS_E_SYSTEM_NOT_FOUND).  hcsshim internal/hcs/errors.go:
#: ErrVmcomputeOperationInvalidState, ErrVmcomputeAlreadyStopped,
#: ErrComputeSystemDoesNotExist; which one per operation and state is unconfirmed
#: (docs/windows-notes.md).  start/stop on a held handle take such an answer as "the
#: system changed meanwhile" and redo the verb the checked way (Sandbox._start_held).
_REFUSED: tuple[type[errors.HcsError], ...] = (
    errors.InvalidStateError,
    errors.AlreadyStoppedError,
    errors.NotFoundError,
)


def _state_dir(state_dir: str | os.PathLike[str] | None) -> Path:
    from hcs_sandbox.sandbox import paths

    _check_state_dir_arg(state_dir)
    return paths.ensure_state_dir(state_dir)


def _check_state_dir_arg(state_dir: object) -> None:
    """A SpecError unless ``state_dir`` is None, a str or an ``os.PathLike`` giving a str
    (a bare TypeError from deep in the path code before).  None and a str (the usual
    cases) cost one test."""
    if state_dir is None or isinstance(state_dir, str):
        return
    try:
        text = os.fspath(state_dir)  # type: ignore[call-overload]
    except TypeError:
        text = None
    if not isinstance(text, str):
        raise errors.SpecError(
            f"state_dir must be a folder path, not {type(state_dir).__name__}",
            field="state_dir",
            value=state_dir,
            remedy="pass a str or pathlib.Path naming a folder, or None for the default",
        )


def _store(state: Path, *, checked: bool = True) -> Store:
    """The store in the state directory ``state``.

    ``checked``: the caller has just checked ``state`` itself (:func:`_state_dir`, in the
    same call: create, list, get).  Then, while this process's connection to the database
    is current (:meth:`Store.reuse`: the same file, so the folder is there), the folder is
    not checked a second time.  Otherwise (and for ``checked=False``) :func:`open_store`:
    the folder (made again if gone, its owner and mode checked), then the file and the
    schema.
    """
    # (Modules, not names from them: ``from a.b import name`` run in a function costs about
    # twice ``from a import b``, CPython's import looking for ``__path__`` on the module
    # ``a.b`` and building the AttributeError it does not find; ~4 k instructions a call.)
    import hcs_sandbox.sandbox.store as store_module
    from hcs_sandbox.sandbox import paths

    if checked:
        store = store_module.Store.reuse(os.path.join(state, paths.DATABASE_NAME))
        if store is not None:
            return store
    return store_module.open_store(state)


#: The record's ``extra`` key naming the HCS host it was made through
#: (:func:`hcs_sandbox.hcs.service.host_identity`: ``windows`` or ``simulator:<dir>``).
HOST_KEY = "hcs_host"


def other_host(record: Record) -> str | None:
    """The other HCS host ``record`` was made through, or None when it is this process's
    (or the record predates the tag, or no HCS is available here).  Such a record's compute
    system cannot be seen from here: it is not listed, not managed and not pruned, so a
    process using the simulator never takes a Windows sandbox (or another simulator
    directory's) for gone."""
    tag = record.extra.get(HOST_KEY)
    if not isinstance(tag, str) or not tag:
        return None
    from hcs_sandbox.hcs.service import host_identity

    try:
        mine = host_identity()
    except errors.HcsUnavailableError:
        return None  # the verb itself says that HCS is unavailable
    return None if tag == mine else tag


def _other_host_error(record: Record) -> errors.OtherHostSandboxError | None:
    tag = other_host(record)
    if tag is None:
        return None
    from hcs_sandbox.hcs.service import host_identity

    return errors.OtherHostSandboxError(
        f"sandbox {record.name!r} was made through another HCS host ({tag}); this process "
        f"uses {host_identity()}, where its compute system cannot be seen",
        remedy="manage it with the setting it was made with (HCS_SANDBOX_SIMULATOR, "
        "--simulator, --state-dir)",
    )


def _remove_incomplete(exc: Exception, name: str, *, unnamed: bool = False) -> Exception:
    """The first failure of a remove that stopped half way, told as such: the record is
    left ``removing``, and removing it again (or a prune once this process has ended: while
    it lives, prune leaves the record to it) finishes the job.  Same exception, class and
    attributes (so its CLI exit code too); only its message and remedy grow.  Anything that
    is not an HcsSandboxError (a bug) is left as it is.  ``unnamed``: no id names the
    sandbox's compute system (a damaged record, sandbox/damage.py) and its endpoint is still
    attached to it: a removal again would fail the same way, so only prune, which
    terminates a system that no record names, is offered."""
    if not isinstance(exc, errors.HcsSandboxError):
        return exc
    finish = (
        f"finish it with 'hcs-sandbox rm -f {name}' (again) or, once this process has "
        "exited, 'hcs-sandbox prune'"
    )
    if unnamed:
        finish = (
            "no id in its record names its compute system, so removing it again would fail "
            "the same way: once this process has exited, 'hcs-sandbox prune' terminates a "
            "compute system that this state directory made and no record names, and "
            "finishes it"
        )
    first = errors.specific_remedy(exc)
    exc.message = (
        f"removing sandbox '{name}' stopped half way (it is left 'removing'): {exc.message}"
    )
    exc.args = (exc.message,)
    exc.remedy = f"{first}; then {finish}" if first else finish
    return exc


def _require_spec(spec: object, call: str) -> None:
    """A clear SpecError when ``spec`` is not a SandboxSpec (before: an AttributeError from
    deep inside ``create``).  A ``WsbResult`` (what ``read_wsb`` returns) is told to pass
    its ``.spec``."""
    import hcs_sandbox.sandbox.spec as spec_module  # (see _store)

    if isinstance(spec, spec_module.SandboxSpec):
        return
    message = f"{call} needs a SandboxSpec, not a {type(spec).__name__}"
    if isinstance(getattr(spec, "spec", None), spec_module.SandboxSpec):
        remedy = f"pass its .spec: {call}(read_wsb(path).spec)"
    else:
        message += f" ({spec_module.short_repr(spec, 60)})"
        remedy = "build one with hcs_sandbox.SandboxSpec(...), or read a .wsb: read_wsb(path).spec"
    raise errors.SpecError(
        message,
        field="spec",
        value=spec,
        remedy=remedy,
    )


def _reserve(store: Store, name: str | None, *args: Any, **kwargs: Any) -> Record:
    """``store.reserve``; a name taken by a sandbox of another HCS host says so (its
    ``rm`` would be refused from here)."""
    try:
        return store.reserve(name, *args, **kwargs)
    except errors.NameInUseError as exc:
        try:
            holder = store.get(name) if name else None
        except errors.SandboxNotFoundError:
            raise exc from None  # removed meanwhile: the name was taken all the same
        tag = other_host(holder) if holder is not None else None
        if tag is None:
            raise
        raise errors.NameInUseError(
            f"the name {name!r} is taken by a sandbox made through another HCS host ({tag})",
            remedy="choose another name, or remove that sandbox with the setting it was made "
            "with (HCS_SANDBOX_SIMULATOR, --simulator, --state-dir)",
        ) from exc


def _new_id(store: Store) -> str:
    """A new sandbox id made in ``store``: a version-4 GUID in its canonical form that
    carries the store's mark (:attr:`Store.mark`, :func:`owned.new_sandbox_id`), so that
    prune and reconcile of another store leave its compute system and endpoint alone (QA
    analyst F1)."""
    return new_sandbox_id(store.mark)


def _notify(progress: Progress | None, message: str) -> None:
    if _log.isEnabledFor(logging.DEBUG):  # what _log.debug asks first, without its call
        _log.debug("%s", message)
    if progress is not None:
        progress(message)


def _with_host_folders(spec: SandboxSpec, paths: tuple[str, ...]) -> SandboxSpec:
    """``spec`` with each mapped folder's host path replaced by ``paths`` (one per folder,
    in order: the real paths ``check_host_paths`` checked)."""
    if not paths and not spec.mapped_folders:
        return spec  # no folder (most specs): nothing to pair
    pairs = list(zip(spec.mapped_folders, paths, strict=True))
    if all(f.host_path == p for f, p in pairs):
        return spec
    return dataclasses.replace(
        spec, mapped_folders=tuple(dataclasses.replace(f, host_path=p) for f, p in pairs)
    )


def _blueprint(
    spec: SandboxSpec,
    sandbox_id: str,
    system_id: str,
    state: Path,
    *,
    terminate_on_close: bool = False,
    base: ResolvedBase | None = None,
    sandbox_dir: str | None = None,
) -> PlanDocuments:
    """Gather this host's facts for sandbox ``sandbox_id``
    (:mod:`hcs_sandbox.sandbox.hostfacts`: base, cached schema versions, the user's SID,
    the doctor's variant, per-sandbox endpoint and adapter ids) and plan it: what the
    planner's ``Plan`` says to make, as plain data (``planner.plan_documents``).

    A re-created persistent sandbox gets the same documents and ids as when it was made
    (they derive from the record id); ``_provision`` decides which files to make.
    ``terminate_on_close``: see ``HostFacts.terminate_on_close``.  ``base``: the
    base already resolved by the caller (else resolved here); ``sandbox_dir``: the
    sandbox's folder as text, when the caller has it.
    """
    from hcs_sandbox.sandbox import hostfacts, planner  # (modules: see _store)

    facts = hostfacts.gather(
        spec,
        sandbox_id=sandbox_id,
        system_id=system_id,
        state_dir=state,
        terminate_on_close=terminate_on_close,
        base=base,
        sandbox_dir=sandbox_dir,
    )
    # plan(spec, facts)'s documents; from the per-process template cache when this spec and
    # host were planned before (planner.plan_documents: keyed on every input but the ids).
    return planner.plan_documents(spec, facts)


class Sandbox:
    """One sandbox. Get one with :meth:`create`, :meth:`run`, :meth:`get` or :meth:`list`.

    Attributes read from the record: :attr:`name`, :attr:`id`, :attr:`spec`,
    :attr:`created_at`, :attr:`started_at`; :attr:`state` is refreshed from HCS on access.
    Instances are cheap; each holds at most one compute-system handle, opened on demand
    and released by :meth:`close` (or when the object is garbage-collected).
    """

    # ------------------------------------------------------------------ construction

    def __init__(self, record: Record, state_dir: os.PathLike[str] | str) -> None:
        """Internal: use :meth:`create`, :meth:`get` or :meth:`list`."""
        self._record = record
        # A Path is immutable: one of the concrete class (what _state_dir gives) is used as
        # it is (Path() of it builds a new, equal one: ~20 k instructions per object).
        self._state_dir = state_dir if type(state_dir) is _PATH_TYPE else Path(state_dir)
        self._system: ComputeSystem | None = None
        self._lock = threading.RLock()
        self._spec: SandboxSpec | None = None
        #: The store this object uses (see :meth:`_db`), and its folder as text (see
        #: :meth:`_directory_text`); both made on first use.
        self._db_store: Store | None = None
        self._dir_text: str | None = None
        self._own_endpoint: str | None = None  # (_endpoint_id)
        #: What this object's last start did with the logon command (``_start_logon``).
        self._logon: LogonStart | None = None
        #: The record revision this object wrote as ``stopped`` right after ITS handle saw
        #: the compute system's exit event (``_stopped``); None otherwise (see ``remove``).
        self._exited_at: int | None = None
        #: Which run of the sandbox ``_system`` belongs to: the record's ``started_at`` when
        #: this object got or started that handle (None: a system made and not started yet).
        #: A persistent sandbox started again is a new compute system with a new
        #: ``started_at``: an exit seen on an older handle is not the current run's.
        self._system_run: float | None = None

    @classmethod
    def create(
        cls,
        spec: SandboxSpec,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        progress: Progress | None = None,
        terminate_on_close: bool = False,
    ) -> Sandbox:
        """Create a sandbox: record, files, network endpoint, compute system (not started).

        The sandbox ends in state ``created``. On any failure (including Ctrl+C) everything
        made so far is released and the exception propagates.
        ``progress`` is called with a short description before each step.
        Raises :class:`~hcs_sandbox.errors.NameInUseError` when ``spec.name`` is taken.

        ``terminate_on_close`` (``ShouldTerminateOnLastHandleClosed``, SchemaReference.md
        ``ComputeSystem``): True = HCS kills the VM when this process's last handle to it
        closes — a crashed or killed process leaves no running VM (what :meth:`run` and an
        attached ``hcs-sandbox run`` use); False (the default) = the compute system keeps
        running for other processes: start it here, manage it from anywhere (what
        ``hcs-sandbox run -d`` and ``create`` need).  A persistent spec is always False
        (the planner decides: its disk outlives any process).

        Raises :class:`~hcs_sandbox.errors.SpecError` when ``spec`` is not a SandboxSpec, or
        when its name has the shape of a sandbox id or id prefix (``spec.check_new_name``).
        """
        _require_spec(spec, "Sandbox.create")
        from hcs_sandbox.sandbox.spec import check_new_name

        # Only a NEW name may not read as an id: a stored spec is never checked so (its
        # sandbox, named before that rule, keeps working: review RV-names H1).
        check_new_name(spec.name)
        return cls._create(
            spec, state_dir=state_dir, progress=progress, terminate_on_close=terminate_on_close
        )

    @classmethod
    def _create(
        cls,
        spec: SandboxSpec,
        *,
        state_dir: str | os.PathLike[str] | None,
        progress: Progress | None,
        terminate_on_close: bool = False,
    ) -> Sandbox:
        """:meth:`create`; ``terminate_on_close``: HCS terminates the VM when the last handle
        to it closes (ephemeral sandboxes of :meth:`run`, so a crashed process leaks no VM)."""
        from hcs_sandbox.sandbox import paths, storage  # (one import for both: see _store)

        _check_state_dir_arg(state_dir)  # before the spec's paths are checked against it
        # Cheap checks first, before anything is made (even the state directory).  The
        # spec's own paths first (a missing mapped folder or base path, a mapped system
        # folder or state directory, is bad input: SpecError, exit 2), then what the host
        # has (the Windows Sandbox base image: StorageError).
        checked = spec.check_host_paths(state_dir=state_dir)
        # What HCS shares, the record keeps and a persistent sandbox's restart plans again
        # is the real path that was checked, not the path as written: a link retargeted
        # later (or, on Windows, an 8.3 name or a junction) cannot change the folder shared.
        spec = _with_host_folders(spec, checked)
        state = _state_dir(state_dir)
        paths.check_room_for_sandboxes(str(state))  # a new sandbox's files must fit
        _notify(progress, "checking the base image")
        base = storage.resolve_base(spec.base.kind, spec.base.path)

        # The plan is pure (nothing is made): plan first, with the id the record will get,
        # so the name, the record and every file the plan makes are written ahead in ONE
        # transaction (the folder, scratch disk and guest state file are listed before any
        # is made; a listed file that was never made counts as released for remove/prune).
        store = _store(state)  # (its mark is in the id)
        sandbox_id = _new_id(store)
        directory = paths.sandbox_dir_text(state, sandbox_id)
        _notify(progress, "planning")
        bp = _blueprint(
            spec,
            sandbox_id,
            sandbox_id,
            state,
            terminate_on_close=terminate_on_close,
            base=base,
            sandbox_dir=directory,
        )
        from hcs_sandbox.hcs import service  # (see _store)

        host = service.host_identity()
        with UndoStack(
            kept_remedy="the clean-up could not end all it made (its record is left 'error'): "
            "'hcs-sandbox prune' ends it"
        ) as undo:
            _notify(progress, "reserving the name")
            spec_dict = spec.to_dict()
            record = _reserve(
                store,
                spec.name,
                sandbox_id,
                spec_dict,
                state="creating",
                labels=dict(spec_dict["labels"]),  # (a plain dict's copy: no Mapping calls)
                persistent=spec.persistence == "persistent",
                extra={HOST_KEY: host},
                files=[
                    directory,
                    *([bp.scratch.path] if bp.scratch is not None else []),
                    *([bp.guest_state_file] if bp.guest_state_file is not None else []),
                ],
            )
            # The record and the folder are the evidence the next prune needs when a later
            # undo (terminating the compute system) fails: then they are kept, the record
            # marked ``error`` (prune ends such a sandbox: its system by the record's id).
            undo.push_evidence(
                "delete the record",
                lambda: store.delete(record.id, missing_ok=True),
                keep=lambda: store.update(record.id, state="error", log_line="create rolled back"),
            )
            sandbox = cls(record, state)
            sandbox._spec = spec
            sandbox._db_store = store
            sandbox._dir_text = directory
            extra = sandbox._provision(
                store,
                undo,
                spec,
                progress=progress,
                record_extra=False,
                blueprint=bp,
            )
            _notify(progress, "created")
            # The plan's extras and the ``created`` state in ONE commit (nothing reads the
            # extras before start(); a crash in between leaves a ``creating`` record that
            # prune/remove release as before).
            sandbox._record = store.update(
                record.id,
                expect_state="creating",
                state="created",
                merge_extra=extra,
                log_line="created",
                known=record,  # as reserved: no read when nobody changed it since
            )
        return sandbox

    def _provision(
        self,
        store: Store,
        undo: UndoStack,
        spec: SandboxSpec,
        *,
        progress: Progress | None,
        record_extra: bool = True,
        blueprint: PlanDocuments | None = None,
    ) -> dict[str, Any]:
        """Make the files, the endpoint and the compute system, pushing every undo.

        ``blueprint`` given: a new sandbox (:meth:`_create` planned it and listed the plan's
        files in the record when it reserved it): every file is made.  None: a stopped
        persistent sandbox being re-created: it is planned again (same documents and ids),
        its scratch disk and guest state file are kept as they are, and so is its endpoint
        when HCN still has it.

        Returns the ``extra`` entries start() and inspect() need from the plan; they are
        written to the record here unless ``record_extra`` is False (the caller then merges
        them into its next update: one commit fewer).
        """
        import hcs_sandbox.hcs.system as system_module  # (see _store)
        from hcs_sandbox.sandbox import network, paths, storage

        rid = self._record.id
        system_id = self._record.system_id
        fresh = blueprint is not None
        if blueprint is None:
            _notify(progress, "planning")
            blueprint = _blueprint(spec, rid, system_id, self._state_dir)
        bp = blueprint
        directory = self._directory_text()

        if fresh:
            # One wait for files held open, shared by the rollback's deletions below; a
            # Ctrl+C anywhere in the rollback ends it (review RV36 #2).  ``progress`` is told
            # what the wait is for.
            held = storage.HeldWait(progress=progress)
            undo.when_interrupted(held.stop)
            _notify(progress, "creating the sandbox folder")
            paths.ensure_sandbox_dir_text(self._state_dir, rid)
            undo.push_evidence(  # (kept for prune after a failed undo: see _create)
                "delete the sandbox folder",
                lambda: _remove_recorded(store, rid, directory, held),
            )
            if bp.scratch is not None:
                scratch = storage.ScratchDisk(
                    path=bp.scratch.path,
                    method=bp.scratch.method,
                    size_bytes=bp.scratch.size_bytes,
                    parent=bp.scratch.parent,
                )
                _notify(progress, f"creating the scratch disk ({scratch.method})")
                storage.make_scratch_disk(scratch, made_folder=directory)  # recorded above
                undo.push_evidence(  # (a VM that could not be terminated may hold it)
                    "delete the scratch disk",
                    lambda: _remove_recorded(store, rid, scratch.path, held),
                )
            if bp.guest_state_file is not None:
                gs = bp.guest_state_file
                _notify(progress, "creating the guest state file")
                storage.create_guest_state_file(gs, made_folder=directory)  # recorded above
                undo.push_evidence(
                    "delete the guest state file", lambda: _remove_recorded(store, rid, gs, held)
                )

        # The files just made for a new sandbox are its own (listed in the record, deleted
        # with it, which takes their grants back): only the others are looked at.
        made = (bp.scratch.path if bp.scratch else None, bp.guest_state_file) if fresh else ()
        foreign = [p for p in bp.grants if p not in made and not _inside(p, directory)]
        if foreign:
            # Files we do not own (a parent disk): remember them BEFORE granting, so remove
            # and prune take the grants back.
            self._record = store.update(rid, merge_extra={"foreign_grants": foreign})
        for path in bp.grants:
            if progress is not None or _log.isEnabledFor(logging.DEBUG):  # (the text costs more)
                _notify(progress, f"granting the VM access to {os.path.basename(path)}")
            storage.grant_vm_access(system_id, path)
            if path in foreign:
                undo.push(f"revoke access to {path}", _revoker(system_id, path))

        # The document as HCS is given it: the planner's text when it has it (the same text
        # ComputeSystem.create would make of the dict: PlanDocuments.document_json).
        document: str | dict[str, Any] = (
            bp.document if bp.document_json is None else bp.document_json
        )
        if bp.endpoint_document is not None:
            assert bp.network_document is not None
            _notify(progress, "preparing the NAT network")
            network_id = network.ensure_network(bp.network_document)
            endpoint_id = str(bp.endpoint_document.get("ID"))
            if self._own_endpoint is None and rid == self._record.id:
                # The planner's derivation of this sandbox's id (HostFacts.for_sandbox; a
                # test checks owned.endpoint_id agrees): the judging verbs need not make it
                # again for this object (review RV-foreign R2).
                self._own_endpoint = endpoint_id.lower()
            kept = None
            if not fresh and endpoint_id in self._record.endpoint_ids:
                # A re-created persistent sandbox: stop keeps the endpoint (same id, same
                # MAC), so the guest keeps its address.
                kept = network.endpoint_info(endpoint_id)
            if kept is not None:
                info = kept
            else:
                _notify(progress, "creating the network endpoint")
                store.add_endpoint(rid, endpoint_id)
                undo.push(
                    "delete the network endpoint",
                    lambda: _delete_recorded_endpoint(store, rid, endpoint_id),
                )
                info = network.create_endpoint(
                    network_id, bp.endpoint_document, port_holder=self._port_holder
                )
                if not fresh:
                    # HNS lost the stopped sandbox's endpoint (host reboot, HNS restart,
                    # deleted): the planner's document has only the spec's ports, so the
                    # ports added with publish() go back on (a refusal fails the start;
                    # the undo above deletes the new endpoint again).
                    from hcs_sandbox.sandbox import ports

                    ports.reapply(self, endpoint_id, progress=lambda text: _notify(progress, text))
            self._record = store.update(rid, merge_extra={"ip": info.ip, "mac": info.mac})
            # The endpoint was created without a MAC: HNS picked a free one from the
            # network's MacPool.  The adapter must carry that MAC (hcsshim addNIC:
            # internal/uvm/network.go), so it goes into the document now.
            if not info.mac:
                raise errors.HcsSandboxError(
                    f"HNS reported no MAC address for endpoint {endpoint_id}, so the "
                    "sandbox's network adapter cannot be bound to it",
                    remedy="check the host network service (hcs-sandbox doctor), or "
                    "create the sandbox with --network none",
                )
            document = bp.with_adapter_mac(info.mac)

        _notify(progress, "creating the compute system")
        system = system_module.ComputeSystem.create(system_id, document)
        if not bp.terminate_on_last_handle_closed:
            system.release_when_collected()  # see _open_system
        undo.push("terminate the compute system", lambda: _terminate_quietly(system))
        with self._lock:
            # A handle this object still held is the previous system's (a persistent
            # sandbox re-created after another process stopped it): closed, not dropped.
            previous, self._system = self._system, system
            self._system_run = None  # made, not started yet
        if previous is not None:
            previous.close()
        # What start() needs from the plan, and what inspect() shows (None drops the key).
        extra: dict[str, Any] = {
            "warnings": list(bp.warnings) or None,
            "warning_fields": list(bp.warning_fields) if any(bp.warning_fields) else None,
            "gpu_request": bp.gpu_request,
            "terminate_on_close": bp.terminate_on_last_handle_closed or None,
            "guest_links": list(bp.guest_links) or None,
        }
        if record_extra:
            self._record = store.update(rid, merge_extra=extra)
        return extra

    @classmethod
    @contextlib.contextmanager
    def run(
        cls,
        spec: SandboxSpec,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        progress: Progress | None = None,
    ) -> Iterator[Sandbox]:
        """Create and start a sandbox; on exit (even on an exception or Ctrl+C) kill and
        remove it::

            with Sandbox.run(SandboxSpec()) as sb:
                print(sb.exec("cmd /c ver").stdout)

        When the removal fails (the record is left ``removing``: ``prune`` finishes it),
        its error is raised after a block that ended normally; after a block that raised,
        the block's exception is the one that propagates, the removal's error is logged
        (warning) and added to it as a note (``add_note``, Python 3.11+).
        """
        _require_spec(spec, "Sandbox.run")
        # An ephemeral sandbox owned by this block: HCS terminates it when our last handle
        # closes, so even a crashed Python process leaves no running VM behind (a
        # persistent one keeps ShouldTerminateOnLastHandleClosed false: the planner decides).
        sandbox = cls.create(spec, state_dir=state_dir, progress=progress, terminate_on_close=True)
        try:
            sandbox.start(progress=progress)
            yield sandbox
        except BaseException as exc:
            _remove_after_run(sandbox, exc, progress)
            raise
        _remove_after_run(sandbox, None, progress)

    @classmethod
    def list(
        cls, *, all: bool = True, state_dir: str | os.PathLike[str] | None = None
    ) -> builtins.list[Sandbox]:
        """Every sandbox in the store (``all=False``: only running and paused ones), except
        those made through another HCS host (:func:`other_host`).

        States come from the records (fast: no HCS call); read :attr:`state` on an item to
        refresh it from HCS.  A state directory that does not exist holds none (it is not
        made: only :meth:`create` makes it).
        """
        from hcs_sandbox.sandbox import paths

        _check_state_dir_arg(state_dir)
        state = paths.existing_state_dir(state_dir)
        if state is None:
            return []
        with _store(state) as store:
            records = store.list(all=all)
        return [cls(r, state) for r in records if other_host(r) is None]

    @classmethod
    def get(cls, name_or_id: str, *, state_dir: str | os.PathLike[str] | None = None) -> Sandbox:
        """The sandbox with this name (case-insensitive), id, or unique id prefix.

        Raises :class:`~hcs_sandbox.errors.SandboxNotFoundError`, and its subclass
        :class:`~hcs_sandbox.errors.OtherHostSandboxError` for a sandbox made through another
        HCS host (:func:`other_host`).  A state directory that does not exist holds none (it
        is not made: only :meth:`create` makes it).  ``name_or_id`` that is not a string
        (None aside: not found) is a :class:`~hcs_sandbox.errors.SpecError`.
        """
        from hcs_sandbox.sandbox import paths

        if name_or_id is not None and not isinstance(name_or_id, str):
            raise errors.SpecError(
                f"a sandbox name or id is a string, not {type(name_or_id).__name__}",
                field="name_or_id",
                value=name_or_id,
                remedy="pass the name or id as a str (see them with 'hcs-sandbox ls -a')",
            )
        _check_state_dir_arg(state_dir)
        state = paths.existing_state_dir(state_dir)
        if state is None:
            raise errors.SandboxNotFoundError(
                f"no sandbox named or with id '{name_or_id}': the state directory "
                f"{paths.state_dir_text(state_dir)} does not exist",
                remedy="check --state-dir / HCS_SANDBOX_STATE_DIR; list sandboxes with "
                "'hcs-sandbox ls -a'",
            )
        store = _store(state)
        record = store.get(name_or_id)
        refused = _other_host_error(record)
        if refused is not None:
            raise refused
        sandbox = cls(record, state)
        sandbox._db_store = store  # this object's own: its verbs use it (see _db)
        return sandbox

    # ------------------------------------------------------------------ attributes

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def system_id(self) -> str:
        """The id of the HCS compute system (the record id unless re-created)."""
        return self._record.system_id

    @property
    def spec(self) -> SandboxSpec:
        """The sandbox's spec, from its record.  Raises :class:`~hcs_sandbox.errors.
        StoreError` when the stored spec is damaged or no longer a valid spec (the record
        is at fault, not the caller: review RV50 F1)."""
        if self._spec is None:
            from hcs_sandbox.sandbox.spec import SandboxSpec

            try:
                self._spec = SandboxSpec.from_dict(self._record.spec)
            except errors.SpecError as exc:
                raise errors.StoreError(
                    f"the spec of sandbox {self.name!r} in the state database is not valid "
                    f"({exc.message})",
                    remedy=f"remove the sandbox: hcs-sandbox rm -f {self.id}",
                ) from None
        return self._spec

    @property
    def persistent(self) -> bool:
        return self._record.persistent

    @property
    def record(self) -> Record:
        """The store record as last read (no refresh)."""
        return self._record

    @property
    def state(self) -> str:
        """The current state, refreshed from HCS (see the module docstring for the values)."""
        self.refresh()
        return self._record.state

    @property
    def created_at(self) -> float:
        return self._record.created_at

    @property
    def started_at(self) -> float | None:
        return self._record.started_at

    @property
    def simulated(self) -> bool:
        """True when this process talks to the HCS simulator, not to Windows."""
        from hcs_sandbox.native.loader import simulator_requested

        return simulator_requested()

    @property
    def ip(self) -> str | None:
        """The guest's IP address on the NAT network, or None without a network."""
        value = self._record.extra.get("ip")
        return str(value) if value else None

    @property
    def warnings(self) -> tuple[str, ...]:
        """The planner's warnings for this sandbox, as made when it was created: one for
        every setting that loosens isolation and every experimental choice (what
        :meth:`inspect` shows as ``warnings``; ``hcs-sandbox run``/``create`` print them).
        Empty when there is none, or the record's extra field is damaged."""
        return tuple(message for message, _about in self._warnings_about())

    def warnings_unless(self, fields: Iterable[str]) -> tuple[str, ...]:
        """:attr:`warnings` without those about the spec ``fields`` (``network``, ``gpu``,
        ``display``, ``logon_command``, ``mapped_folders[0]``, ...): those something else
        already warned about, as ``WsbResult.warnings_unless`` does for a .wsb's."""
        moot = set(fields)
        return tuple(m for m, about in self._warnings_about() if about is None or about not in moot)

    def _warnings_about(self) -> builtins.list[tuple[str, str | None]]:
        extra = self._record.extra
        messages = extra.get("warnings")
        if not isinstance(messages, list):
            return []
        texts = [str(m) for m in messages]
        about = extra.get("warning_fields")
        if not isinstance(about, list) or len(about) != len(texts):
            about = [None] * len(texts)
        return [(m, a if isinstance(a, str) else None) for m, a in zip(texts, about, strict=True)]

    @property
    def directory(self) -> str:
        """This sandbox's own directory (scratch disk, guest state file, logs)."""
        return self._directory_text()

    def _directory_text(self) -> str:
        """:attr:`directory`, computed once per object (the id never changes)."""
        text = self._dir_text
        if text is None:
            from hcs_sandbox.sandbox import paths

            text = self._dir_text = paths.sandbox_dir_text(self._state_dir, self._record.id)
        return text

    def _db(self) -> Store:
        """This object's store, opened on first use and kept (one owner: this object; a
        :class:`Store` holds no resource of its own: the connection is the process's,
        cached by the store module).  Before each use it checks, as opening a store would,
        that the database file is still the same one, with the current schema and no other
        connection's write since (:meth:`Store.is_current`: one ``stat``, one PRAGMA);
        otherwise a new store is opened (which checks the state directory, the file and
        the schema again), so what another process did is never missed."""
        store = self._db_store
        if store is None or not store.is_current():
            # The state directory was checked when this object was made (maybe long ago):
            # checked again, as opening a store does.
            store = self._db_store = _store(self._state_dir, checked=False)
        return store

    def _reread(self) -> Store:
        """:meth:`_db`, then the record as stored now (:meth:`Store.reread`: the one this
        object holds when nothing was written since), with the store's two checks made as
        one (:meth:`Store.reread_if_current`) while the store is current."""
        store = self._db_store
        if store is not None:
            record = store.reread_if_current(self._record)
            if record is not None:
                self._record = record
                return store
        store = self._db()
        self._record = store.reread(self._record)
        return store

    # ------------------------------------------------------------------ HCS handle

    def _open_system(self) -> ComputeSystem | None:
        """Our handle to the compute system, opened on demand; None when it is gone."""
        from hcs_sandbox.hcs.system import ComputeSystem

        with self._lock:
            system = self._system
            if system is not None and not system.closed and not system.exited:
                return system
            if system is not None:
                system.close()
                self._system = None
            system_id = self._record.system_id
            if self._record.has_damaged_fields or system_id != self._record.id:
                # A damaged one (no GUID), or one not derived from the sandbox's id (another
                # tool's system: QA analyst F5), is never opened: the sandbox's id instead,
                # or refused (sandbox/damage.py)
                from hcs_sandbox.sandbox import damage

                system_id = damage.refuse_system(
                    self._db(), self._judged(files=False), "reach the compute system of"
                )
            try:
                system = ComputeSystem.open(system_id)
            except errors.NotFoundError:
                return None
            if not self._record.extra.get("terminate_on_close"):
                # The handle is this object's cache: collecting the object closes it, and
                # the sandbox runs on, so no warning (the docs' examples and ``for s in
                # Sandbox.list(): s.state`` close nothing: QA s17 agent F4).  A sandbox made
                # with terminate_on_close dies with this process's last handle: its warning
                # stays.
                system.release_when_collected()
            self._system = system
            self._system_run = self._record.started_at  # the run the record describes
            return system

    def _hcs_state(self) -> str | None:
        """The compute system's state as a record state, or None when it does not exist."""
        for again in (False, True):
            system = self._open_system()
            if system is None:
                return None
            if system.exited:
                return "stopped"
            try:
                props = system.properties({"PropertyTypes": []})
            except (errors.NotFoundError, errors.AlreadyStoppedError):
                if again:
                    return None
                # This handle's system is gone and its exit event has not arrived yet:
                # another process may already have made the sandbox's system again under
                # the same id (a persistent sandbox's start).  Look once more by id.
                with self._lock:
                    if self._system is system:
                        self._system = None
                    system.close()
                continue
            raw = str(props.get("State", "")).lower()
            return _HCS_STATES.get(raw, self._record.state)
        return None  # pragma: no cover - the loop returns

    def _set_state(self, store: Store, new: str, **fields: Any) -> None:
        # ``known``: the record as this object last had it; read again only if it changed.
        self._record = store.update(self._record.id, state=new, known=self._record, **fields)

    def refresh(self) -> None:
        """Re-read the record and, for a sandbox that should have a compute system, its
        state in HCS (a system that exited or vanished makes the record ``stopped``)."""
        store = self._db()
        self._record = store.get(self._record.id)
        if self._record.state not in _LIVE:
            return
        with self._lock:
            held = self._system  # _hcs_state replaces it when its exit event came
            run = self._system_run
        observed = self._hcs_state()
        new = "stopped" if observed is None else observed
        if new != self._record.state:
            fields: dict[str, Any] = {}
            seen = held.exit_status if held is not None else None
            if new == "stopped" and seen is not None and run == self._record.started_at:
                # This object's handle saw the exit (nobody waited): record what HCS sent.
                fields["merge_extra"] = {"exit": dict(seen)}
            try:
                self._record = store.update(
                    self._record.id, expect_state=self._record.state, state=new, **fields
                )
            except errors.StateConflictError:
                self._record = store.get(self._record.id)

    def close(self) -> None:
        """Release this object's compute-system handle (the sandbox keeps running, unless
        its document says ``ShouldTerminateOnLastHandleClosed`` and this was the last one)."""
        with self._lock:
            system, self._system = self._system, None
        if system is not None:
            system.close()

    # ------------------------------------------------------------------ lifecycle

    def _require(
        self,
        allowed: tuple[str, ...],
        doing: str,
        remedy: str | Callable[[str], str | None] | None = None,
    ) -> str:
        """The current state (refreshed), or a SandboxStateError when it is not ``allowed``;
        ``remedy`` may be a function of the current state."""
        current = self.state
        if current not in allowed:
            raise errors.SandboxStateError(
                f"cannot {doing} sandbox '{self.name}': it is {current}",
                state=current,
                remedy=remedy(current) if callable(remedy) else remedy,
            )
        return current

    def _refuse_damaged(self, doing: str) -> None:
        """A :class:`~hcs_sandbox.errors.StoreError` (with the remedy) when this sandbox's
        record has a damaged field and ``doing`` is a verb that starts it or works in it
        (:func:`hcs_sandbox.sandbox.damage.refuse`: the one place that decides).  A compute
        system id or endpoint ids that name something not the sandbox's own are damage here
        too (``damage.judged``); the file list is never judged here (a removal does, and
        ``inspect`` shows it): these verbs never read it, and a sound record costs one
        comparison per id (:func:`_names_only_its_own`)."""
        record = self._record
        if (  # (nothing decoded, nothing imported; a damaged spec is refused when the
            not record.has_damaged_fields  # verb reads it: Sandbox.spec)
            and record.system_id == record.id
            and not record.endpoint_ids
        ):
            return
        record = self._judged(files=False)
        if not record.has_damaged_fields:
            return
        from hcs_sandbox.sandbox import damage

        damage.refuse(record, doing)

    def _refuse_damaged_system(self, doing: str) -> None:
        """A :class:`~hcs_sandbox.errors.StoreError` (with the remedy) when this sandbox's
        record has a damaged ``system_id``, no other id names its system (the sandbox's,
        which hcs-sandbox gives it, is what :meth:`_open_system` opens instead) and it says
        the sandbox may have a compute system; ``doing``: the verb
        (:func:`hcs_sandbox.sandbox.damage.refuse_system`)."""
        record = self._record
        if record.state in _LIVE and (record.has_damaged_fields or record.system_id != record.id):
            # (only its compute system id matters here: what _open_system opens)
            from hcs_sandbox.sandbox import damage

            damage.refuse_system(self._db(), self._judged(files=False), doing)

    def _judged(self, *, links: bool = False, files: bool = True) -> Record:
        """This sandbox's record as the damage rules judge it
        (:func:`hcs_sandbox.sandbox.damage.judged`: a compute system id, endpoint id or file
        that names something not the sandbox's own is damage); the same object, with
        nothing imported, when it names only its own (one comparison per field, as text).
        ``links``, ``files``: see ``judged`` (``files`` False: only the ids are judged, for
        the verbs that never read the file list)."""
        record = self._record
        if not links and _names_only_its_own(
            record, self._directory_text, files=files, endpoint=self._endpoint_id
        ):
            return record
        from hcs_sandbox.sandbox import damage

        return damage.judged(self._db(), record, links=links, files=files)

    def _endpoint_id(self) -> str:
        """The id the planner gives this sandbox's endpoint (``damage.own_endpoint_id``),
        computed once per object (the id never changes)."""
        found = self._own_endpoint
        if found is None:
            from hcs_sandbox.sandbox.owned import endpoint_id

            found = self._own_endpoint = endpoint_id(self._record.id)
        return found

    @property
    def judged_record(self) -> Record:
        """The record as last read (no refresh), as a removal judges it
        (:func:`hcs_sandbox.sandbox.damage.judged`): a compute system id or endpoint id not
        derived from the sandbox's id (another tool's) and a file outside its folder (or
        reached through a link) are named in ``damaged`` and read as empty; the same
        object for a record that names only its own."""
        return self._judged(links=True)

    def _refuse_if_busy(self, state: str, doing: str) -> None:
        """stop/kill of a sandbox another process is creating, starting or removing: an
        error, not a silent no-op (the start would finish and the sandbox run on)."""
        if state in ("creating", "removing"):
            raise errors.SandboxStateError(
                f"cannot {doing} sandbox '{self.name}': it is {state}",
                state=state,
                remedy=self._start_remedy(state),
            )

    def _start_remedy(self, state: str) -> str:
        if state == "running":
            return "it is running already: a running sandbox needs no start"
        if state == "paused":
            return f"resume a paused sandbox: 'hcs-sandbox resume {self.name}'"
        if state in ("creating", "removing"):
            return (
                "another process is creating, starting or removing it: wait for it; if that "
                "process died, 'hcs-sandbox prune' finishes its work (a persistent sandbox "
                "whose start was cut short is marked stopped again, with its disk)"
            )
        return f"remove it with 'hcs-sandbox rm -f {self.name}'"

    def _overtaken_start_remedy(self, state: str) -> str:
        """The remedy of a start that another process overtook: it stopped the sandbox
        (start a persistent one again; an ephemeral one's contents are gone), or is
        creating or removing it (:meth:`_start_remedy`)."""
        if state != "stopped":
            return self._start_remedy(state)
        if self.persistent:
            return f"start it again: 'hcs-sandbox start {self.name}'"
        return (
            f"an ephemeral sandbox's contents are gone once it stops: remove it "
            f"('hcs-sandbox rm {self.name}') and run a new one"
        )

    def _held_system(self) -> ComputeSystem | None:
        """The compute-system handle this object holds (it made or opened the system and
        receives its exit event), unless it is closed or has seen the exit; else None."""
        with self._lock:
            system = self._system
        if system is None or system.closed or system.exited:
            return None
        return system

    def start(self, *, progress: Progress | None = None) -> None:
        """Start the sandbox. A stopped persistent sandbox is re-created from its stored
        spec on the same scratch disk, then started."""
        # The stored spec is read first: a damaged one is refused before anything is
        # started, not after (review RV49 F1); so is a record with another damaged field.
        _ = self.spec
        self._refuse_damaged("start")
        if self._start_held(progress):
            _start_logon(self, progress)  # issue 5: the spec's logon command
            return
        current = self._require(("created", "stopped"), "start", remedy=self._start_remedy)
        store = self._db()
        if current == "stopped":
            if not self.persistent:
                raise errors.SandboxStateError(
                    f"cannot start sandbox '{self.name}': it is ephemeral and has stopped, "
                    "so its contents are gone",
                    state=current,
                    remedy=f"remove it ('hcs-sandbox rm {self.name}') and run a new one; "
                    "to keep a sandbox's contents across stop and start, make it persistent "
                    "(CLI: --persistent; API: SandboxSpec(persistence='persistent'))",
                )
            self._restart_persistent(store, progress)
            _start_logon(self, progress)  # issue 5: the spec's logon command
            return
        system = self._open_system()
        if system is None:
            # Gone since the state check above: marked stopped, unless another process took
            # the record meanwhile (a forced remove that terminated it: ``removing``).
            self._mark_stopped(store)
            state = self._record.state
            if state != "stopped":
                raise errors.SandboxStateError(
                    f"cannot start sandbox '{self.name}': it is {state}",
                    state=state,
                    remedy=self._start_remedy(state),
                )
            raise errors.SandboxStateError(
                f"cannot start sandbox '{self.name}': its compute system is gone",
                state="stopped",
                remedy=f"remove it with 'hcs-sandbox rm {self.name}'",
            )
        _notify(progress, "starting")
        try:
            system.start()
        except errors.HcsError as exc:
            if not self._changed_meanwhile(exc):
                self._after_failed_start(store)
                raise
            # Another process started (or stopped, or removed) it since the check above:
            # nothing was done here, and its system is not this start's to terminate.
            self._require(("created",), "start", remedy=self._overtaken_start_remedy)
            raise  # Created again: HCS refused this start all the same
        except BaseException:
            self._after_failed_start(store)
            raise
        try:
            self._after_start(system, progress)
        except BaseException:
            self._after_failed_start(store)
            raise
        self._record_change(
            store,
            "running",
            "start",
            self._overtaken_start_remedy,
            started_at=time.time(),
            log_line="started",
        )
        _start_logon(self, progress)  # issue 5: the spec's logon command

    def _start_held(self, progress: Progress | None) -> bool:
        """:meth:`start` through the handle this object holds, when the record says
        ``created``: without asking HCS for the state first (a
        ``HcsGetComputeSystemProperties`` round trip), because HcsStartComputeSystem itself
        refuses a system that is not Created (:data:`_REFUSED`; SchemaReference.md
        ``State``).  The record is read first, as always (another process may have changed
        or removed it).  True: started.  False: nothing was done; take the checked path
        (the record is not ``created``, no handle is held, or HCS refused because the
        system changed meanwhile -- the checked path asks HCS and acts on its answer)."""
        system = self._held_system()
        if system is None:
            return False
        store = self._reread()  # no read when nothing changed since
        if self._record.state != "created":
            return False
        _notify(progress, "starting")
        try:
            system.start()
        except errors.HcsError as exc:
            if self._changed_meanwhile(exc):
                return False  # nothing was done here: the checked path acts on the new state
            self._after_failed_start(store)
            raise
        except BaseException:
            self._after_failed_start(store)
            raise
        try:
            self._after_start(system, progress)
        except BaseException:
            self._after_failed_start(store)
            raise
        self._record_change(
            store,
            "running",
            "start",
            self._overtaken_start_remedy,
            started_at=time.time(),
            log_line="started",
        )
        return True

    def _changed_meanwhile(self, exc: errors.HcsError) -> bool:
        """HCS refused this object's start with ``exc``: True when the system changed
        meanwhile, so nothing was done here (and the system is not this start's to
        terminate).  HCS is asked: started by someone else (running/paused), whatever the
        code of the refusal, or refused with a state code and no longer Created.  Else
        (False) a real failure of this start (never retried).  A start that timed out may
        itself have started the VM ("HCS is still running it"): always this start's failure.
        Which codes real HCS uses: windows-notes."""
        if isinstance(exc, errors.OperationTimeoutError):
            return False
        _log.debug("sandbox %s: start failed (%s); checking its state", self.name, exc)
        try:
            observed = self._hcs_state()
        except Exception as query:  # the start's own error is the one to report
            _log.debug("sandbox %s: state query failed: %s", self.name, query)
            return False
        return observed in ("running", "paused") or (
            isinstance(exc, _REFUSED) and observed != "created"
        )

    def _after_start(self, system: ComputeSystem, progress: Progress | None) -> None:
        """The plan's after-start steps (``Plan.gpu_request``, kept in the record by
        ``_provision``): GPU-PV is assigned with ``HcsModifyComputeSystem`` once the VM
        runs (planner ``GPU_RESOURCE_PATH``: HcsModifyComputeSystem.md, hcsshim
        ``internal/hcs/resourcepaths``; an "Update" valid only after start).

        A failure raises a clear :class:`~hcs_sandbox.errors.HcsError`; the caller's
        rollback then terminates the VM (a sandbox asked for with a GPU never runs without
        one).  The logon command is not run here: ``_start_logon`` starts it once the
        record says ``running`` (``hcs_sandbox.sandbox.logon``).

        Then the create-time mapped folders (``Plan.guest_links``, kept in the record) are
        linked at their guest paths (:func:`hcs_sandbox.sandbox.files.link_created_mappings`)
        — before the logon command, which often uses them.  A failure there stops the
        sandbox too.
        """
        request = self._record.extra.get("gpu_request")
        if isinstance(request, Mapping):
            self._assign_gpu(system, request, progress)
        if self._record.extra.get("guest_links"):
            from hcs_sandbox.sandbox import files

            _notify(progress, "linking the mapped folders in the guest")
            files.link_created_mappings(self, system)

    def _assign_gpu(
        self, system: ComputeSystem, request: Mapping[str, Any], progress: Progress | None
    ) -> None:
        """:meth:`_after_start`'s GPU-PV step."""
        _notify(progress, "assigning the GPU (GPU-PV)")
        try:
            system.modify(request)
        except errors.HcsError as exc:
            raise exc.restated(
                f"sandbox '{self.name}' started, but its GPU could not be assigned "
                f"(HcsModifyComputeSystem {request.get('ResourcePath')}): {exc.message}; "
                "the sandbox was stopped",
                remedy="check that this host supports GPU partitioning (GPU-PV: a WDDM 2.5+ "
                "GPU driver, 'hcs-sandbox doctor'), or create the sandbox without --gpu",
            ) from exc

    def _after_failed_start(self, store: Store) -> None:
        """A start failed: keep the sandbox ``created`` when HCS still has it so, else
        terminate what is left and mark it ``stopped`` (no half-started system remains),
        unless another process took the record meanwhile (:meth:`_mark_stopped`: a forced
        remove, which may be what made the start fail)."""
        try:
            observed = self._hcs_state()
        except Exception:
            observed = None
        if observed == "created":
            return
        system = self._system
        if system is not None:
            _terminate_quietly(system)
            self._system = None
        try:
            self._mark_stopped(store)
        except errors.SandboxNotFoundError:  # removed meanwhile: nothing left to mark
            _log.info("sandbox %s: removed by another process", self.name)
        except Exception as exc:  # the record keeps its old state; refresh() corrects it
            _log.warning("sandbox %s: could not record the failed start: %s", self.name, exc)

    def _record_change(
        self,
        store: Store,
        new: str,
        doing: str,
        remedy: Callable[[str], str | None] | None = None,
        **fields: Any,
    ) -> None:
        """The end of a start of a ``created`` sandbox, of pause and of resume, once HCS has
        done the verb: write state ``new`` (and ``fields``: the log line, ...) over the
        record as the verb read it (compare-and-set on its revision: the same one UPDATE
        when nobody wrote it since).

        When someone wrote it since (between the read and this write: after HCS did the
        verb, another object or process may have seen the change, or stopped or removed the
        sandbox), it is read again (gone: :class:`SandboxNotFoundError`).  While it should
        have a compute system, HCS is asked and its state written over the one just read
        (compare-and-set), with ``fields`` when it is ``new``; a record ``stopped``,
        ``creating`` or ``removing`` is another process's and is left as it is.  The verb
        succeeds when the record now says ``new``; else :class:`SandboxStateError` with the
        state it says (``remedy``: a function of that state)."""
        read = self._record
        try:
            self._record = store.update(
                read.id, expect_revision=read.revision, state=new, known=read, **fields
            )
            self._mark_run()
            return
        except errors.StateConflictError:
            current = self._record = store.get(read.id)
        if current.state in _LIVE:
            try:
                observed = self._hcs_state()
            except errors.HcsError as exc:  # cannot tell: this verb's change, as before
                _log.info("sandbox %s: no state from HCS after a write: %s", self.name, exc)
                observed = new
            state = "stopped" if observed is None else observed
            if state == new or state != current.state:
                try:
                    self._record = store.update(
                        read.id,
                        expect_state=current.state,
                        state=state,
                        known=current,
                        **(fields if state == new else {}),
                    )
                except errors.StateConflictError:  # changed once more: as it is now
                    self._record = store.get(read.id)
        state = self._record.state
        if state == new:
            self._mark_run()
            return
        if state in ("creating", "removing"):
            remedy = self._start_remedy
        raise errors.SandboxStateError(
            f"cannot {doing} sandbox '{self.name}': another process made it {state} meanwhile",
            state=state,
            remedy=remedy(state) if remedy is not None else None,
        )

    def _mark_stopped(self, store: Store) -> None:
        """Write ``stopped`` over the record as this object read it (compare-and-set on its
        revision); when someone wrote it since, :meth:`_stopped_unless_taken`."""
        read = self._record
        try:
            self._record = store.update(
                read.id, expect_revision=read.revision, state="stopped", known=read
            )
        except errors.StateConflictError:
            self._stopped_unless_taken(store, read.id, {})

    def _stopped_unless_taken(self, store: Store, rid: str, fields: dict[str, Any]) -> None:
        """``stopped`` (with ``fields``) over record ``rid``, which someone wrote since the
        caller read it: a record now ``creating`` or ``removing`` is left to the process
        that marked it (a persistent restart, whose system may not exist yet, or a remove);
        HCS is asked, and a system of this id that exists now is not the one the caller
        ended, so the record is left as it is; otherwise (or when HCS cannot tell)
        ``stopped`` is written over the current state (compare-and-set on it)."""
        self._record = store.get(rid)
        if self._record.state in ("creating", "removing"):
            _log.info("sandbox %s: %s by another process", self.name, self._record.state)
            return
        try:
            observed = self._hcs_state()
        except errors.HcsError as exc:  # cannot tell: record the stop, as before
            _log.info("sandbox %s: no state from HCS after stopping: %s", self.name, exc)
            observed = None
        finally:
            self.close()
        if observed in _LIVE:
            # Made again (and maybe started) since: not ours to mark stopped.
            _log.info("sandbox %s: made again by another process while stopping", self.name)
            return
        if self._record.state == "stopped" and not fields:
            return  # nothing to write
        try:
            self._record = store.update(
                rid, expect_state=self._record.state, state="stopped", **fields
            )
        except errors.StateConflictError:  # changed once more: refresh() tells
            self._record = store.get(rid)

    def _restart_persistent(self, store: Store, progress: Progress | None) -> None:
        """Re-create a stopped persistent sandbox's compute system on the same disk.

        The record stays ``creating`` (this process's, ``restarting``) until the end: start,
        stop and kill refuse it, so no other process starts or stops this system.  Only a
        forced remove (``removing``, then deleted) or a prune that found this process dead
        may take the record meanwhile: then neither the rollback nor the end writes over
        it (compare-and-set on ``creating``), and the system this start made is terminated
        (the remover may have looked before it existed)."""
        from hcs_sandbox.sandbox.maintenance import RESTARTING_KEY

        rid = self._record.id
        # ``restarting``: if this process dies before the end, prune knows that the record
        # is a persistent sandbox's (keep its disk, mark it stopped), not a half-made one.
        self._record = store.update(
            rid,
            expect_state="stopped",
            state="creating",
            owner_pid=os.getpid(),
            owner_host=_host(),
            merge_extra={RESTARTING_KEY: True},
        )

        took: list[errors.HcsSandboxError] = []  # another process took the record

        def stopped_again() -> None:
            try:
                self._set_state(
                    store, "stopped", expect_state="creating", merge_extra={RESTARTING_KEY: None}
                )
            except (errors.StateConflictError, errors.SandboxNotFoundError) as exc:
                # Another process took the record meanwhile (a forced remove): it is that
                # process's to write.
                _log.info("sandbox %s: left to the process that took it: %s", self.name, exc)
                took.append(exc)

        try:
            with UndoStack() as undo:
                undo.push("mark the sandbox stopped again", stopped_again)
                self._provision(store, undo, self.spec, progress=progress)
                system = self._system
                assert system is not None
                _notify(progress, "starting")
                system.start()
                self._after_start(system, progress)
        except errors.HcsSandboxError as exc:
            self._system = None
            if took:
                # The failure is most likely the other process's doing (its remove deleted
                # the disk or the system under this start): say what happened, HCS's error
                # as the cause.
                raise self._restart_taken(took[0]) from exc
            raise
        except BaseException:
            self._system = None
            raise
        try:
            self._set_state(
                store,
                "running",
                expect_state="creating",
                started_at=time.time(),
                log_line="started (re-created from the stored spec)",
                # The previous run's exit status is not this run's (None: dropped).
                merge_extra={RESTARTING_KEY: None, "exit": None},
            )
        except (errors.StateConflictError, errors.SandboxNotFoundError) as exc:
            # Taken meanwhile (a forced remove, or a prune that judged this process dead):
            # not marked running; the system this start made does not outlive it (terminated
            # through this start's own handle: never another process's system of this id).
            self._system = None
            try:
                _terminate_quietly(system)
            except Exception as failure:
                _log.warning("sandbox %s: could not terminate its system: %s", self.name, failure)
            if isinstance(exc, errors.StateConflictError):
                taken = str(exc.actual)
                raise errors.SandboxStateError(
                    f"cannot start sandbox '{self.name}': another process marked it {taken} "
                    "while it was being re-created; the compute system this start made was "
                    "terminated",
                    state=taken,
                    remedy=self._overtaken_start_remedy(taken),
                ) from exc
            raise
        self._mark_run()

    def _restart_taken(self, why: errors.HcsSandboxError) -> errors.HcsSandboxError:
        """The error of a persistent restart whose record another process took while it
        failed (``why``: the conflict, or the record gone)."""
        doing = f"cannot start sandbox '{self.name}'"
        if isinstance(why, errors.StateConflictError):
            state = str(why.actual)
            return errors.SandboxStateError(
                f"{doing}: another process marked it {state} while it was being re-created",
                state=state,
                remedy=self._overtaken_start_remedy(state),
            )
        return errors.SandboxNotFoundError(
            f"{doing}: another process removed it while it was being re-created",
            remedy="nothing is left to start; 'hcs-sandbox ls -a' lists the sandboxes",
        )

    def stop(self, *, timeout: float | None = 30.0) -> None:
        """Shut the guest down gracefully; terminate it if it has not exited in ``timeout``
        seconds (None: wait as long as it takes) (or cannot be shut down gracefully: no
        guest connection).  Does nothing
        unless the sandbox is running or paused: a ``created`` one stays ``created`` (it
        can still start), a stopped one stays as it is; one whose record another process
        marked ``creating``/``removing`` (a create, a persistent restart, a remove) is
        refused (:class:`SandboxStateError`)."""
        if timeout is not None and (type(timeout) not in (float, int) or not timeout >= 0):
            from hcs_sandbox.sandbox.guest import check_timeout

            timeout = check_timeout(
                timeout
            )  # the rule: a number >= 0, not NaN, not a bool; None: no limit
        self._refuse_damaged_system("stop")
        system = self._held_system()
        if system is not None:
            # Through the handle this object holds, when the record says ``running``:
            # without asking HCS for the state first (as in _start_held: HCS refuses a
            # shutdown that does not fit the system's state, and then the checked path
            # below asks HCS and acts on its answer).
            self._reread()  # no read when nothing changed
            if self._record.state == "running" and self._shut_down(system, timeout, True):
                self._stopped(system, "stopped")
                return
        current = self.state
        if current not in _STARTED:
            self._refuse_if_busy(current, "stop")
            return
        system = self._open_system()
        if system is not None and (
            current != "running" or not self._shut_down(system, timeout, False)
        ):
            _terminate_and_wait(system, timeout)
        self._stopped(system, "stopped")

    def _shut_down(self, system: ComputeSystem, timeout: float | None, held: bool) -> bool:
        """Shut the guest down and wait up to ``timeout`` for the exit.  False (``held``
        only): HCS refused the shutdown and says the system is no longer running (nothing
        was done; the caller takes the checked path).  On any other failure the system is
        terminated (True)."""
        try:
            system.shutdown(timeout=timeout)
        except errors.HcsError as exc:
            if held and isinstance(exc, _REFUSED):
                # Changed meanwhile?  Ask HCS (the checked path's query); still running ->
                # handled as before (terminate), else the caller takes the checked path.
                _log.debug("sandbox %s: shutdown refused (%s); checking its state", self.name, exc)
                self.refresh()
                if self._record.state != "running" or self._system is not system:
                    return False  # changed, or another system under this id: look again
            self._terminate_after(system, timeout, exc)
            return True
        if system.exited:
            # The exit event came with (or before) the shutdown's completion, as it usually
            # does: what ``wait`` would return at once is read from the handle by
            # ``_stopped`` (no wait made: ~15 k instructions).
            return True
        try:
            system.wait(timeout)
        except errors.HcsError as exc:
            self._terminate_after(system, timeout, exc)
        return True

    def _terminate_after(
        self, system: ComputeSystem, timeout: float | None, exc: Exception
    ) -> None:
        _log.info("sandbox %s: graceful shutdown failed (%s); terminating", self.name, exc)
        _terminate_and_wait(system, timeout)

    def kill(self) -> None:
        """Terminate the compute system at once (no guest shutdown).  Does nothing unless
        the sandbox is running or paused (a ``created`` one stays ``created``); one marked
        ``creating``/``removing`` is refused, as by :meth:`stop`."""
        self._refuse_damaged_system("kill")
        current = self.state
        if current not in _STARTED:
            self._refuse_if_busy(current, "kill")
            return
        system = self._open_system()
        if system is not None:
            _terminate_and_wait(system, 30.0)
        self._stopped(system, "killed")

    def pause(self) -> None:
        """Pause the running sandbox (HcsPauseComputeSystem).  Any other state:
        :class:`~hcs_sandbox.errors.SandboxStateError` (a ``created`` one was never
        started, so there is nothing to pause)."""
        self._refuse_damaged_system("pause")
        self._require(("running",), "pause", remedy=self._pause_remedy)
        system = self._open_system()
        if system is None:
            self.refresh()
            raise errors.SandboxStateError(
                f"cannot pause sandbox '{self.name}': it has stopped", state="stopped"
            )
        system.pause()
        store = self._db()
        self._record_change(store, "paused", "pause", self._pause_remedy, log_line="paused")

    def resume(self) -> None:
        """Resume a paused sandbox (HcsResumeComputeSystem).  Any other state:
        :class:`~hcs_sandbox.errors.SandboxStateError`."""
        self._refuse_damaged_system("resume")
        self._require(("paused",), "resume", remedy=self._pause_remedy)
        system = self._open_system()
        if system is None:
            self.refresh()
            raise errors.SandboxStateError(
                f"cannot resume sandbox '{self.name}': it has stopped", state="stopped"
            )
        system.resume()
        store = self._db()
        self._record_change(store, "running", "resume", self._pause_remedy, log_line="resumed")

    def _pause_remedy(self, current: str) -> str | None:
        """The remedy of a pause or resume refused in state ``current``."""
        name = self.name
        return {
            "created": f"it was never started; start it first: 'hcs-sandbox start {name}'",
            # (The message says the state: "...: it is running"; the remedy does not repeat it.)
            "stopped": f"start it first ('hcs-sandbox start {name}'; a stopped ephemeral "
            "sandbox cannot start again: run a new one)",
            "paused": f"nothing to pause; 'hcs-sandbox resume {name}' resumes it",
            "running": f"nothing to resume; 'hcs-sandbox pause {name}' pauses it",
        }.get(current)

    def remove(self, *, force: bool = False, progress: Progress | None = None) -> None:
        """Remove the sandbox: its compute system, endpoint, files (all of them; a persistent
        sandbox's disk too) and record. A running or paused sandbox needs ``force=True``
        (kill first).

        Every step runs even when an earlier one fails; what is released is crossed off the
        record at once. If a step failed, the record stays in ``removing`` with what is
        left and the first error is raised: run ``remove`` again, or ``prune``.

        ``progress`` is called with a short text before each pause while a file another
        process still holds open is waited for (``storage.HeldWait``: up to
        ``storage.HELD_RETRY_SECONDS``); never when nothing is held.
        """
        if not isinstance(force, bool):  # "no" is truthy: it removed a running sandbox
            raise errors.SpecError(
                "force must be True or False",
                field="force",
                value=force,
                remedy="pass force=True to kill a running sandbox first, or leave it out",
            )
        store = self._db()
        known = self._record
        if force and (known.has_damaged_fields or known.system_id != known.id):
            # No id names its system: the endpoint could not be deleted while it is
            # attached to it (HCN_E_ENDPOINT_ALREADY_ATTACHED, each time): refused, with the
            # remedy that works (sandbox/damage.py).
            self._refuse_damaged_system("remove")
        exited_at, self._exited_at = self._exited_at, None
        try:
            # This process now owns the record: prune leaves it alone while we live.  One
            # compare-and-set for a settled record (what refresh would have read, then the
            # update: one transaction instead of a read and a transaction).  With
            # ``force`` any state will do: no check below can refuse, and the state that
            # refresh would have asked HCS for is overwritten here anyway.
            self._record = store.update(
                self._record.id,
                expect_state=None if force else _SETTLED,
                state="removing",
                owner_pid=os.getpid(),
                owner_host=_host(),
                known=known,
            )
        except errors.SandboxNotFoundError:
            return
        except errors.StateConflictError:
            if not self._remove_checked(store, force):
                return
            exited_at = None
        # No HcsOpenComputeSystem when this object stopped the sandbox, its handle got the
        # system's exit event (HcsEventSystemExited, hcs_event_type.md), and nobody wrote
        # the record since: the update above applied to exactly the record of that stop (its
        # revision + 1).  Every start of a stopped sandbox writes the record BEFORE it makes
        # or starts a compute system (a persistent restart marks it ``restarting``; a
        # stopped ephemeral one cannot start), so no system of this id has run since the
        # exit this object saw.  Any write in between moves the revision: then HCS is asked.
        gone = (
            exited_at is not None
            and known.revision == exited_at
            and self._record.revision == exited_at + 1
        )
        self._release(store, gone=gone, progress=progress)

    def _remove_checked(self, store: Store, force: bool) -> bool:
        """:meth:`remove`'s checks for a record that may have a compute system (or is being
        created): its state refreshed from HCS, ``force`` where needed; then ``removing``.
        False: the record is gone (nothing to remove)."""
        try:
            current = self.state
        except errors.SandboxNotFoundError:
            return False
        if current in ("running", "paused") and not force:
            raise errors.SandboxStateError(
                f"cannot remove sandbox '{self.name}': it is {current}",
                state=current,
                remedy=f"stop it first, or force it: 'hcs-sandbox rm -f {self.name}'",
            )
        if current == "creating" and not force and _owner_alive(self._record):
            raise errors.SandboxStateError(
                f"cannot remove sandbox '{self.name}': another process is still creating it",
                state=current,
                remedy="wait for it, or force it with 'hcs-sandbox rm -f'",
            )
        # This process now owns the record: prune leaves it alone while we live.
        self._record = store.update(
            self._record.id, state="removing", owner_pid=os.getpid(), owner_host=_host()
        )
        return True

    def _release(
        self, store: Store, *, gone: bool = False, progress: Progress | None = None
    ) -> None:
        """:meth:`remove`'s end, the record being ``removing``: release, then delete it.
        ``gone``: the caller knows HCS has no running system of this id (not looked up).
        ``progress``: told what a deletion waits for (see :meth:`remove`)."""
        system: ComputeSystem | None = None
        look_up = False
        unnamed = False  # no id names its system (nothing to open: release_resources too)
        if gone:
            self.close()
        else:
            try:
                system = self._open_system()
                # ``_open_system`` just looked: None means HCS has no such system.
            except errors.HcsError as exc:  # not NotFound: release_resources asks again and
                _log.info("sandbox %s: could not open its system: %s", self.name, exc)
                look_up = True  # reports it among the failures
            except errors.StoreError as exc:
                if isinstance(exc, errors.StateDatabaseError):
                    raise
                # A damaged compute system id, and no other names its system
                # (damage.refuse_system): nothing to open (release_resources skips it too).
                unnamed = True
                self.close()
        self._system = None
        wait: HeldWait | None = None
        if progress is not None:
            from hcs_sandbox.sandbox import storage  # (see _store)

            wait = storage.HeldWait(progress=progress)
        failures = release_resources(
            store,
            self._record,
            system=system,
            cross_off=False,
            look_up=look_up,
            wait=wait,
            folder=self._directory_text,
            endpoint=self._endpoint_id,
        )
        if failures:
            first = failures[0]
            self._log_line(f"remove incomplete: {errors.in_brief(first)}")
            # "again would fail the same way" holds for an endpoint still attached to the
            # system no id names, not for a file held open, say (review RV65 F2)
            attached = isinstance(first, errors.HcnError) and (
                first.name == "HCN_E_ENDPOINT_ALREADY_ATTACHED"
            )
            raise _remove_incomplete(first, self.name, unnamed=unnamed and attached)
        store.delete(self._record.id, missing_ok=True, exact=True)

    def wait(self, timeout: float | None = None) -> ExitInfo:
        """Block until the compute system exits; raises
        :class:`~hcs_sandbox.errors.OperationTimeoutError` after ``timeout`` seconds.  A
        ``created`` sandbox has a compute system that has not run yet: this waits until it
        has been started (by any process) and has exited.  Any other state that has no
        running system (stopped, ...) returns the last exit status at once."""
        if timeout is not None and (type(timeout) not in (float, int) or not timeout >= 0):
            from hcs_sandbox.sandbox.guest import check_timeout

            timeout = check_timeout(timeout)  # the rule: a number >= 0, not NaN, not a bool
        self._refuse_damaged_system("wait for")
        current = self.state
        if current in _LIVE:
            system = self._open_system()
            with self._lock:
                run = self._system_run
            if system is not None:
                limit = timeout if timeout is not None else 365 * 24 * 3600.0
                try:
                    status = system.wait(limit)
                except errors.OperationTimeoutError as exc:
                    raise exc.restated(
                        f"sandbox '{self.name}' did not exit within {limit:g} s: it is "
                        f"still {current}",
                        remedy=(
                            f"it was never started: start it ('hcs-sandbox start {self.name}')"
                            if current == "created"
                            else f"stop it ('hcs-sandbox stop {self.name}')"
                        )
                        + ", or wait longer (a larger timeout, or none)",
                    ) from exc
                self._remember_exit(status, run)
                try:
                    self.refresh()
                except errors.SandboxNotFoundError:
                    # Removed meanwhile (another process's ``rm -f``): the exit is known.
                    _log.debug("sandbox %s: its record went away as it exited", self.name)
                # What HCS reported for the system waited on, whatever the record says now.
                return _exit_info(status)
        return _exit_info(self._record.extra.get("exit"))

    def _stopped(self, system: ComputeSystem | None, line: str) -> None:
        """stop/kill's end: release the handle; record ``stopped``, the exit status (if
        HCS gave one) and the log ``line`` in ONE store write.

        The write applies to the record as this stop read it (compare-and-set on its
        revision).  When someone wrote it since (after the exit, another object or process
        may have restarted the sandbox: a new compute system under the same id), a record
        now ``creating`` or ``removing`` is left to that process, and HCS is asked: a
        system of this id that exists now is not the one this stop ended, so the record is
        left as it is; otherwise (or when HCS cannot tell) ``stopped`` is written over the
        current state."""
        status = system.exit_status if system is not None else None
        exited = system is not None and system.exited  # HCS sent SystemExited to our handle
        read = self._record
        self.close()
        store = self._db()
        self._exited_at = None
        fields: dict[str, Any] = {"log_line": line}
        if status is not None:
            fields["merge_extra"] = {"exit": dict(status)}
        try:
            self._record = store.update(
                read.id, expect_revision=read.revision, state="stopped", known=read, **fields
            )
        except errors.StateConflictError:
            self._stopped_unless_taken(store, read.id, fields)
            return
        if exited:
            # Nobody wrote between this stop's read and its write: remove may trust that no
            # system of this id has run since (see remove).
            self._exited_at = self._record.revision

    def _remember_exit(self, status: Mapping[str, Any], run: float | None) -> None:
        """Record ``status``, the exit of the system of run ``run`` (``_system_run``), unless
        the record has moved on to another run meanwhile (a persistent sandbox stopped and
        started again by another process: that run's exit is not this one).  A
        compare-and-set on the record as read here; any failure leaves it to ``refresh``."""
        try:
            store = self._db()
            record = store.get(self._record.id)
            if record.started_at != run:
                _log.debug("sandbox %s: exit of an earlier run not recorded", self.name)
                return
            self._record = store.update(
                record.id, expect_revision=record.revision, merge_extra={"exit": dict(status)}
            )
        except errors.HcsSandboxError as exc:
            _log.debug("could not record the exit status of %s: %s", self.name, exc)

    def _mark_run(self) -> None:
        """This object's handle is the system of the run its record now describes (it just
        started, paused or resumed it through that handle)."""
        with self._lock:
            if self._system is not None:
                self._system_run = self._record.started_at

    def inspect(self) -> dict[str, Any]:
        """Everything known about the sandbox, JSON-safe: state, ids, spec, paths, uptime,
        memory/CPU statistics from HCS (when it runs).  A record with damaged fields
        (:mod:`hcs_sandbox.sandbox.damage`) is shown as far as it can be read: each field it
        could not read is None, and ``damaged`` names them with what is wrong (a damaged
        ``system_id`` names no compute system to ask: the state is the recorded one, and
        no statistics; an ``id`` not in the store's form names no folder: ``directory``
        is None)."""
        record = self._judged()  # (a value naming another tool's object: damage too)
        no_system = record.has_damaged_fields and bool(record.damaged_field("system_id"))
        if no_system:
            self._record = self._db().get(record.id)  # (what refresh reads first)
            record = self._judged()
            no_system = bool(record.damaged_field("system_id"))
        state = record.state if no_system else self.state
        record = self._judged()  # (as the state's refresh read it)
        damaged = self._damaged_fields(record)
        spec_ok = "spec" not in damaged
        extra_ok = "extra" not in damaged
        extra = record.extra
        info: dict[str, Any] = {
            "name": record.name,
            "id": record.id,
            "system_id": record.system_id if not no_system else None,
            "state": state,
            "kind": record.kind,
            "persistent": record.persistent,
            "simulated": self.simulated,
            "spec": dict(record.spec) if spec_ok else None,
            "labels": dict(record.labels) if "labels" not in damaged else None,
            "directory": self.directory if "id" not in damaged else None,
            "files": list(record.files) if "files" not in damaged else None,
            "endpoints": list(record.endpoint_ids) if "endpoint_ids" not in damaged else None,
            "ip": self.ip,
            "mac": extra.get("mac"),
            "created_at": record.created_at,
            "started_at": record.started_at,
            "uptime": None,
            "owner": {"pid": record.owner_pid, "host": record.owner_host},
            "warnings": list(extra.get("warnings") or ()) if extra_ok else None,
            "exit": _recorded_exit(extra.get("exit")),
            "statistics": None,
            "memory": None,
        }
        if spec_ok and extra_ok:  # (spec + runtime entries: unknown when either is damaged)
            from hcs_sandbox.sandbox import files  # issue 5: mapped folders (spec + runtime)

            info["mappings"] = [m.to_dict() for m in files.mappings(self)]
            from hcs_sandbox.sandbox import ports  # issue 5 §4: spec + runtime ports

            info["ports"] = [p.to_dict() for p in ports.ports(self)]
        else:
            info["mappings"] = info["ports"] = None
        if damaged:
            info["damaged"] = damaged
        if state in ("running", "paused"):
            if record.started_at:
                info["uptime"] = max(0.0, time.time() - record.started_at)
            system = self._open_system() if not no_system else None
            if system is not None:
                try:
                    props = system.properties({"PropertyTypes": ["Statistics", "Memory"]})
                except errors.HcsError as exc:
                    info["statistics_error"] = str(exc)
                else:
                    info["statistics"] = props.get("Statistics")
                    info["memory"] = props.get("Memory")
                    info["runtime_id"] = props.get("RuntimeId")
        return info

    def _damaged_fields(self, record: Record) -> dict[str, str]:
        """``record``'s damaged fields (:attr:`Record.damaged`: this sandbox's record as
        judged), and its spec when it is JSON but no valid spec (what :attr:`spec`
        refuses)."""
        damaged = record.damaged
        if "spec" not in damaged:
            try:
                _ = self.spec
            except errors.StoreError:
                from hcs_sandbox.sandbox.spec import SandboxSpec

                try:
                    SandboxSpec.from_dict(self._record.spec)
                except errors.SpecError as exc:  # (what made ``spec`` refuse it)
                    damaged["spec"] = f"not a valid spec ({exc.message})"
        return damaged

    def events(self, timeout: float | None = None) -> Iterator[SandboxEvent]:
        """Yield HCS events for this sandbox as they arrive; ends after ``SystemExited``,
        when the sandbox is not running, or when no event came for ``timeout`` seconds.
        Waits in slices (:mod:`hcs_sandbox.hcs._slices`): Ctrl+C interrupts it on Windows
        too."""
        import queue

        from hcs_sandbox.hcs._slices import slices

        if timeout is not None and type(timeout) not in (float, int):
            from hcs_sandbox.sandbox.guest import check_timeout

            timeout = check_timeout(
                timeout
            )  # a wrong type: a SpecError (the value is read as before)

        with self._lock:
            mine = self._system
        # Our own handle saw the exit already (SystemExited is delivered once, to the handles
        # registered at the time): it is the end of the stream, said once.
        system = mine if mine is not None and not mine.closed else self._open_system()
        if system is None:
            self.refresh()
            known = self._record.extra.get("exit")
            if isinstance(known, Mapping):
                yield SandboxEvent(type="SystemExited", data=dict(known), time=time.time())
            return
        q = system.events()
        if system.exited:  # the exit came before the subscription: it is not in the queue
            status = system.exit_status or {}
            yield SandboxEvent(type="SystemExited", data=dict(status), time=time.time())
            return
        while True:
            event = None
            for part in slices(timeout):
                try:
                    event = q.get(timeout=part)
                    break
                except queue.Empty:
                    continue
            if event is None:
                return
            data = event.json()
            yield SandboxEvent(
                type=event.name,
                data=data if isinstance(data, dict) else {"raw": event.data},
                time=time.time(),
            )
            if event.name == "SystemExited":
                return

    # ------------------------------------------------------------------ logs

    def _log_path(self) -> Path:
        """``<sandbox dir>/sandbox.log``: where earlier versions of hcs-sandbox kept the
        lifecycle log (now in the store: :meth:`Store.log_lines`).  :meth:`logs` still reads
        it when a sandbox made (or touched) by an older version has one."""
        return Path(self._directory_text(), LOG_NAME)

    def _log_line(self, text: str) -> None:
        """Append a line to the sandbox's lifecycle log, a row of the store (never fails
        the operation).  A line that reports a state change goes with the change instead
        (``store.update(log_line=...)``: same transaction, no commit of its own).  A record
        removed meanwhile gets no line (its log went with it)."""
        try:
            self._db().add_log_line(self._record.id, text)
        except errors.HcsSandboxError as exc:
            _log.debug("could not write the log of %s: %s", self._record.name, exc)

    def logs(self, encoding: str = "utf-8") -> str:
        """The sandbox's log (lifecycle steps, one line each), then the logon command's
        output when there is one (:mod:`hcs_sandbox.sandbox.logon`), decoded with
        ``encoding`` (invalid bytes replaced, CRLF turned into ``\\n``; e.g. ``"cp850"``
        for what cmd.exe's built-ins write on a German guest: docs/exec.md)."""
        return self.read_log().text(encoding)

    def read_log(self, start: int = 0) -> LogRead:
        """The log as :meth:`logs` shows it, with the logon command's output as bytes from
        offset ``start`` (:class:`~hcs_sandbox.sandbox.logon.LogRead`): a reader that
        follows the log asks for the bytes past what it has (``start=read.size``)."""
        from hcs_sandbox.sandbox import logon

        stored = [_log_text(when, line) for when, line in self._db().log_lines(self._record.id)]
        old = self._old_log_lines()
        if old:
            # Lines an older hcs-sandbox wrote to the file: merged by time (to the second,
            # as the file has it; the file's line first on a tie).
            stored = sorted(old + stored, key=lambda line: line[:20])
        return logon.read_log(self, "".join(stored), start)

    @property
    def logon_error(self) -> str | None:
        """Why this object's last :meth:`start` could not start the spec's logon command
        (the log has the same line); None when it was started, or there is none."""
        return self._logon.error if self._logon is not None else None

    @property
    def logon_warning(self) -> str | None:
        """Set when the last :meth:`start` started the logon command but captures its
        output only while this process runs (the log folder could not be shared)."""
        return self._logon.warning if self._logon is not None else None

    @property
    def _logon_thread(self) -> threading.Thread | None:
        """The thread waiting for the last start's logon command to end (tests join it)."""
        return self._logon.thread if self._logon is not None else None

    def _old_log_lines(self) -> builtins.list[str]:
        """The lines of an older version's log file (``sandbox.log``, or ``logs/sandbox.log``
        before that), each ending in a newline; a line continued on the next ones (a
        message with a line break) stays one entry, so a merge keeps it whole."""
        folder = self._directory_text()
        text = ""
        for path in (os.path.join(folder, "logs", LOG_NAME), os.path.join(folder, LOG_NAME)):
            try:
                with open(path, encoding="utf-8") as fh:
                    text += fh.read()
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise errors.StorageError(
                    f"could not read the log of sandbox '{self.name}': {exc}"
                ) from exc
            if text and not text.endswith("\n"):
                text += "\n"
        entries: builtins.list[str] = []
        for line in text.splitlines(keepends=True):
            if entries and not _LOG_STAMP.match(line):
                entries[-1] += line
            else:
                entries.append(line)
        return entries

    # ------------------------------------------------------------------ issue 5 (exec/cp)

    def exec(
        self,
        command: str | Sequence[str],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        user: str | None = None,
        stdin: bytes | None = None,
    ) -> ExecResult:
        """Run a command in the guest and collect its output (:mod:`hcs_sandbox.sandbox.guest`).

        ``command``: a command line string, or an argv list (quoted for Windows).  Returns
        :class:`ExecResult`; raises :class:`~hcs_sandbox.errors.ExecTimeoutError` after
        ``timeout`` seconds (the guest process is killed first)."""
        self._refuse_damaged("run a command in")
        from hcs_sandbox.sandbox import guest

        return guest.sandbox_exec(
            self, command, timeout=timeout, env=env, workdir=workdir, user=user, stdin=stdin
        )

    def spawn(
        self,
        command: str | Sequence[str],
        *,
        tty: bool = False,
        console_size: tuple[int, int] | None = None,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        user: str | None = None,
    ) -> GuestProcess:
        """Start a command in the guest with pipes; returns a streaming :class:`GuestProcess`
        (``tty=True``: a pseudo console of ``console_size`` = (width, height))."""
        self._refuse_damaged("run a command in")
        from hcs_sandbox.sandbox import guest

        return guest.sandbox_spawn(
            self,
            command,
            tty=tty,
            console_size=console_size,
            env=env,
            workdir=workdir,
            user=user,
        )

    def map(
        self, host_path: str | os.PathLike[str], guest_path: str, *, read_only: bool = True
    ) -> None:
        """Map a host folder into the running guest at ``guest_path`` (read-only unless
        ``read_only=False``); see :mod:`hcs_sandbox.sandbox.files`."""
        self._refuse_damaged("map a folder into")
        from hcs_sandbox.sandbox import files

        files.map_folder(self, host_path, guest_path, read_only=read_only)

    def unmap(self, guest_path: str) -> None:
        """Remove a folder mapped with :meth:`map` (the host folder is untouched)."""
        self._refuse_damaged("unmap a folder from")
        from hcs_sandbox.sandbox import files

        files.unmap_folder(self, guest_path)

    def copy_in(self, host_path: str | os.PathLike[str], guest_path: str) -> None:
        """Copy a host file or folder into the guest (into ``guest_path`` when it is an
        existing folder), streamed through the sandbox's transfer share."""
        self._refuse_damaged("copy into")
        from hcs_sandbox.sandbox import files

        files.copy_in(self, host_path, guest_path)

    def copy_out(self, guest_path: str, host_path: str | os.PathLike[str]) -> None:
        """Copy a guest file or folder to the host (into ``host_path`` when it is an
        existing folder), streamed through the sandbox's transfer share."""
        self._refuse_damaged("copy out of")
        from hcs_sandbox.sandbox import files

        files.copy_out(self, guest_path, host_path)

    # ------------------------------------------------------------------ ports (issue 5 §4)

    def publish(self, host_port: int, guest_port: int, protocol: str = "tcp") -> PublishedPort:
        """Forward ``host_port`` on the host to ``guest_port`` in the guest (``"tcp"`` or
        ``"udp"``): a ``PortMapping`` policy on the endpoint (:mod:`hcs_sandbox.sandbox.ports`)."""
        self._refuse_damaged("publish a port of")
        from hcs_sandbox.sandbox import ports

        return ports.publish(self, host_port, guest_port, protocol)

    def unpublish(self, host_port: int, protocol: str = "tcp") -> None:
        """Remove a port added with :meth:`publish` (also while the sandbox is stopped)."""
        self._refuse_damaged("unpublish a port of")
        from hcs_sandbox.sandbox import ports

        ports.unpublish(self, host_port, protocol)

    def ports(self) -> builtins.list[PublishedPort]:
        """Every published port: the spec's, then those added with :meth:`publish`."""
        from hcs_sandbox.sandbox import ports

        return ports.ports(self)

    def _port_holder(self, host_port: int, protocol: str) -> str | None:
        """Another of our sandboxes that publishes this host port (``ports.holder_of``)."""
        from hcs_sandbox.sandbox import ports

        return ports.holder_of(self, host_port, protocol)

    # ------------------------------------------------------------------ misc

    def to_dict(self) -> dict[str, Any]:
        """A short JSON-safe summary from the record (what ``ls --json`` prints; no HCS
        call: read :attr:`state` first to refresh)."""
        from hcs_sandbox.sandbox.store import published_ports

        r = self._record
        return {
            "name": r.name,
            "id": r.id,
            "state": r.state,
            "kind": r.kind,
            "persistent": r.persistent,
            "base": (r.spec.get("base") or {}).get("kind") if isinstance(r.spec, Mapping) else None,
            "network": r.spec.get("network") if isinstance(r.spec, Mapping) else None,
            "ip": self.ip,
            # (the spec's and those added with publish; None: the spec is damaged, unknown)
            "ports": published_ports(
                r.spec.get("ports") if isinstance(r.spec, Mapping) else None,
                r.extra.get("ports") if isinstance(r.extra, Mapping) else None,
            ),
            "labels": None if r.damaged_field("labels") else dict(r.labels),
            "created_at": r.created_at,
            "started_at": r.started_at,
        }

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sandbox) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"<Sandbox {self._record.name!r} {self._record.id[:12]} {self._record.state}>"


# --------------------------------------------------------------------------------------
# Resource helpers (shared with maintenance.prune)
# --------------------------------------------------------------------------------------


def _remove_after_run(
    sandbox: Sandbox, raised: BaseException | None, progress: Progress | None = None
) -> None:
    """:meth:`Sandbox.run`'s end: remove the sandbox (a Ctrl+C during the removal: it is
    finished anyway).  A failure is raised when the block ended normally (``raised`` None);
    otherwise the block's exception must reach the caller as it is: the failure is logged
    and noted on it.  ``progress`` (the run's) is told of a wait for a file held open
    (review RV59 F1)."""
    try:
        try:
            sandbox.remove(force=True, progress=progress)
        except KeyboardInterrupt:
            # A second Ctrl+C while cleaning up: finish the clean-up anyway.
            sandbox.remove(force=True, progress=progress)
    except Exception as exc:
        if raised is None:
            raise
        brief = errors.in_brief(exc)
        _log.warning(
            "sandbox %s: the removal after the block's exception failed: %s", sandbox.name, brief
        )
        add_note = getattr(raised, "add_note", None)  # Python 3.11+
        if add_note is not None:
            add_note(f"hcs-sandbox: removing sandbox '{sandbox.name}' also failed: {brief}")


def _start_logon(sandbox: Sandbox, progress: Progress | None) -> None:
    """Issue 5: start the spec's logon command in the guest; returns once it runs there (or
    failed to start, logged); its end is awaited in the background
    (hcs_sandbox.sandbox.logon)."""
    sandbox._logon = None  # a start that raises below leaves nothing of the one before
    if not sandbox.spec.logon_command:
        return  # nothing to start (what start_logon_command says too), without its import
    from hcs_sandbox.sandbox import logon

    sandbox._logon = logon.start_logon_command(sandbox, progress=progress)


def _inside(path: str | os.PathLike[str], directory: str | os.PathLike[str]) -> bool:
    parent, name = os.path.split(os.fspath(path))
    if parent == os.fspath(directory) and name not in ("", ".", "..") and not os.path.islink(path):
        # A plain entry of ``directory`` itself: inside, whatever ``directory`` resolves to
        # (what the resolving test below finds, without resolving every path component).
        return True
    try:
        Path(path).resolve().relative_to(Path(directory).resolve())
    except ValueError:
        return False
    return True


def _names_only_its_own(
    record: Record,
    folder: Callable[[], str],
    *,
    files: bool = True,
    endpoint: Callable[[], str] | None = None,
) -> bool:
    """Cheap, with nothing imported: True when ``record`` surely names only its own things
    (the rules of :func:`hcs_sandbox.sandbox.damage.judged`, the common case): no damaged
    field, its compute system id is its id, each endpoint id it lists is ``endpoint()``
    (the planner's derivation, computed once per Sandbox object: review RV-foreign R2; no
    ``endpoint``: a listed endpoint is damage.py's to judge), and (``files``) each file is
    its folder (``folder()``) or a plain name directly in it, as text (no folder between
    that could be a link).  False: ask ``damage.judged`` (which also knows the folder
    reached through another spelling of the state directory)."""
    if record.has_damaged_fields or record.system_id != record.id:
        return False
    if record.endpoint_ids:
        if endpoint is None:
            return False
        own = endpoint()
        for e in record.endpoint_ids:
            if e != own and e.lower() != own:
                return False
    if not files or not record.files:
        return True
    directory = folder()
    start = len(directory) + 1
    for f in record.files:
        if f == directory:
            continue
        rest = f[start:]
        if (
            not f.startswith(directory)
            or f[start - 1 : start] != os.sep
            or rest in ("", ".", "..")
            or os.sep in rest
            or (os.altsep is not None and os.altsep in rest)
        ):
            return False
    return True


def _folder_of(store: Store, record: Record) -> str:
    """``record``'s folder in ``store``'s state directory (its id in the store's form)."""
    from hcs_sandbox.sandbox import paths

    return paths.sandbox_dir_text(os.path.dirname(os.fspath(store.path)), record.id)


def _revoker(system_id: str, path: str) -> Callable[[], None]:
    def revoke() -> None:
        from hcs_sandbox.sandbox import storage

        storage.revoke_vm_access(system_id, path)

    return revoke


def _remove_recorded(
    store: Store,
    record_id: str,
    path: str | os.PathLike[str],
    held: HeldWait | None = None,
) -> None:
    """Delete a file/folder the record owns, then cross it off the record.  ``held``: the
    wait for files held open that the other deletions of the same rollback share (one
    wait per rollback, not per file: review RV34 #2)."""
    from hcs_sandbox.sandbox import storage

    storage.remove_path(path, wait=held)
    store.remove_file(record_id, os.fspath(path))


def _delete_recorded_endpoint(store: Store, record_id: str, endpoint_id: str) -> None:
    """Delete an endpoint the record owns (gone already is fine), then cross it off."""
    from hcs_sandbox.sandbox import network

    network.delete_endpoint(endpoint_id)
    store.remove_endpoint(record_id, endpoint_id)


def _delete_named_endpoints(record: Record) -> None:
    """Delete the endpoints named after ``record`` (``hcs-sandbox-<id>``, the planner's
    name): a removal's way to them when the record's endpoint ids cannot be read.  None
    are looked for when its spec says it has no network; none exist where HCN is not
    available (as prune's scan takes it)."""
    from hcs_sandbox.sandbox import network

    try:
        spec = record.spec
    except errors.StoreError:
        spec = None
    if isinstance(spec, dict) and spec.get("network") == "none":
        return
    name = f"{network.ENDPOINT_NAME_PREFIX}{record.id}".lower()
    try:
        found = network.list_endpoints()
    except errors.HcsUnavailableError:
        return
    for info in found:
        if (info.name or "").lower() == name:
            network.delete_endpoint(info.id)


def _terminate_and_wait(system: ComputeSystem, timeout: float | None) -> None:
    """Terminate, wait for the exit event, keep the handle open for the exit status."""
    if system.exited:
        return  # its exit event came already: nothing to terminate or wait for
    system.terminate(ignore_stopped=True)
    try:
        system.wait(timeout)
    except errors.HcsError as exc:
        _log.warning("compute system %s: %s", system.id, exc)


def _terminate_quietly(system: ComputeSystem) -> None:
    """Undo step: terminate and close a compute system (gone already is fine)."""
    system.terminate_and_close(timeout=60.0)


def _host() -> str:
    import socket

    return socket.gethostname()


def _owner_alive(record: Record) -> bool:
    """True when the process that created the record may still run (same host and the pid
    exists), or when we cannot tell (another host)."""
    import socket

    if not record.owner_pid:
        return False
    if record.owner_host and record.owner_host.lower() != socket.gethostname().lower():
        return True
    return pid_alive(record.owner_pid)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if sys.platform == "win32":  # pragma: no cover - Windows only
        import ctypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        # OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION = 0x1000) + GetExitCodeProcess
        # (STILL_ACTIVE = 259): processthreadsapi.h, learn.microsoft.com.
        handle = kernel32.OpenProcess(0x1000, False, pid)
        if not handle:
            return ctypes.get_last_error() == 5  # ERROR_ACCESS_DENIED: it exists
        try:
            code = ctypes.c_ulong(0)
            ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
            return bool(ok) and code.value == 259
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_resources(
    store: Store,
    record: Record,
    *,
    system: ComputeSystem | None = None,
    cross_off: bool = True,
    look_up: bool = True,
    wait: HeldWait | None = None,
    folder: Callable[[], str] | None = None,
    endpoint: Callable[[], str] | None = None,
) -> builtins.list[Exception]:
    """Release everything a record owns: its compute system, endpoints, VM-access grants on
    files it does not own, and files (newest first). Each released item is crossed off the
    record at once; every step runs even when an earlier one failed. Returns the failures
    (empty: all released; the caller deletes the record).

    ``cross_off`` False: when everything was released, the deleted files are not crossed
    off (one store write saved: the caller deletes the record right after; a crash in
    between leaves listed files that no longer exist, which count as released).  After a
    failure they are crossed off as usual.

    ``system`` None with ``look_up`` True: open the record's compute system here (it may
    exist); ``look_up`` False: the caller has just found that it does not exist.

    ``wait``: the wait for files held open, shared with the caller's other deletions (one
    ``prune`` run: review RV36 #1); None: one wait for this record.

    ``folder``: gives the record's folder as text (the caller's, when it has it; else made
    from the store's path).  ``endpoint``: gives the id the planner gives its endpoint (the
    caller's, computed once per Sandbox object: :func:`_names_only_its_own`)."""
    import hcs_sandbox.sandbox.storage as storage_module  # (see _store)

    # A compute system id, endpoint id or file that names something not the sandbox's own
    # (another tool's system or endpoint, a host file outside its folder or reached through
    # a link: QA analyst F4, F5) is damage: never terminated or deleted (sandbox/damage.py).
    # Its files are acted on as this run's state directory names them (damage.local_files:
    # ``<this state dir>/sandboxes/<id>/<rest>``), never as listed (review RV-foreign R1).
    listed: dict[str, str] | None = None  # (the name acted on: the name listed)
    if not _names_only_its_own(
        record, folder or (lambda: _folder_of(store, record)), endpoint=endpoint
    ):
        from hcs_sandbox.sandbox import damage

        record = damage.judged(store, record, links=True)
        if record.files and record.damaged_field("files") is None:
            listed = dict(zip(damage.local_files(store, record), record.files, strict=True))
    failures: builtins.list[Exception] = []
    damaged = record.has_damaged_fields
    system_id: str | None = record.system_id
    if damaged and record.damaged_field("system_id"):
        # No compute system id to open or revoke grants for (review RV58 F6): the one
        # hcs-sandbox gives it (its sandbox's id), else skipped; said by
        # damage.remove_notes (prune terminates a system that no record names).
        from hcs_sandbox.sandbox import damage

        system_id = damage.system_id(store, record)
        if system_id is None:
            system, look_up = None, False
        elif system is None:
            look_up = True
    try:
        if system is None and look_up and system_id is not None:
            # (Imported here only: ``from`` a module, not a package, costs Python 3.11 an
            # AttributeError for its missing ``__path__``, ~8 k instructions per call.)
            from hcs_sandbox.hcs.system import ComputeSystem

            try:
                system = ComputeSystem.open(system_id)
            except errors.NotFoundError:
                system = None
        if system is not None:
            system.terminate_and_close(timeout=60.0)
    except Exception as exc:
        failures.append(exc)
    for endpoint_id in record.endpoint_ids:
        try:
            _delete_recorded_endpoint(store, record.id, endpoint_id)
        except Exception as exc:
            failures.append(exc)
    by_id = False
    if damaged:
        from hcs_sandbox.sandbox import damage

        # The folder and endpoint-name conventions name a sandbox by its id exactly as the
        # store writes it: a hand-edited id (another sandbox's in upper case, review RV58
        # F4) names nothing of this record's (damage.remove_notes says so).
        by_id = damage.conventions_apply(record)
    if damaged and by_id and record.damaged_field("endpoint_ids"):
        # Its endpoints by their name (hcs-sandbox-<id>: the planner's), as the list of
        # their ids cannot be read (sandbox/damage.py).
        try:
            _delete_named_endpoints(record)
        except Exception as exc:
            failures.append(exc)
    grants = record.extra.get("foreign_grants")
    if damaged and record.damaged_field("extra"):
        grants = damage.foreign_grants(record)  # what the spec tells
    if system_id is None:
        grants = ()  # (HcsRevokeVmAccess needs the system's id: damage.remove_notes)
    for path in grants or ():
        try:
            storage_module.revoke_vm_access(system_id or record.system_id, str(path))
        except Exception as exc:
            _log.info("could not revoke VM access to %s: %s", path, exc)
    released: builtins.list[str] = []
    kept: builtins.list[str] = []  # could not be deleted
    # The wait for files another process still holds open is for the whole sandbox: once
    # one file was waited for in vain, the others get one attempt each (the holder, likely
    # the same, had that long to let go of them too): storage.HeldWait.
    held = wait if wait is not None else storage_module.HeldWait()
    owned: tuple[str, ...] | builtins.list[str] = record.files
    if listed is not None:
        owned = builtins.list(listed)
    if damaged and by_id and record.damaged_field("files"):
        # Its folder by the folder convention: every file a sandbox owns is in it
        # (sandbox/damage.py); the list of them cannot be read.
        from hcs_sandbox.sandbox import paths

        state = os.path.dirname(os.fspath(store.path))
        owned = (paths.sandbox_dir_text(state, record.id),)
    for path in reversed(owned):
        if kept and any(_inside(other, path) for other in kept):
            # A folder with a file in it that could not be deleted: it cannot be either
            # (its failure is that file's; no second wait for the same holder).
            continue
        try:
            storage_module.remove_path(path, wait=held)
            released.append(path)
        except Exception as exc:
            kept.append(path)
            failures.append(exc)
    if released and (cross_off or failures):
        # Crossed off AFTER deleting them, all in one transaction.
        try:
            if listed is not None:
                released = [listed.get(path, path) for path in released]
            store.remove_resources(record.id, files=released)
        except Exception as exc:
            failures.append(exc)
    return failures
