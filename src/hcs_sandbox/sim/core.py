# ruff: noqa: PLR0917  (the exports mirror C signatures: positional by nature)
"""The simulated Host Compute Service: handles, operations, compute systems, processes, HCN,
storage and virtdisk, with leak accounting, fault injection and a latency model.

Behaviour follows Microsoft's HCS documentation (MicrosoftDocs/Virtualization-Documentation
``virtualization/api/hcs``: ``Reference/*.md``, ``Reference/HCSHResult.md``,
``SchemaReference.md``) and is deliberately strict.  Where the documentation is silent the choice is
written next to the code and listed in docs/windows-notes.md#sim.

Every export is a method named like the C function; :mod:`hcs_sandbox.sim.backend` wraps them
in CFUNCTYPE thunks.  Methods receive the values ctypes converted (ints/None for pointers and
handles, ``str``/None for PCWSTR, pointer objects for out-parameters) and return the C value.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import json
import os
import stat
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hcs_sandbox.sim import hresults as H
from hcs_sandbox.sim.exports import (
    HCN_NOTIFICATION_CALLBACK,
    HCS_EVENT,
    HCS_EVENT_CALLBACK,
    HCS_OPERATION_COMPLETION,
)
from hcs_sandbox.sim.state import StateStore, default_state_dir, read_bytes
from hcs_sandbox.sim.validate import (
    SchemaError,
    parse_document,
    parse_hcs,
    validate_hcn,
    validate_hcs,
)
from hcs_sandbox.sim.workers import Workers

if TYPE_CHECKING:
    import ipaddress
    from pathlib import Path

__all__ = ["ENV_FAULTS", "ENV_LATENCY", "Fault", "Simulator", "SimulatorError"]

ENV_FAULTS = "HCS_SANDBOX_SIM_FAULTS"
ENV_LATENCY = "HCS_SANDBOX_SIM_LATENCY"

INFINITE = 0xFFFFFFFF  # winbase.h: the "no time-out" value of the Wait* timeouts

# HCS_OPERATION_TYPE.md
OP_NONE, OP_ENUMERATE, OP_CREATE, OP_START, OP_SHUTDOWN = -1, 0, 1, 2, 3
OP_PAUSE, OP_RESUME, OP_SAVE, OP_TERMINATE, OP_MODIFY = 4, 5, 6, 7, 8
OP_GET_PROPERTIES, OP_CREATE_PROCESS, OP_SIGNAL_PROCESS = 9, 10, 11
OP_GET_PROCESS_INFO, OP_GET_PROCESS_PROPERTIES, OP_MODIFY_PROCESS = 12, 13, 14
OP_CRASH = 15  # HcsOperationTypeCrash (Windows SDK ComputeDefs.h; not on HCS_OPERATION_TYPE.md)

# HCS_EVENT_TYPE.md
EVENT_SYSTEM_EXITED = 0x00000001
EVENT_PROCESS_EXITED = 0x00010000
EVENT_OPERATION_CALLBACK = 0x01000000
EVENT_SYSTEM_CRASH_INITIATED = 0x00000002  # HCS_EVENT_TYPE.md HcsEventSystemCrashInitiated
# HCN_NOTIFICATIONS (win32metadata, via py-win32more HostComputeNetwork): NetworkCreate 2,
# NetworkDelete 4
HCN_NOTIFICATION_NETWORK_CREATE = 2
HCN_NOTIFICATION_NETWORK_DELETE = 4
# HCS_EVENT_OPTIONS.md
EVENT_OPTION_ENABLE_OPERATION_CALLBACKS = 1

# Default SupportedSchemaVersions (HcsGetServiceProperties "Basic"): 2.1 .. 2.6 (Win11 21H2).
DEFAULT_SCHEMA_VERSIONS: tuple[tuple[int, int], ...] = (
    (2, 1),
    (2, 2),
    (2, 3),
    (2, 4),
    (2, 5),
    (2, 6),
)

# What enumeration needs of each system (_reap_locked, _properties without property types),
# kept in the simulator's index of system records (StateStore.summaries).
SUMMARY_KEYS = (
    "Id",
    "Owner",
    "SystemType",
    "RuntimeId",
    "State",
    "StartTime",
    "MemoryMB",
    "Handles",
)
GROUP_GRANTS = "group-grants.json"  # HcsGrantVmGroupAccess records (a JSON list of paths)
STOPPED = "Stopped"  # the State of a stopped system's record (its exit status)

# virtdisk.h values (learn.microsoft.com ne-virtdisk-virtual_disk_access_mask-r1,
# ne-virtdisk-open_virtual_disk_flag, ne-virtdisk-attach_virtual_disk_flag).
VIRTUAL_DISK_ACCESS_ATTACH_RO = 0x00010000
VIRTUAL_DISK_ACCESS_ATTACH_RW = 0x00020000
VIRTUAL_DISK_ACCESS_ALL = 0x003F0000
OPEN_VIRTUAL_DISK_FLAGS_KNOWN = 0x00000FFF  # NO_PARENTS (0x1) .. SUPPORT_ENCRYPTED_FILES (0x800)
ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY = 0x00000001
ATTACH_VIRTUAL_DISK_FLAG_PERMANENT_LIFETIME = 0x00000004
ATTACH_VIRTUAL_DISK_FLAGS_KNOWN = 0x000007FF  # READ_ONLY (0x1) .. AT_BOOT (0x400)

LOCAL_FREE = "LocalFree"
COTASKMEM_FREE = "CoTaskMemFree"

# Functions whose "latency" the "*" wildcard covers: the asynchronous HCS operations.
ASYNC_FUNCTIONS = frozenset(
    {
        "HcsCreateComputeSystem",
        "HcsStartComputeSystem",
        "HcsShutDownComputeSystem",
        "HcsTerminateComputeSystem",
        "HcsPauseComputeSystem",
        "HcsResumeComputeSystem",
        "HcsSaveComputeSystem",
        "HcsGetComputeSystemProperties",
        "HcsModifyComputeSystem",
        "HcsEnumerateComputeSystems",
        "HcsCreateProcess",
        "HcsTerminateProcess",
        "HcsSignalProcess",
        "HcsGetProcessInfo",
        "HcsGetProcessProperties",
        "HcsModifyProcess",
        "HcsCrashComputeSystem",
    }
)


GENERIC_ALL = 0x10000000  # winnt.h; HcsOpenComputeSystem.md: requestedAccess "must be GENERIC_ALL"

# virtdisk.h VIRTUAL_STORAGE_TYPE.DeviceId values (an all-zero type: inferred from the file).
VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN = 0
VIRTUAL_STORAGE_TYPE_DEVICE_VHD = 2
CREATE_VIRTUAL_DISK_FLAG_FULL_PHYSICAL_ALLOCATION = 0x1
_VHD1_BLOCK_SIZES = (0, 0x80000, 0x200000)  # 0 = CREATE_VIRTUAL_DISK_PARAMETERS_DEFAULT_BLOCK_SIZE
_MIB = 1024 * 1024


def _create_parameters_invalid(
    version: int, access: int, flags: int, size: int, block: int, sector: int, vhd1: bool
) -> bool:
    """Whether ``CreateVirtualDisk`` arguments break a rule that virtdisk's reference states
    as a must (nf-virtdisk-createvirtualdisk.md, ns-virtdisk-create_virtual_disk_parameters.md).
    A zero block or sector size is the documented default (virtdisk.h
    ``CREATE_VIRTUAL_DISK_PARAMETERS_DEFAULT_BLOCK_SIZE`` / ``_DEFAULT_SECTOR_SIZE``, both 0 in
    the SDK metadata; go-winio ``CreateDiffVhd`` passes 0 sectors)."""
    if version == 2 and access != 0:
        return True  # "only the VIRTUAL_DISK_ACCESS_NONE (0) value may be specified"
    if size % 512:
        return True  # MaximumSize: "Must be a multiple of 512."
    if version == 1:
        return block not in _VHD1_BLOCK_SIZES or sector not in (0, 512)
    if vhd1:
        if flags & CREATE_VIRTUAL_DISK_FLAG_FULL_PHYSICAL_ALLOCATION and block:
            return True  # the default "is the only supported value for fixed VHD 1 virtual disks"
        return block not in _VHD1_BLOCK_SIZES or sector not in (0, 512)
    # "For VHDX this must be a multiple of 1 MB between 1 and 256 MB."; sectors 512 or 4096.
    if block and (block % _MIB or not _MIB <= block <= 256 * _MIB):
        return True
    return sector not in (0, 512, 4096)


class SimulatorError(ValueError):
    """Bad input to the simulator's Python control API (fault or latency syntax...)."""


class Fault:
    """``nth`` call (1-based) of ``function`` and the ``times - 1`` calls after it fail.

    A plain class with a dataclass's constructor, fields, ``==`` and repr (no ``dataclasses``
    import in a simulated CLI start)."""

    __slots__ = ("function", "hang", "hresult", "nth", "times", "where")
    _FIELDS = ("function", "nth", "hresult", "hang", "times", "where")

    def __init__(
        self,
        function: str,
        nth: int = 1,
        hresult: int = H.E_FAIL,
        hang: bool = False,
        times: int = 1,
        where: str = "call",  # "call": returned by the function; "result": in the operation result
    ) -> None:
        self.function = function
        self.nth = nth
        self.hresult = hresult
        self.hang = hang
        self.times = times
        self.where = where

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._FIELDS)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Fault)
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable, like a dataclass with eq=True

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._FIELDS)
        return f"Fault({fields})"


class _Failure(Exception):
    """Internal: a call fails with ``hr`` and a message for the ResultError / ErrorRecord."""

    def __init__(self, hr: int, message: str) -> None:
        super().__init__(message)
        self.hr = hr & 0xFFFFFFFF
        self.message = message


# ---------------------------------------------------------------------------------------------
# Handle objects
# ---------------------------------------------------------------------------------------------


class Operation:
    def __init__(self, handle: int, context: int | None, callback: int | None, op_id: int) -> None:
        self.handle = handle
        self.context = context
        self.callback = callback
        self.op_id = op_id
        self.state = "idle"  # idle | pending | done
        self.op_type = OP_NONE
        self.hr = 0
        self.result: str | None = None
        self.process_info: tuple[int, int | None, int | None, int | None] | None = None
        self.event = threading.Event()
        self.closed = False
        self.system: SystemHandle | None = None
        self.generation = 0


class SystemHandle:
    def __init__(self, handle: int, system_id: str, runtime_id: str | None = None) -> None:
        self.handle = handle
        self.system_id = system_id
        self.runtime_id = runtime_id
        self.callback: int | None = None
        self.context: int | None = None
        self.options = 0
        self.closed = False
        self.cb_lock = threading.RLock()
        self.failed = False  # the create operation failed: nothing behind the handle
        self.exit_seen = False  # SystemExited was announced to this handle (once, at most)
        self.exited = threading.Event()


class GuestProcess:
    def __init__(self, pid: int, system_id: str, runtime_id: str, params: dict[str, Any]) -> None:
        self.pid = pid
        self.system_id = system_id
        self.runtime_id = runtime_id
        self.params = params
        self.cancel = threading.Event()
        self.stdin_closed = threading.Event()
        self.exited = threading.Event()
        self.exit_code = 0
        self.forced_code: int | None = None
        self.guest_fds: list[int] = []
        self.host_fds: tuple[int | None, int | None, int | None] = (None, None, None)
        self.console_size: tuple[int, int] | None = None
        self.created = time.time()
        self.handles: set[ProcessHandle] = set()  # open handles (under sim lock)


class ProcessHandle:
    def __init__(self, handle: int, process: GuestProcess, system: SystemHandle) -> None:
        self.handle = handle
        self.process = process
        self.system = system
        self.callback: int | None = None
        self.context: int | None = None
        self.closed = False
        self.cb_lock = threading.RLock()
        #: The HcsCreateProcess operation that returned this handle and its generation: the
        #: handle may not be closed while it is pending (see HcsCloseProcess).
        self.creating: tuple[Operation, int] | None = None


def _mac_value(text: Any) -> int | None:
    """A MAC string (``00-15-5D-52-C0-00`` or with ``:``) as an integer, else None."""
    if not isinstance(text, str):
        return None
    raw = text.replace("-", "").replace(":", "")
    if len(raw) != 12:
        return None
    try:
        return int(raw, 16)
    except ValueError:
        return None


class HcnHandle:
    def __init__(
        self,
        handle: int,
        kind: str,  # "network" | "endpoint" | "service callback"
        object_id: str,
        callback: int | None = None,  # service callback registrations only
        context: int | None = None,
    ) -> None:
        self.handle = handle
        self.kind = kind
        self.object_id = object_id
        self.callback = callback
        self.context = context


class VhdHandle:
    """An open virtual disk handle.  What it may do comes from how it was opened
    (``OPEN_VIRTUAL_DISK_PARAMETERS`` ``Version2.ReadOnly`` / ``GetInfoOnly``, or a version-1
    access mask without ``VIRTUAL_DISK_ACCESS_ATTACH_RW``); whether the disk is attached is
    the disk's, not the handle's (:class:`DiskAttachment`, keyed by :attr:`disk`)."""

    def __init__(
        self, handle: int, path: str, *, read_only: bool = False, info_only: bool = False
    ) -> None:
        self.handle = handle
        self.path = path
        self.disk = _disk_key(path)
        self.read_only = read_only or info_only
        self.info_only = info_only


class DiskAttachment:
    """A disk attached with ``AttachVirtualDisk``: the attachment belongs to the disk, not to
    the handle that made it (nf-virtdisk-detachvirtualdisk.md: "If the
    ATTACH_VIRTUAL_DISK_FLAG_PERMANENT_LIFETIME was not specified, the virtual disk will be
    automatically detached when the last open handle is closed")."""

    def __init__(self, by: int, *, permanent: bool, read_only: bool) -> None:
        self.by = by
        self.permanent = permanent
        self.read_only = read_only


_volumes = itertools.count(1)
_volume_prefix: list[str] = []  # this process's: its id and start time (see _new_volume_id)


def _new_volume_id() -> str:
    """A volume id no other disk has had: a prefix made once per process (its id and the
    time: no system call per disk, which CreateVirtualDisk and every format would pay) and a
    counter.  A forked child makes its own prefix.  34 characters (below 2**32 disks per
    process), so that writing a new one over an old one (StateStore.disk_guest_root) leaves
    the disk file's length and every other byte as they were, for a reader that does not
    take the disk's lock."""
    if not _volume_prefix:
        if not _volume_prefix_forks and hasattr(os, "register_at_fork"):  # POSIX
            _volume_prefix_forks.append(True)
            os.register_at_fork(after_in_child=_volume_prefix.clear)
        _volume_prefix.append(f"{os.getpid() & 0xFFFFFFFF:08x}.{time.time_ns():016x}.")
    return _volume_prefix[0] + f"{next(_volumes):08x}"


_volume_prefix_forks: list[bool] = []  # register_at_fork done (once, on first use)


def _system_disk(record: dict[str, Any]) -> str | None:
    """The disk holding a system's ``C:``: the first virtual disk among its SCSI
    attachments that is not read-only (a sandbox's scratch disk), or None."""
    for attachment in (record.get("Attachments") or {}).values():
        if not isinstance(attachment, dict) or attachment.get("ReadOnly"):
            continue
        path = attachment.get("Path")
        if attachment.get("Type", "VirtualDisk") == "VirtualDisk" and isinstance(path, str):
            return path
    return None


def _disk_key(path: str) -> str:
    """The identity of the disk file at ``path``: device and inode (a second path to the same
    file is the same disk), else the normalised path."""
    try:
        st = os.stat(path)
    except OSError:
        return _norm_path(path)
    return f"{st.st_dev}:{st.st_ino}"


def _guid_str(guid: Any) -> str:
    data4 = bytes(guid.Data4)
    raw = (
        guid.Data1.to_bytes(4, "little")
        + guid.Data2.to_bytes(2, "little")
        + guid.Data3.to_bytes(2, "little")
        + data4
    )
    import uuid  # here only (datetime, ipaddress, uuid: ~5-10 ms of a simulated CLI start)

    return str(uuid.UUID(bytes_le=raw))


def _now_iso() -> str:
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def _norm_path(path: str) -> str:
    return os.path.normcase(os.path.abspath(path))


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


class Simulator:
    """One simulated HCS host.  Use :func:`hcs_sandbox.sim.get_simulator` for the process's."""

    def __init__(self, state_dir: str | None = None) -> None:
        self._lock = threading.RLock()
        self._state_dir = state_dir or default_state_dir()
        self.store = StateStore(self._state_dir)
        self._next_handle = 0x5D000000
        self._next_op_id = 1
        self._next_pid = 1000
        self._handles: dict[int, object] = {}
        self._strings: dict[int, tuple[ctypes.Array[ctypes.c_wchar], str, str]] = {}
        self._fds: dict[int, tuple[int, int, str]] = {}
        self._violations: list[str] = []
        self._faults: list[Fault] = []
        self._calls: dict[str, int] = {}
        self._latency: dict[str, float] = {}
        self._hidden: set[tuple[str, str]] = set()
        # Attached virtual disks by disk identity (VhdHandle.disk), in this process only.
        self._attached: dict[str, DiskAttachment] = {}
        # Calls in flight on each HCN / virtual-disk handle (backend._dispatch marks them,
        # see HANDLE_ARGS): closing a handle while one runs is a violation.
        self._busy: dict[int, list[str]] = {}
        self._hang_release = threading.Event()
        self._processes: dict[tuple[str, int], GuestProcess] = {}
        # Indexes, so no call scans every handle or process: open system handles by runtime
        # id, and guest processes by runtime id.
        self._by_runtime: dict[str, set[SystemHandle]] = {}
        self._runtime_procs: dict[str, list[GuestProcess]] = {}
        # runtime id -> whether its guest runs (guest.RunGate), for systems with guest
        # processes in this process: shut while the system is Paused (_pause_guests)
        self._gates: dict[str, Any] = {}
        # runtime id -> the folder standing for its guest's C: (_guest_root), for systems
        # with guest processes in this process
        self._roots: dict[str, Path] = {}
        self._next_tomb_check = 0.0  # time.monotonic() of the next _start_tomb_sweep
        self._threads: list[threading.Thread] = []
        self._watcher: threading.Thread | None = None
        self._workers = Workers("hcs-sim")
        # HCN service notifications, delivered one at a time in the order they happened
        # (one drain job at a time, not a pool job each: two jobs could swap them).
        self._hcn_pending: list[tuple[list[HcnHandle], int, str]] = []
        self._hcn_draining = False
        self._local_exits = 0  # exits this process made (it announces them itself)
        self.watch_interval = 0.05  # seconds between polls of the state for remote exits
        self.schema_versions: tuple[tuple[int, int], ...] = DEFAULT_SCHEMA_VERSIONS
        self.hang_timeout = 30.0
        self.used = False
        self._env_loaded = False

    # ---- configuration -----------------------------------------------------------------------

    @property
    def state_dir(self) -> str:
        return self._state_dir

    def set_state_dir(self, state_dir: str | None) -> None:
        """Point the simulator at another state directory (handles stay as they are)."""
        with self._lock:
            old = self.store
            self._state_dir = state_dir or default_state_dir()
            self.store = StateStore(self._state_dir)
        old.close()

    def set_supported_schema_versions(self, versions: list[tuple[int, int]]) -> None:
        """What HcsGetServiceProperties reports and the highest version documents may use."""
        if not versions:
            raise SimulatorError("at least one schema version is required, e.g. [(2, 1)]")
        self.schema_versions = tuple(sorted(versions))

    @property
    def max_schema_version(self) -> tuple[int, int]:
        return self.schema_versions[-1]

    def hide_export(self, dll: str, name: str) -> None:
        """Make ``dll!name`` unresolvable, as on a Windows build without that export."""
        self._hidden.add((dll.lower(), name))

    def is_hidden(self, dll: str, name: str) -> bool:
        return (dll.lower(), name) in self._hidden

    def inject(
        self,
        function: str,
        nth: int = 1,
        hresult: int = H.E_FAIL,
        hang: bool = False,
        times: int = 1,
        where: str = "call",
    ) -> None:
        """Make the ``nth`` call of ``function`` (and ``times - 1`` more) fail or hang.

        ``where="call"``: the function returns ``hresult``; ``where="result"`` (asynchronous
        functions): the call succeeds and the operation completes with ``hresult`` and a
        ResultError.  ``hang=True``: the operation never completes (or a synchronous call blocks)
        until :meth:`release_hangs` or ``hang_timeout`` seconds.
        """
        if nth < 1 or times < 1:
            raise SimulatorError("nth and times must be 1 or more")
        if where not in ("call", "result"):
            raise SimulatorError(f"where must be 'call' or 'result', not {where!r}")
        with self._lock:
            already = self._calls.get(function, 0)
            self._faults.append(Fault(function, already + nth, hresult, hang, times, where))

    def set_latency(self, function: str, seconds: float) -> None:
        """Delay ``function`` (or every asynchronous operation with ``"*"``) by ``seconds``."""
        if seconds < 0:
            raise SimulatorError("latency must be 0 or more seconds")
        self._latency[function] = seconds

    def release_hangs(self) -> None:
        """Let every hung call or operation finish."""
        self._hang_release.set()

    def load_environment(self) -> None:
        """Read HCS_SANDBOX_SIM_FAULTS and HCS_SANDBOX_SIM_LATENCY (done on first use)."""
        self._env_loaded = True
        for fault in parse_faults(os.environ.get(ENV_FAULTS, "")):
            self._faults.append(fault)
        for name, seconds in parse_latency(os.environ.get(ENV_LATENCY, "")).items():
            self._latency[name] = seconds

    def reset(self) -> None:
        """Forget handles, strings, faults, latency, hidden exports and counters (tests)."""
        with self._lock:
            for process in list(self._processes.values()):
                process.cancel.set()
            for fd in list(self._fds):
                self._close_tracked_fd(fd)
            self._handles.clear()
            self._attached.clear()
            self._strings.clear()
            self._fds.clear()
            self._violations.clear()
            self._faults.clear()
            self._calls.clear()
            self._latency.clear()
            self._hidden.clear()
            self._busy.clear()
            self._processes.clear()
            self._by_runtime.clear()
            self._runtime_procs.clear()
            self._gates.clear()
            self._roots.clear()
            self._hang_release.set()
            self._hang_release = threading.Event()
            self.schema_versions = DEFAULT_SCHEMA_VERSIONS
            self.used = False
            self._env_loaded = True  # a reset simulator ignores the environment's faults

    # ---- accounting --------------------------------------------------------------------------

    def leaks(self) -> dict[str, int]:
        """Open handles and unfreed strings by kind (only kinds with a non-zero count)."""
        counts: dict[str, int] = {}
        with self._lock:
            for obj in self._handles.values():
                kind = self._kind(obj)
                counts[kind] = counts.get(kind, 0) + 1
            for _buf, allocator, function in self._strings.values():
                key = f"string ({function}, free with {allocator})"
                counts[key] = counts.get(key, 0) + 1
            for fd in list(self._fds):
                if self._fd_still_ours(fd):
                    counts["pipe"] = counts.get("pipe", 0) + 1
                else:
                    del self._fds[fd]
        return counts

    def violations(self) -> list[str]:
        """Misuse the simulator saw: bad frees, wrong allocator, internal errors."""
        with self._lock:
            return list(self._violations)

    def violation(self, text: str) -> None:
        with self._lock:
            self._violations.append(text)

    # ---- calls in flight on a handle ---------------------------------------------------------

    def begin_use(self, handle: int | None, function: str) -> None:
        """``function`` starts using ``handle`` (until :meth:`end_use`)."""
        if handle:
            with self._lock:
                self._busy.setdefault(handle, []).append(function)

    def end_use(self, handle: int | None, function: str) -> None:
        if handle:
            with self._lock:
                users = self._busy.get(handle)
                if users is not None and function in users:  # reset() may have forgotten it
                    users.remove(function)
                    if not users:
                        del self._busy[handle]

    def in_flight(self) -> dict[int, list[str]]:
        """The calls running on each HCN / virtual-disk handle: ``{handle: [function, ...]}``."""
        with self._lock:
            return {handle: list(users) for handle, users in self._busy.items()}

    def _closing(self, function: str, handle: int) -> None:
        """A close of ``handle``: a violation while a call that uses it is in flight (on
        Windows that call would go on with a freed handle: hcsshim
        ``internal/computecore/computecore.go`` documents the access violations)."""
        with self._lock:
            users = list(self._busy.get(handle, ()))
        if users:
            self.violation(
                f"{function}(0x{handle:X}): use after close: closed while "
                f"{', '.join(users)} was still using it"
            )

    @staticmethod
    def _kind(obj: object) -> str:
        if isinstance(obj, Operation):
            return "operation"
        if isinstance(obj, SystemHandle):
            return "system"
        if isinstance(obj, ProcessHandle):
            return "process"
        if isinstance(obj, HcnHandle):
            return obj.kind
        if isinstance(obj, VhdHandle):
            return "vhd"
        return "handle"

    def _new_handle(self, factory: Callable[[int], Any]) -> Any:
        with self._lock:
            self._next_handle += 0x10
            obj = factory(self._next_handle)
            self._handles[self._next_handle] = obj
            return obj

    def _get(self, handle: int | None, cls: type[Any]) -> Any:
        if not handle:
            raise _Failure(H.E_INVALIDARG, f"a NULL {cls.__name__} handle was passed")
        with self._lock:
            obj = self._handles.get(handle)
        if not isinstance(obj, cls):
            raise _Failure(H.E_HANDLE, f"0x{handle:X} is not an open {cls.__name__} handle")
        return obj

    def alloc_string(self, text: str, allocator: str, function: str) -> int:
        buf = ctypes.create_unicode_buffer(text)
        address = ctypes.addressof(buf)
        with self._lock:
            self._strings[address] = (buf, allocator, function)
        return address

    def _free(self, address: int | None, allocator: str) -> bool:
        if not address:
            return True
        with self._lock:
            entry = self._strings.pop(address, None)
        if entry is None:
            self.violation(f"{allocator}(0x{address:X}): not a pointer the simulator allocated")
            return False
        if entry[1] != allocator:
            self.violation(
                f"{allocator}(0x{address:X}): string from {entry[2]} must be freed with {entry[1]}"
            )
        return True

    def track_fd(self, fd: int, what: str) -> None:
        info = os.fstat(fd)
        with self._lock:
            self._fds[fd] = (info.st_dev, info.st_ino, what)

    def _fd_still_ours(self, fd: int) -> bool:
        entry = self._fds.get(fd)
        if entry is None:
            return False
        try:
            info = os.fstat(fd)
        except OSError:
            return False
        return (info.st_dev, info.st_ino) == entry[:2]

    def _close_tracked_fd(self, fd: int) -> None:
        if self._fd_still_ours(fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.pop(fd, None)

    # ---- fault and latency plumbing ----------------------------------------------------------

    def calls(self) -> dict[str, int]:
        """How many times each export was called since the last :meth:`reset`."""
        with self._lock:
            return dict(self._calls)

    def enter(self, function: str) -> Fault | None:
        """Count a call of ``function``; return the fault that applies to it, if any."""
        if not self._env_loaded:
            self.load_environment()
        self.used = True
        with self._lock:
            count = self._calls.get(function, 0) + 1
            self._calls[function] = count
            for fault in self._faults:
                if fault.function == function and fault.nth <= count < fault.nth + fault.times:
                    return fault
        return None

    def latency(self, function: str) -> float:
        if function in self._latency:
            return self._latency[function]
        if function in ASYNC_FUNCTIONS:
            return self._latency.get("*", 0.0)
        return 0.0

    def _hang(self) -> None:
        self._hang_release.wait(self.hang_timeout)

    def sync_fault(self, function: str) -> int | None:
        """For synchronous functions: sleep the latency, apply a fault; the HRESULT or None."""
        fault = self.enter(function)
        delay = self._latency.get(function, 0.0)
        if delay:
            time.sleep(delay)
        if fault is None:
            return None
        if fault.hang:
            self._hang()
            return H.ERROR_TIMEOUT_HR
        return fault.hresult

    # ---- operations ---------------------------------------------------------------------------

    def HcsCreateOperation(self, context: int | None, callback: int | None) -> int | None:
        fault = self.enter("HcsCreateOperation")
        if fault is not None:
            return None
        with self._lock:
            self._next_op_id += 1
            op_id = self._next_op_id
        op: Operation = self._new_handle(lambda h: Operation(h, context, callback, op_id))
        return op.handle

    def HcsCloseOperation(self, operation: int | None) -> None:
        self.enter("HcsCloseOperation")
        if not operation:
            return
        with self._lock:
            op = self._handles.pop(operation, None)
        if not isinstance(op, Operation):
            if op is not None:
                with self._lock:
                    self._handles[operation] = op
            self.violation(f"HcsCloseOperation(0x{operation:X}): not an open operation handle")
            return
        op.closed = True

    def HcsSetOperationCallback(
        self, operation: int | None, context: int | None, callback: int | None
    ) -> int:
        hr = self.sync_fault("HcsSetOperationCallback")
        if hr is not None:
            return hr
        op: Operation = self._get(operation, Operation)
        if op.state == "pending":
            return H.HCS_E_OPERATION_ALREADY_STARTED
        op.context, op.callback = context, callback
        return H.S_OK

    def HcsCancelOperation(self, operation: int | None) -> int:
        self.enter("HcsCancelOperation")
        self._get(operation, Operation)
        return H.E_NOTIMPL  # HcsCancelOperation.md: not implemented

    def HcsGetOperationType(self, operation: int | None) -> int:
        self.enter("HcsGetOperationType")
        try:
            op: Operation = self._get(operation, Operation)
        except _Failure:
            return OP_NONE
        return op.op_type

    def HcsGetOperationId(self, operation: int | None) -> int:
        self.enter("HcsGetOperationId")
        try:
            op: Operation = self._get(operation, Operation)
        except _Failure:
            return 0xFFFFFFFFFFFFFFFF  # HCS_INVALID_OPERATION_ID (value UNCONFIRMED)
        return op.op_id

    def _wait(self, operation: int | None, timeout_ms: int | None) -> Operation:
        op: Operation = self._get(operation, Operation)
        if op.state == "idle":
            raise _Failure(H.HCS_E_OPERATION_NOT_STARTED, "the operation was never started")
        if timeout_ms is None:
            done = op.event.is_set()
        elif timeout_ms == INFINITE:
            done = op.event.wait()
        else:
            done = op.event.wait(timeout_ms / 1000.0)
        if not done:
            raise _Failure(
                H.HCS_E_OPERATION_PENDING if timeout_ms is None else H.HCS_E_OPERATION_TIMEOUT,
                "the operation has not completed",
            )
        return op

    def _give_result(self, op: Operation, out: Any) -> int:
        if out:
            out[0] = (
                self.alloc_string(op.result, LOCAL_FREE, "operation result") if op.result else None
            )
        return op.hr

    def HcsWaitForOperationResult(self, operation: int | None, timeout: int, out: Any) -> int:
        self.enter("HcsWaitForOperationResult")
        if out:
            out[0] = None
        op = self._wait(operation, timeout)
        return self._give_result(op, out)

    def HcsGetOperationResult(self, operation: int | None, out: Any) -> int:
        self.enter("HcsGetOperationResult")
        if out:
            out[0] = None
        op = self._wait(operation, None)
        return self._give_result(op, out)

    def _process_result(
        self, operation: int | None, timeout: int | None, info: Any, out: Any
    ) -> int:
        if out:
            out[0] = None
        op: Operation = self._get(operation, Operation)
        if op.op_type not in (OP_CREATE_PROCESS, OP_GET_PROCESS_INFO) and op.state != "idle":
            raise _Failure(H.E_INVALIDARG, "the operation does not track a process")
        op = self._wait(operation, timeout)
        if info and op.process_info is not None:
            pinfo = info.contents
            pid, stdin, stdout, stderr = op.process_info
            pinfo.ProcessId, pinfo.Reserved = pid, 0
            pinfo.StdInput, pinfo.StdOutput, pinfo.StdError = stdin, stdout, stderr
        return self._give_result(op, out)

    def HcsWaitForOperationResultAndProcessInfo(
        self, operation: int | None, timeout: int, info: Any, out: Any
    ) -> int:
        self.enter("HcsWaitForOperationResultAndProcessInfo")
        return self._process_result(operation, timeout, info, out)

    def HcsGetOperationResultAndProcessInfo(
        self, operation: int | None, info: Any, out: Any
    ) -> int:
        self.enter("HcsGetOperationResultAndProcessInfo")
        return self._process_result(operation, None, info, out)

    def _begin(
        self, function: str, operation: int | None, system: SystemHandle | None = None
    ) -> tuple[Operation, Fault | None]:
        return self._begin_counted(function, operation, self.enter(function), system)

    def _begin_counted(
        self,
        function: str,
        operation: int | None,
        fault: Fault | None,
        system: SystemHandle | None = None,
    ) -> tuple[Operation, Fault | None]:
        """:meth:`_begin` for a call already counted by :meth:`enter` (``fault`` is what
        that returned): the entry points that resolve a system or process handle count
        the call first, so a call with a bad handle is counted too (docs/simulator.md)."""
        if not operation:
            raise _Failure(H.E_INVALIDARG, f"{function}: the operation handle is NULL")
        op: Operation = self._get(operation, Operation)
        if op.state == "pending":
            raise _Failure(H.HCS_E_OPERATION_ALREADY_STARTED, "the operation is already in use")
        if (
            system is not None
            and system.callback
            and system.options & EVENT_OPTION_ENABLE_OPERATION_CALLBACKS
            and op.callback
        ):
            raise _Failure(
                H.HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET,
                "the system delivers operation callbacks; the operation must not have its own",
            )
        if fault is not None and fault.where == "call" and not fault.hang:
            raise _Failure(fault.hresult, f"{function}: injected fault")
        return op, fault

    def _launch(
        self,
        function: str,
        op: Operation,
        op_type: int,
        work: Callable[[], tuple[str | None, Any]],
        fault: Fault | None,
        system: SystemHandle | None = None,
    ) -> int:
        """Start ``work`` on a worker thread; it returns (result document, process info)."""
        with self._lock:
            op.state = "pending"
            op.op_type = op_type
            op.event.clear()
            op.hr, op.result, op.process_info = 0, None, None
            op.system = system
            op.generation += 1
            generation = op.generation
        delay = self.latency(function)
        release = self._hang_release
        hang = fault is not None and fault.hang

        def run() -> None:
            if hang:
                if delay:
                    time.sleep(delay)
                release.wait(self.hang_timeout)
            hr, document, info = H.S_OK, None, None
            try:
                if fault is not None and fault.where == "result" and not fault.hang:
                    raise _Failure(fault.hresult, f"{function}: injected fault")
                document, info = work()
            except _Failure as failure:
                hr = failure.hr
                document = json.dumps(
                    {"Error": H.signed(failure.hr), "ErrorMessage": failure.message}
                )
            except Exception as exc:  # a simulator bug: report it loudly
                hr = H.E_FAIL
                document = json.dumps({"Error": H.signed(H.E_FAIL), "ErrorMessage": repr(exc)})
                self.violation(f"internal simulator error in {function}: {exc!r}")
            self._complete(op, generation, hr, document, info)

        if hang:  # blocks for long: its own thread, not a pool worker
            threading.Thread(target=run, name=f"hcs-sim-{function}", daemon=True).start()
        else:
            self._workers.submit(run, delay)
        return H.S_OK

    def _complete(
        self, op: Operation, generation: int, hr: int, document: str | None, info: Any
    ) -> None:
        with self._lock:
            if op.generation != generation:
                return
            op.hr, op.result, op.process_info = H.signed(hr), document, info
            op.state = "done"
            op.event.set()
            closed = op.closed
        if closed:
            return
        if op.callback:
            HCS_OPERATION_COMPLETION(op.callback)(op.handle, op.context)
            return
        system = op.system
        if system is not None and system.options & EVENT_OPTION_ENABLE_OPERATION_CALLBACKS:
            event = HCS_EVENT(EVENT_OPERATION_CALLBACK, None, op.handle)
            self._deliver(system, event)

    def _deliver(self, target: SystemHandle | ProcessHandle, event: HCS_EVENT) -> None:
        with target.cb_lock:
            if target.closed or not target.callback:
                return
            HCS_EVENT_CALLBACK(target.callback)(ctypes.pointer(event), target.context)

    # ---- compute systems ----------------------------------------------------------------------

    def _record(self, handle: SystemHandle, detail: bool = False) -> dict[str, Any] | None:
        if handle.runtime_id is None:
            return None
        record = self._live_record(handle.system_id, detail)  # lock-free read (StateStore.read)
        if record is None or record.get("RuntimeId") != handle.runtime_id:
            return None
        return record

    def _live_record(self, system_id: str, detail: bool = False) -> dict[str, Any] | None:
        """The system's record unless it has stopped (then only its exit status is kept).
        Without ``detail`` it lacks the document and devices (state.DETAIL_KEYS); writing it
        back keeps them."""
        record = self.store.read("systems", system_id, detail=detail)
        if record is None or record.get("State") == STOPPED:
            return None
        return record

    def _exited(self, handle: SystemHandle) -> dict[str, Any] | None:
        tomb = self.store.read("systems", handle.system_id, detail=False)
        if tomb and tomb.get("State") == STOPPED and tomb.get("RuntimeId") == handle.runtime_id:
            return tomb
        return None

    def _live(
        self, handle: SystemHandle, function: str, stopped_hr: int, detail: bool = False
    ) -> dict[str, Any]:
        record = self._record(handle, detail)
        if record is not None:
            return record
        if handle.runtime_id is None or handle.failed:
            raise _Failure(
                H.HCS_E_SYSTEM_NOT_FOUND, f"{function}: the compute system was not created"
            )
        if self._exited(handle) is not None:
            raise _Failure(stopped_hr, f"{function}: the compute system has stopped")
        raise _Failure(H.HCS_E_SYSTEM_NOT_FOUND, f"{function}: the compute system no longer exists")

    def _document(self, text: str | None, what: str, type_name: str) -> Any:
        """``text`` parsed and checked against the schema type ``type_name``; a document that
        is not one fails with HCS_E_INVALID_JSON, "<what>: <the problem>"."""
        try:
            return parse_hcs(text, what, type_name, self.max_schema_version)
        except SchemaError as exc:
            raise _Failure(H.HCS_E_INVALID_JSON, f"{what}: {exc}") from None

    def _options(self, text: str | None, type_name: str, what: str) -> dict[str, Any] | None:
        if text is None or not text.strip():
            return None
        value = self._document(text, what, type_name)
        if not isinstance(value, dict):
            raise _Failure(H.HCS_E_INVALID_JSON, f"{what}: expected a JSON object")
        return value

    def HcsCreateComputeSystem(
        self,
        id: str | None,
        configuration: str | None,
        operation: int | None,
        security_descriptor: int | None,
        out: Any,
    ) -> int:
        op, fault = self._begin("HcsCreateComputeSystem", operation)
        if not out:
            raise _Failure(
                H.E_INVALIDARG, "HcsCreateComputeSystem: computeSystem out pointer is NULL"
            )
        out[0] = None
        if not id:
            raise _Failure(H.E_INVALIDARG, "HcsCreateComputeSystem: id is NULL or empty")
        if security_descriptor:
            raise _Failure(
                H.E_INVALIDARG, "HcsCreateComputeSystem: securityDescriptor must be NULL"
            )
        handle: SystemHandle = self._new_handle(lambda h: SystemHandle(h, id))
        out[0] = handle.handle

        def work() -> tuple[str | None, Any]:
            try:
                document = self._document(configuration, "configuration", "ComputeSystem")
                self._create_system(handle, id, document)
            except _Failure:
                handle.failed = True
                raise
            return None, None

        return self._launch("HcsCreateComputeSystem", op, OP_CREATE, work, fault)

    def _granted(self, system_id: str) -> list[str]:
        """The paths ``system_id`` may use (read once per document): its own grants that still
        count and the group grants (HcsGrantVmGroupAccess: every VM may read those)."""
        granted = [_norm_path(p) for p in self.store.granted(system_id)]
        group = self.store.read_file(GROUP_GRANTS)
        if isinstance(group, list):
            granted += [_norm_path(p) for p in group if isinstance(p, str)]
        return granted

    def _check_file(self, system_id: str, path: str, where: str, granted: list[str]) -> None:
        """``granted``: :meth:`_granted` of ``system_id``."""
        if not os.path.exists(path):
            raise _Failure(H.ERROR_FILE_NOT_FOUND_HR, f"{where}: {path!r} does not exist")
        target = _norm_path(path)
        if not any(target == g or target.startswith(g.rstrip(os.sep) + os.sep) for g in granted):
            raise _Failure(
                H.E_ACCESSDENIED,
                f"{where}: the VM worker for {system_id!r} has no access to {path!r} "
                "(call HcsGrantVmAccess first)",
            )

    def _create_system(self, handle: SystemHandle, system_id: str, doc: dict[str, Any]) -> None:
        vm = doc.get("VirtualMachine")
        grants = self._granted(system_id)
        shares: list[dict[str, Any]] = []
        adapters: dict[str, Any] = {}
        attachments: dict[str, Any] = {}
        if isinstance(vm, dict):
            devices = vm.get("Devices") or {}
            for controller, scsi in (devices.get("Scsi") or {}).items():
                for lun, attachment in ((scsi or {}).get("Attachments") or {}).items():
                    where = f"VirtualMachine.Devices.Scsi.{controller}.Attachments.{lun}.Path"
                    if attachment.get("Type", "VirtualDisk") in ("VirtualDisk", "Iso"):
                        self._check_file(system_id, attachment["Path"], where, grants)
                    attachments[f"{controller}/{lun}"] = attachment
            for key in ("GuestStateFilePath", "RuntimeStateFilePath"):
                path = (vm.get("GuestState") or {}).get(key)
                if path:
                    self._check_file(system_id, path, f"VirtualMachine.GuestState.{key}", grants)
            restore = vm.get("RestoreState") or {}
            if restore.get("SaveStateFilePath"):
                self._check_file(
                    system_id, restore["SaveStateFilePath"], "VirtualMachine.RestoreState", grants
                )
            template = restore.get("TemplateSystemId")
            if template:
                source = self._live_record(template)
                if source is None or source.get("State") != "SavedAsTemplate":
                    raise _Failure(
                        H.HCS_E_SYSTEM_NOT_FOUND,
                        f"VirtualMachine.RestoreState.TemplateSystemId: no SavedAsTemplate system "
                        f"{template!r}",
                    )
            for index, share in enumerate((devices.get("VirtualSmb") or {}).get("Shares") or []):
                self._check_share(
                    share, f"VirtualMachine.Devices.VirtualSmb.Shares.{index}", shares
                )
                shares.append(share)
            for name, adapter in (devices.get("NetworkAdapters") or {}).items():
                self._check_endpoint(adapter, f"VirtualMachine.Devices.NetworkAdapters.{name}")
                adapters[name] = adapter
        system_type = "VirtualMachine" if vm is not None else "Container"
        memory = ((vm or {}).get("ComputeTopology") or {}).get("Memory") or {}
        processor = ((vm or {}).get("ComputeTopology") or {}).get("Processor") or {}
        import uuid

        runtime_id = str(uuid.uuid4())
        with self.store.lock_record("systems", system_id):
            existing = self._live_record(system_id)
            if existing is not None and self._reap_one(existing):
                existing = None  # its last handle belonged to a dead process: it is gone now
            if existing is not None:
                raise _Failure(
                    H.HCS_E_SYSTEM_ALREADY_EXISTS, f"a compute system with id {system_id!r} exists"
                )
            record = {
                "Id": system_id,
                "Owner": doc.get("Owner", ""),
                "SystemType": system_type,
                "RuntimeId": runtime_id,
                "State": "Created",
                "CreateTime": time.time(),
                "StartTime": None,
                "Document": doc,
                "Shares": shares,
                "NetworkAdapters": adapters,
                "Attachments": attachments,
                "MemoryMB": int(memory.get("SizeInMB", 1024)),
                "ProcessorCount": int(processor.get("Count", 1)),
                "TerminateOnLastHandleClosed": bool(doc.get("ShouldTerminateOnLastHandleClosed")),
                "GuestConnection": isinstance(vm, dict) and "GuestConnection" in vm,
                "Handles": {} if handle.closed else {str(os.getpid()): 1},
            }
            self.store.write("systems", system_id, record)  # replaces an exit status
            # The guest folder is created by the first guest process (_spawn); a leftover of an
            # earlier system with this id is moved out of the way (one rename).
            self.store.discard_guest(system_id)
            with self._lock:
                handle.runtime_id = runtime_id
                if not handle.closed:
                    self._by_runtime.setdefault(runtime_id, set()).add(handle)
            if handle.callback:
                self._ensure_watcher()
        if handle.closed and record["TerminateOnLastHandleClosed"]:
            self._exit_system(record, "ForcedExit")

    def _check_share(
        self, share: dict[str, Any], where: str, existing: list[dict[str, Any]]
    ) -> None:
        path = share.get("Path", "")
        if not os.path.isdir(path):
            raise _Failure(H.ERROR_PATH_NOT_FOUND_HR, f"{where}.Path: {path!r} is not a directory")
        if any(s.get("Name", "").lower() == share.get("Name", "").lower() for s in existing):
            raise _Failure(
                H.ERROR_FILE_EXISTS_HR, f"{where}.Name: share {share.get('Name')!r} exists"
            )

    def _check_endpoint(self, adapter: dict[str, Any], where: str) -> None:
        endpoint = str(adapter.get("EndpointId", "")).strip("{}").lower()
        if self.store.read("endpoints", endpoint) is None:
            raise _Failure(
                H.HCN_E_ENDPOINT_NOT_FOUND, f"{where}.EndpointId: no HCN endpoint {endpoint!r}"
            )

    def _reap_locked(self) -> list[dict[str, Any]]:
        """Forget handles of dead processes; terminate systems that lost their last handle.
        Every system: only under the global lock (enumeration).  Returns the systems that
        are still not stopped, as now recorded (enumeration needs no second read)."""
        live = []
        alive: dict[str, bool] = {}
        for summary in self.store.summaries("systems", SUMMARY_KEYS):  # few records are read
            if summary.get("State") == STOPPED:
                continue
            handles = summary.get("Handles") or {}
            for pid in handles:
                if pid not in alive:
                    alive[pid] = _pid_alive(int(pid))
            if all(n > 0 and alive[pid] for pid, n in handles.items()):
                live.append(summary)
                continue
            # Handles of a dead process: reap the record itself (a summary has no details).
            record = self.store.read("systems", summary["Id"], detail=False)
            if record is not None and record.get("State") != STOPPED and not self._reap_one(record):
                live.append(record)
        return live

    def _reap_one(self, record: dict[str, Any]) -> bool:
        """:meth:`_reap_locked` for one system (its record lock held); True when it stopped."""
        handles = record.get("Handles") or {}
        alive = {pid: n for pid, n in handles.items() if n > 0 and _pid_alive(int(pid))}
        if alive == handles:
            return False
        record["Handles"] = alive
        if not alive and record.get("TerminateOnLastHandleClosed"):
            self._exit_system(record, "ForcedExit")
            return True
        self.store.write("systems", record["Id"], record)
        return False

    def _count_handle(
        self,
        system_id: str,
        runtime_id: str | None,
        delta: int,
        current: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Count a handle of this process on the system (+1 or -1).  ``current``: the live
        record, read by the caller under the record lock it still holds (no second read)."""
        with self.store.lock_record("systems", system_id):
            record = current if current is not None else self._live_record(system_id)
            if record is None or record.get("RuntimeId") != runtime_id:
                return None
            handles = record.setdefault("Handles", {})
            pid = str(os.getpid())
            handles[pid] = max(0, handles.get(pid, 0) + delta)
            if handles[pid] == 0:
                del handles[pid]
            self.store.write("systems", system_id, record)
            return record

    def _exit_system(
        self,
        record: dict[str, Any],
        exit_type: str,
        status: int = 0,
        attribution: list[dict[str, Any]] | None = None,
    ) -> None:
        """The system stops: it disappears, leaving only its exit status (Overview.md)."""
        system_id = record["Id"]
        tomb = self._tomb(record, exit_type)
        tomb["Status"] = status
        if attribution:
            tomb["Attribution"] = attribution
        with self.store.lock_record("systems", system_id):
            current = self._live_record(system_id)
            if current is None or current.get("RuntimeId") != record["RuntimeId"]:
                return
            tomb["Holders"] = sorted(current.get("Handles") or {})  # as read under the lock
            self._bury(tomb)
        self._announce_exit(record["RuntimeId"], tomb)

    def _bury(self, tomb: dict[str, Any]) -> None:
        """Write a stopped system's exit status over its record.  The caller holds the
        record lock and has read the record under it (still live, same runtime id); it calls
        :meth:`_announce_exit` after releasing the lock."""
        system_id = tomb["Id"]
        # The record becomes the exit status (one in-place write, no file created).
        self.store.write("systems", system_id, tomb)
        self.store.touch("exits")  # wakes the exit watchers of other processes
        with self._lock:
            self._local_exits += 1  # this process's own watcher needs no fast polls for it
        self.store.discard_guest(system_id)
        if time.monotonic() >= self._next_tomb_check:
            self._start_tomb_sweep()

    #: Seconds between two sweeps of exit statuses nobody can ask for (:meth:`sweep_stopped`),
    #: in all processes together (``systems.swept``'s modification time says when the last began).
    TOMB_SWEEP_INTERVAL = 60.0

    def _start_tomb_sweep(self) -> None:
        """At a stop, at most once per :data:`TOMB_SWEEP_INTERVAL` in this process: one
        ``stat`` of ``systems.swept``, and when no process swept for that long a background
        thread that does."""
        interval = self.TOMB_SWEEP_INTERVAL
        self._next_tomb_check = time.monotonic() + interval
        if time.time_ns() - self.store.stamp("systems.swept") < interval * 1e9:
            return
        self.store.touch("systems.swept")
        threading.Thread(target=self.sweep_stopped, name="hcs-sim-tomb-sweep", daemon=True).start()

    def sweep_stopped(self) -> int:
        """Delete the exit statuses (``systems/`` records of stopped systems) that no handle
        can ask for any more: every process that held a handle to the system when it stopped
        has ended (a stopped system cannot be opened again).  Exit statuses written by earlier
        versions, which do not say who held handles, are kept.  Returns how many went."""
        folder = f"{self.store.state_text}{os.sep}systems"
        try:
            paths = [e.path for e in os.scandir(folder) if e.name.endswith(".json")]
        except OSError:
            return 0
        alive: dict[str, bool] = {}

        def gone(record: dict[str, Any] | None) -> bool:
            holders = record.get("Holders") if record is not None else None
            if record is None or record.get("State") != STOPPED or not isinstance(holders, list):
                return False
            for pid in holders:
                if pid not in alive:
                    alive[pid] = str(pid).isdigit() and _pid_alive(int(pid))
                if alive[pid]:
                    return False
            return True

        deleted = 0
        for path in paths:
            try:
                record = StateStore._read_at(path, detail=False)
            except (OSError, ValueError):
                continue
            if not gone(record):
                continue
            assert record is not None
            key = record["Id"]
            with self.store.lock_record("systems", key):
                current = self.store.read("systems", key, detail=False)
                if (
                    gone(current)
                    and current is not None
                    and current.get("RuntimeId") == record.get("RuntimeId")
                ):
                    self.store.delete("systems", key)
                    deleted += 1
        return deleted

    @staticmethod
    def _tomb(record: dict[str, Any], exit_type: str) -> dict[str, Any]:
        """The exit status that replaces ``record`` (see :meth:`_exit_system`)."""
        return {
            "Id": record["Id"],
            "RuntimeId": record["RuntimeId"],
            "SystemType": record.get("SystemType", "VirtualMachine"),
            "Owner": record.get("Owner", ""),
            "State": STOPPED,
            "ExitType": exit_type,
            "Status": 0,
            "StoppedAt": time.time(),
            # The processes holding handles when it stopped: only they can still ask for this
            # exit status (a stopped system cannot be opened); see sweep_stopped.
            "Holders": sorted(record.get("Handles") or {}),
        }

    @staticmethod
    def _exit_status(tomb: dict[str, Any] | None) -> dict[str, Any]:
        """``SystemExitStatus`` (schema: Status, ExitType, Attribution) from an exit record."""
        if tomb is None:
            return {"Status": 0, "ExitType": "Unknown"}
        status = {"Status": tomb.get("Status", 0), "ExitType": tomb.get("ExitType", "Unknown")}
        if tomb.get("Attribution"):
            status["Attribution"] = tomb["Attribution"]
        return status

    def _announce_exit(self, runtime_id: str, tomb: dict[str, Any] | None) -> None:
        """This process learnt that ``runtime_id`` stopped (it stopped it, or the watcher saw
        another process do it): end its guest processes, tell each handle once."""
        with self._lock:
            processes = self._runtime_procs.pop(runtime_id, [])
            self._gates.pop(runtime_id, None)
            self._roots.pop(runtime_id, None)
            for process in processes:
                self._processes.pop((process.system_id, process.pid), None)
            handles = self._by_runtime.get(runtime_id, set())
            targets = [h for h in handles if not h.exit_seen]
            for h in targets:
                h.exit_seen = True
        for process in processes:
            if not process.exited.is_set():
                process.forced_code = process.forced_code or 1
                process.cancel.set()
        self.store.disk_may_go()  # its scratch disk may be deleted next: its files go then
        data = json.dumps(self._exit_status(tomb))
        for target in targets:
            target.exited.set()
            if target.callback:
                self._deliver(target, HCS_EVENT(EVENT_SYSTEM_EXITED, data, None))

    # ---- cross-process exit events ---------------------------------------------------------------

    def _ensure_watcher(self) -> None:
        """Start the watcher thread (once; it ends by itself when nothing is left to watch)."""
        with self._lock:
            if self._watcher is None:
                self._watcher = threading.Thread(
                    target=self._watch_loop, name="hcs-sim-exit-watcher", daemon=True
                )
                self._watcher.start()

    def _watched(self) -> dict[str, str]:
        """Runtime id -> system id of every system this process must hear the exit of: open
        handles with a callback not yet told, and systems running local guest processes."""
        with self._lock:
            out = {
                runtime: h.system_id
                for runtime, handles in self._by_runtime.items()
                for h in handles
                if h.callback and not h.exit_seen and not h.closed
            }
            for runtime, processes in self._runtime_procs.items():
                if runtime not in out and any(not p.exited.is_set() for p in processes):
                    out[runtime] = processes[0].system_id
            return out

    def _watch_loop(self) -> None:
        """Poll the persisted state for systems stopped elsewhere (exits made by this process
        are announced directly by :meth:`_exit_system`; the watcher is for other processes).

        Cheap when nothing changes: one ``stat`` of the ``exits`` stamp per poll.  Only when
        it changed (or changed recently: coarse mtime clocks), plus a full check every 2 s,
        each watched record is ``stat``-ed, and read only when its (mtime, size) differs from
        the last read or is recent.  The poll interval is ``watch_interval`` while exits
        happen and doubles after each quiet poll up to ``max(watch_interval, 0.4)`` s, so an
        exit made by another process is seen within ~0.5 s (at once when exits are frequent).
        """
        base = self.watch_interval
        ceiling = max(base, 0.4)
        interval = base
        last_stamp = -1
        last_local = self._local_exits
        last_full = time.monotonic()
        idle_since: float | None = None
        seen: dict[str, tuple[int, int]] = {}  # runtime id -> (mtime_ns, size) last read
        while True:
            time.sleep(interval)
            interval = min(interval * 2, ceiling)
            watched = self._watched()
            now = time.monotonic()
            if not watched:
                seen.clear()
                if idle_since is None:
                    idle_since = now
                elif now - idle_since >= 2.0:
                    with self._lock:
                        if not self._watched():
                            self._watcher = None
                            return
                continue
            idle_since = None
            store = self.store
            stamp = store.stamp("exits")
            wall = time.time_ns()
            window = 2 * int(base * 1e9) + 10**8
            recent = wall - stamp < window
            full = now - last_full >= 2.0
            if stamp == last_stamp and not recent and not full:
                continue
            local = self._local_exits
            if stamp != last_stamp and local == last_local:
                # Exits are happening elsewhere: poll fast again.  A change that may be this
                # process's own exit (announced directly) keeps the slower pace; the records
                # are checked below either way, so an exit made elsewhere in the same window
                # is seen now, and a later one within the ceiling.
                interval = base
            last_stamp = stamp
            last_local = local
            if full:
                last_full = now
                seen.clear()
            for runtime in list(seen):
                if runtime not in watched:
                    del seen[runtime]
            for runtime, system_id in watched.items():
                mark = store.record_mark("systems", system_id)
                if mark is not None and seen.get(runtime) == mark and wall - mark[0] >= window:
                    continue  # unchanged since it was last read (and not recently written)
                try:
                    record = store.read("systems", system_id, detail=False)
                except (OSError, ValueError):
                    continue  # unreadable now: next poll
                if record is None or record.get("RuntimeId") != runtime:
                    self._announce_exit(runtime, None)  # gone, and its id reused or removed
                elif record.get("State") == STOPPED:
                    self._announce_exit(runtime, record)
                else:
                    self._pause_guests(runtime, record.get("State") != "Running")
                    if mark is not None:
                        seen[runtime] = mark

    def _pause_guests(self, runtime_id: str, paused: bool) -> None:
        """Freeze (``paused``) or thaw this process's guest processes of ``runtime_id``: a
        paused VM runs no guest code.  Called by pause and resume here, and by the watcher
        for a pause or resume made by another process (seen within its poll interval)."""
        gate = self._gates.get(runtime_id)
        if gate is None:
            return  # no guest process of that system runs here: the usual case
        if paused:
            gate.pause()
        else:
            gate.resume()

    def HcsOpenComputeSystem(self, id: str | None, access: int, out: Any) -> int:
        hr = self.sync_fault("HcsOpenComputeSystem")
        if hr is not None:
            return hr
        if not out or not id:
            return H.E_INVALIDARG
        out[0] = None
        if access & 0xFFFFFFFF != GENERIC_ALL:
            # "requestedAccess: Reserved for future use, must be GENERIC_ALL." (E_INVALIDARG
            # is the simulator's choice, UNCONFIRMED)
            raise _Failure(
                H.E_INVALIDARG,
                f"HcsOpenComputeSystem: requestedAccess must be GENERIC_ALL, not 0x{access:08X}",
            )
        if self._live_record(id) is None:  # lock-free (a stopped or missing system stays so)
            raise _Failure(H.HCS_E_SYSTEM_NOT_FOUND, f"no compute system {id!r}")
        with self.store.lock_record("systems", id):
            record = self._live_record(id)
            if record is not None and self._reap_one(record):
                record = None
            if record is None:
                raise _Failure(H.HCS_E_SYSTEM_NOT_FOUND, f"no compute system {id!r}")
            handle: SystemHandle = self._new_handle(
                lambda h: SystemHandle(h, record["Id"], record["RuntimeId"])
            )
            self._count_handle(record["Id"], record["RuntimeId"], +1, record)
            with self._lock:
                self._by_runtime.setdefault(record["RuntimeId"], set()).add(handle)
        out[0] = handle.handle
        return H.S_OK

    def HcsCloseComputeSystem(self, system: int | None) -> None:
        self.enter("HcsCloseComputeSystem")
        try:
            handle: SystemHandle = self._get(system, SystemHandle)
        except _Failure as failure:
            self.violation(f"HcsCloseComputeSystem: {failure.message}")
            return
        with handle.cb_lock:  # no callback runs past close (hcsshim v2 relies on it)
            handle.closed = True
            handle.callback = None
        with self._lock:
            self._handles.pop(handle.handle, None)
            if handle.runtime_id is not None:
                peers = self._by_runtime.get(handle.runtime_id)
                if peers is not None:
                    peers.discard(handle)
                    if not peers:
                        del self._by_runtime[handle.runtime_id]
        if handle.runtime_id is None or handle.exit_seen:
            # exit_seen: this runtime has stopped (its record is an exit status, or gone), so
            # there is no handle count left to change.
            return
        record = self._count_handle(handle.system_id, handle.runtime_id, -1)
        if record and record.get("TerminateOnLastHandleClosed") and not record.get("Handles"):
            self._exit_system(record, "ForcedExit")

    def HcsSetComputeSystemCallback(
        self, system: int | None, options: int, context: int | None, callback: int | None
    ) -> int:
        hr = self.sync_fault("HcsSetComputeSystemCallback")
        if hr is not None:
            return hr
        handle: SystemHandle = self._get(system, SystemHandle)
        with handle.cb_lock:
            if handle.callback:
                return H.HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET
            handle.callback, handle.context, handle.options = callback, context, options
        if callback and handle.runtime_id is not None:
            self._ensure_watcher()  # SystemExited reaches it even when another process stops it
        return H.S_OK

    def _system_op(
        self,
        function: str,
        system: int | None,
        operation: int | None,
        op_type: int,
        work: Callable[[SystemHandle], tuple[str | None, Any]],
        reserved: str | None = None,
    ) -> int:
        """Start ``work`` on the system; ``reserved`` is the value of an argument the call's
        page says must be NULL (checked after the handles)."""
        fault = self.enter(function)  # counted even when the handle is bad
        handle: SystemHandle = self._get(system, SystemHandle)
        op, fault = self._begin_counted(function, operation, fault, handle)
        self._must_be_null(function, reserved)
        return self._launch(function, op, op_type, lambda: work(handle), fault, handle)

    @staticmethod
    def _must_be_null(function: str, options: str | None) -> None:
        """``options``: "Reserved for future use. Must be NULL." (HcsStartComputeSystem.md,
        HcsResumeComputeSystem.md, HcsTerminateComputeSystem.md, HcsTerminateProcess.md).
        An empty string is accepted: hcsshim passes ``""`` (computecore ``HcsTerminate
        ComputeSystem(ctx, handle, op, "")``).  E_INVALIDARG from the call is UNCONFIRMED."""
        if options:
            raise _Failure(
                H.E_INVALIDARG,
                f"{function}: options is reserved and must be NULL, not {options[:60]!r}",
            )

    def _set_state(self, record: dict[str, Any], state: str, **extra: Any) -> None:
        with self.store.lock_record("systems", record["Id"]):
            current = self._live_record(record["Id"])
            if current is None or current.get("RuntimeId") != record["RuntimeId"]:
                raise _Failure(H.HCS_E_SYSTEM_NOT_FOUND, "the compute system no longer exists")
            current["State"] = state
            current.update(extra)
            self.store.write("systems", record["Id"], current)

    def HcsStartComputeSystem(
        self, system: int | None, operation: int | None, options: str | None
    ) -> int:
        def work(h: SystemHandle) -> tuple[str | None, Any]:
            # One read, under the record lock: the check and the write see the same record.
            with self.store.lock_record("systems", h.system_id):
                record = self._live(h, "HcsStartComputeSystem", H.HCS_E_INVALID_STATE)
                if record["State"] != "Created":
                    raise _Failure(
                        H.HCS_E_INVALID_STATE,
                        f"HcsStartComputeSystem: the system is {record['State']}, start needs "
                        "Created",
                    )
                record["State"] = "Running"
                record["StartTime"] = time.time()
                self.store.write("systems", record["Id"], record)
            return None, None

        return self._system_op(
            "HcsStartComputeSystem", system, operation, OP_START, work, reserved=options
        )

    def HcsShutDownComputeSystem(
        self, system: int | None, operation: int | None, options: str | None
    ) -> int:
        def work(h: SystemHandle) -> tuple[str | None, Any]:
            opts = self._options(options, "ShutdownOptions", "options") or {}
            # Only the integration-service mechanism looks at the document (its Services).
            by_service = opts.get("Mechanism") == "IntegrationService"
            with self.store.lock_record("systems", h.system_id):  # one read, under the lock
                record = self._live(
                    h, "HcsShutDownComputeSystem", H.HCS_E_SYSTEM_ALREADY_STOPPED, by_service
                )
                vm = record["Document"].get("VirtualMachine") or {} if by_service else {}
                by_ic = by_service and "Shutdown" in (vm.get("Services") or {})
                if not record.get("GuestConnection") and not by_ic:
                    raise _Failure(
                        H.ERROR_NOT_SUPPORTED_HR,
                        "HcsShutDownComputeSystem: the system was created without "
                        "VirtualMachine.GuestConnection, so there is no guest agent to shut it "
                        "down; use HcsTerminateComputeSystem",
                    )
                if record["State"] != "Running":
                    raise _Failure(
                        H.HCS_E_INVALID_STATE,
                        f"HcsShutDownComputeSystem: the system is {record['State']}, not Running",
                    )
                tomb = self._tomb(record, "GracefulExit")
                self._bury(tomb)
            self._announce_exit(tomb["RuntimeId"], tomb)
            return None, None

        return self._system_op("HcsShutDownComputeSystem", system, operation, OP_SHUTDOWN, work)

    def HcsTerminateComputeSystem(
        self, system: int | None, operation: int | None, options: str | None
    ) -> int:
        def work(h: SystemHandle) -> tuple[str | None, Any]:
            with self.store.lock_record("systems", h.system_id):  # one read, under the lock
                record = self._live(h, "HcsTerminateComputeSystem", H.HCS_E_SYSTEM_ALREADY_STOPPED)
                tomb = self._tomb(record, "ForcedExit")
                self._bury(tomb)
            self._announce_exit(tomb["RuntimeId"], tomb)
            return None, None

        return self._system_op(
            "HcsTerminateComputeSystem", system, operation, OP_TERMINATE, work, reserved=options
        )

    def HcsCrashComputeSystem(
        self, system: int | None, operation: int | None, options: str | None
    ) -> int:
        """HcsCrashComputeSystem.md: crash the guest (``CrashOptions`` ``{"Type":
        "CrashGuest"}``, schema 2.3).  Simulated: a Running or Paused system gets the
        ``SystemCrashInitiated`` event, then stops with ExitType ``UnexpectedExit`` and a
        ``GuestCrash`` attribution (what a real host reports is UNCONFIRMED, see
        docs/windows-notes.md#sim)."""

        def work(h: SystemHandle) -> tuple[str | None, Any]:
            self._options(options, "CrashOptions", "options")
            record = self._live(h, "HcsCrashComputeSystem", H.HCS_E_SYSTEM_ALREADY_STOPPED)
            if record["State"] not in ("Running", "Paused"):
                raise _Failure(
                    H.HCS_E_INVALID_STATE,
                    f"HcsCrashComputeSystem: the system is {record['State']}; only a running "
                    "guest can crash",
                )
            report = json.dumps({"SystemId": record["Id"], "Status": 0})
            with self._lock:
                targets = [x for x in self._by_runtime.get(record["RuntimeId"], ()) if x.callback]
            for target in targets:
                self._deliver(target, HCS_EVENT(EVENT_SYSTEM_CRASH_INITIATED, report, None))
            self._exit_system(
                record, "UnexpectedExit", attribution=[{"GuestCrash": {"CrashParameters": []}}]
            )
            return None, None

        return self._system_op("HcsCrashComputeSystem", system, operation, OP_CRASH, work)

    def HcsWaitForComputeSystemExit(self, system: int | None, timeout: int, out: Any) -> int:
        """HcsWaitForComputeSystemExit.md: block until the system exits; ``result`` is its
        ``SystemExitStatus`` (LocalFree).  Exits made by other processes are seen within
        ``watch_interval``.  Timeout → HCS_E_OPERATION_TIMEOUT (value UNCONFIRMED for this
        function, see docs/windows-notes.md#sim)."""
        hr = self.sync_fault("HcsWaitForComputeSystemExit")
        if out:
            out[0] = None
        if hr is not None:
            return hr
        handle: SystemHandle = self._get(system, SystemHandle)
        if handle.runtime_id is None or handle.failed:
            raise _Failure(H.HCS_E_SYSTEM_NOT_FOUND, "the compute system was not created")
        deadline = None if timeout == INFINITE else time.monotonic() + timeout / 1000.0
        while True:
            raw = self.store.read("systems", handle.system_id, detail=False)
            if raw is None or raw.get("RuntimeId") != handle.runtime_id:
                tomb = None  # gone without an exit status (its id was reused)
                break
            if raw.get("State") == STOPPED:
                tomb = raw
                break
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise _Failure(
                    H.HCS_E_OPERATION_TIMEOUT,
                    f"HcsWaitForComputeSystemExit: {handle.system_id!r} still runs",
                )
            wait = self.watch_interval if remaining is None else min(remaining, self.watch_interval)
            handle.exited.wait(wait)
        if out:
            out[0] = self.alloc_string(
                json.dumps(self._exit_status(tomb)), LOCAL_FREE, "HcsWaitForComputeSystemExit"
            )
        return H.S_OK

    def HcsPauseComputeSystem(
        self, system: int | None, operation: int | None, options: str | None
    ) -> int:
        def work(h: SystemHandle) -> tuple[str | None, Any]:
            self._options(options, "PauseOptions", "options")
            record = self._live(h, "HcsPauseComputeSystem", H.HCS_E_INVALID_STATE)
            if record["State"] != "Running":
                raise _Failure(
                    H.HCS_E_INVALID_STATE,
                    f"HcsPauseComputeSystem: the system is {record['State']}, pause needs Running",
                )
            self._set_state(record, "Paused")
            self._pause_guests(record["RuntimeId"], True)
            self.store.touch("exits")  # other processes' watchers pause their guests too
            return None, None

        return self._system_op("HcsPauseComputeSystem", system, operation, OP_PAUSE, work)

    def HcsResumeComputeSystem(
        self, system: int | None, operation: int | None, options: str | None
    ) -> int:
        def work(h: SystemHandle) -> tuple[str | None, Any]:
            record = self._live(h, "HcsResumeComputeSystem", H.HCS_E_INVALID_STATE)
            if record["State"] != "Paused":
                raise _Failure(
                    H.HCS_E_INVALID_STATE,
                    f"HcsResumeComputeSystem: the system is {record['State']}, resume needs Paused",
                )
            self._set_state(record, "Running")
            self._pause_guests(record["RuntimeId"], False)
            self.store.touch("exits")  # other processes' watchers resume their guests too
            return None, None

        return self._system_op(
            "HcsResumeComputeSystem", system, operation, OP_RESUME, work, reserved=options
        )

    def HcsSaveComputeSystem(
        self, system: int | None, operation: int | None, options: str | None
    ) -> int:
        def work(h: SystemHandle) -> tuple[str | None, Any]:
            opts = self._options(options, "SaveOptions", "options") or {}
            record = self._live(h, "HcsSaveComputeSystem", H.HCS_E_INVALID_STATE, detail=True)
            if record["State"] != "Paused":
                raise _Failure(
                    H.HCS_E_INVALID_STATE,
                    f"HcsSaveComputeSystem: the system is {record['State']}; it cannot be saved as "
                    "it is still running — pause it first",
                )
            if opts.get("SaveType") == "AsTemplate":
                self._set_state(record, "SavedAsTemplate")
                return None, None
            path = opts.get("SaveStateFilePath")
            if not path:
                raise _Failure(
                    H.E_INVALIDARG, "SaveOptions.SaveStateFilePath is required for ToFile"
                )
            self._check_file(
                record["Id"],
                path,
                "SaveOptions.SaveStateFilePath",
                self._granted(record["Id"]),
            )
            saved = {
                "SimulatedSavedState": 1,
                "SystemId": record["Id"],
                "Document": record["Document"],
            }
            try:
                StateStore.write_file(path, saved, create=False)  # the same file: grants stay
            except FileNotFoundError:
                raise _Failure(
                    H.ERROR_FILE_NOT_FOUND_HR, f"SaveOptions.SaveStateFilePath: {path!r} is gone"
                ) from None
            return None, None

        return self._system_op("HcsSaveComputeSystem", system, operation, OP_SAVE, work)

    def _properties(self, record: dict[str, Any], types: list[str]) -> dict[str, Any]:
        props: dict[str, Any] = {
            "Id": record["Id"],
            "SystemType": record.get("SystemType", "VirtualMachine"),
            "RuntimeOsType": "Windows",
            "Owner": record.get("Owner", ""),
            "RuntimeId": record["RuntimeId"],
            "State": record["State"],
            "Stopped": False,
        }
        uptime = time.time() - record["StartTime"] if record.get("StartTime") else 0.0
        memory_bytes = int(record.get("MemoryMB", 1024)) * 1024 * 1024
        if "Statistics" in types:
            import datetime

            props["Statistics"] = {
                "Timestamp": _now_iso(),
                "ContainerStartTime": datetime.datetime.fromtimestamp(
                    record.get("StartTime") or record["CreateTime"], datetime.timezone.utc
                )
                .isoformat()
                .replace("+00:00", "Z"),
                "Uptime100ns": int(uptime * 10_000_000),
                "Processor": {
                    "TotalRuntime100ns": int(uptime * 1_000_000),
                    "RuntimeUser100ns": int(uptime * 600_000),
                    "RuntimeKernel100ns": int(uptime * 400_000),
                },
                "Memory": {
                    "MemoryUsageCommitBytes": memory_bytes // 2,
                    "MemoryUsageCommitPeakBytes": memory_bytes // 2,
                    "MemoryUsagePrivateWorkingSetBytes": memory_bytes // 4,
                },
                "Storage": {
                    "ReadCountNormalized": 0,
                    "ReadSizeBytes": 0,
                    "WriteCountNormalized": 0,
                    "WriteSizeBytes": 0,
                },
            }
        if "Memory" in types:
            props["Memory"] = {
                "VirtualNodeCount": 1,
                "VirtualMachineMemory": {
                    "AvailableMemory": memory_bytes // (2 * 1024 * 1024),
                    "AvailableMemoryBuffer": 0,
                    "ReservedMemory": 0,
                    "AssignedMemory": memory_bytes // (1024 * 1024),
                    "SlpActive": False,
                    "BalancingEnabled": False,
                    "DmOperationInProgress": False,
                },
            }
        if "ProcessList" in types:
            # The per-runtime index, copied under the lock: _spawn and _announce_exit change it.
            with self._lock:
                procs = list(self._runtime_procs.get(record["RuntimeId"], ()))
            props["ProcessList"] = [
                {
                    "ProcessId": p.pid,
                    "ImageName": str(p.params.get("CommandLine", "")).split(" ")[0],
                }
                for p in procs
                if not p.exited.is_set()
            ]
        if "TerminateOnLastHandleClosed" in types:
            props["TerminateOnLastHandleClosed"] = bool(record.get("TerminateOnLastHandleClosed"))
        if "GuestConnection" in types and record.get("GuestConnection"):
            props["GuestConnectionInfo"] = {
                "SupportedSchemaVersions": [{"Major": 2, "Minor": self.max_schema_version[1]}],
                "ProtocolVersion": 4,
            }
        return props

    def HcsGetComputeSystemProperties(
        self, system: int | None, operation: int | None, query: str | None
    ) -> int:
        def work(h: SystemHandle) -> tuple[str | None, Any]:
            q = self._options(query, "System_PropertyQuery", "propertyQuery") or {}
            raw = (
                None
                if h.runtime_id is None
                else self.store.read("systems", h.system_id, detail=False)
            )
            record = raw if raw is not None and raw.get("RuntimeId") == h.runtime_id else None
            if record is None or record.get("State") == STOPPED:
                tomb = record
                if tomb is None:
                    raise _Failure(H.HCS_E_SYSTEM_NOT_FOUND, "the compute system does not exist")
                return json.dumps(
                    {
                        "Id": tomb["Id"],
                        "SystemType": tomb["SystemType"],
                        "RuntimeId": tomb["RuntimeId"],
                        "State": "Stopped",
                        "Stopped": True,
                        "ExitType": tomb["ExitType"],
                    }
                ), None
            return json.dumps(self._properties(record, list(q.get("PropertyTypes") or []))), None

        return self._system_op(
            "HcsGetComputeSystemProperties", system, operation, OP_GET_PROPERTIES, work
        )

    def HcsEnumerateComputeSystems(self, query: str | None, operation: int | None) -> int:
        op, fault = self._begin("HcsEnumerateComputeSystems", operation)

        def work() -> tuple[str | None, Any]:
            q = self._options(query, "SystemQuery", "query") or {}
            with self.store.lock():
                records = self._reap_locked()
            ids = {i.lower() for i in q["Ids"]} if q.get("Ids") else None
            out = []
            for record in records:
                if ids is not None and record["Id"].lower() not in ids:
                    continue
                if q.get("Names") and record["Id"] not in q["Names"]:
                    continue
                if q.get("Types") and record.get("SystemType") not in q["Types"]:
                    continue
                if q.get("Owners") and record.get("Owner") not in q["Owners"]:
                    continue
                out.append(self._properties(record, []))
            return json.dumps(out), None

        return self._launch("HcsEnumerateComputeSystems", op, OP_ENUMERATE, work, fault)

    def HcsModifyComputeSystem(
        self,
        system: int | None,
        operation: int | None,
        configuration: str | None,
        identity: int | None,
    ) -> int:
        def work(h: SystemHandle) -> tuple[str | None, Any]:
            request = self._document(configuration, "configuration", "ModifySettingRequest")
            record = self._live(h, "HcsModifyComputeSystem", H.HCS_E_INVALID_STATE, detail=True)
            if record["State"] not in ("Created", "Running"):
                raise _Failure(
                    H.HCS_E_INVALID_STATE,
                    f"HcsModifyComputeSystem: the system is {record['State']}",
                )
            self._modify(record, request)
            return None, None

        return self._system_op("HcsModifyComputeSystem", system, operation, OP_MODIFY, work)

    def _modify(self, record: dict[str, Any], request: dict[str, Any]) -> None:
        path = str(request.get("ResourcePath", ""))
        kind = request.get("RequestType", "Update")
        settings: Any = request.get("Settings")
        if request.get("GuestRequest") is not None and not record.get("GuestConnection"):
            raise _Failure(H.ERROR_NOT_SUPPORTED_HR, "GuestRequest needs a GuestConnection")
        if not path:
            if request.get("GuestRequest") is not None:
                return
            raise _Failure(H.E_INVALIDARG, "ModifySettingRequest.ResourcePath is required")
        parts = path.split("/")
        vm = path.startswith("VirtualMachine/")
        if not vm:
            raise _Failure(H.E_INVALIDARG, f"ResourcePath {path!r}: unknown resource")
        mx = self.max_schema_version
        try:
            if path == "VirtualMachine/Devices/VirtualSmb/Shares":
                shares = list(record.get("Shares") or [])
                if kind == "Add":
                    validate_hcs(settings, "VirtualSmbShare", mx, "Settings")
                    self._check_share(settings, "Settings", shares)
                    shares.append(settings)
                elif kind == "Remove":
                    name = str((settings or {}).get("Name", "")).lower()
                    if not any(s.get("Name", "").lower() == name for s in shares):
                        raise _Failure(H.ERROR_NOT_FOUND_HR, f"no VSMB share named {name!r}")
                    shares = [s for s in shares if s.get("Name", "").lower() != name]
                else:
                    validate_hcs(settings, "VirtualSmbShare", mx, "Settings")
                    for share in shares:
                        if share.get("Name", "").lower() == settings.get("Name", "").lower():
                            share["AllowedFiles"] = settings.get("AllowedFiles", [])
                record["Shares"] = shares
            elif path.startswith("VirtualMachine/Devices/NetworkAdapters/") and len(parts) == 4:
                adapters = dict(record.get("NetworkAdapters") or {})
                if kind == "Add":
                    validate_hcs(settings, "NetworkAdapter", mx, "Settings")
                    self._check_endpoint(settings, "Settings")
                    adapters[parts[3]] = settings
                elif kind == "Remove":
                    if parts[3] not in adapters:
                        raise _Failure(H.ERROR_NOT_FOUND_HR, f"no network adapter {parts[3]!r}")
                    del adapters[parts[3]]
                else:
                    validate_hcs(settings, "NetworkAdapter", mx, "Settings")
                    adapters[parts[3]] = settings
                record["NetworkAdapters"] = adapters
            elif path.startswith("VirtualMachine/Devices/Scsi/") and len(parts) == 6:
                attachments = dict(record.get("Attachments") or {})
                key = f"{parts[3]}/{parts[5]}"
                if kind == "Add":
                    validate_hcs(settings, "Attachment", mx, "Settings")
                    grants = self._granted(record["Id"])
                    self._check_file(record["Id"], settings["Path"], "Settings.Path", grants)
                    if key in attachments:
                        raise _Failure(H.ERROR_FILE_EXISTS_HR, f"LUN {key} is in use")
                    attachments[key] = settings
                elif kind == "Remove":
                    if key not in attachments:
                        raise _Failure(H.ERROR_NOT_FOUND_HR, f"nothing attached at {key}")
                    del attachments[key]
                record["Attachments"] = attachments
            elif path == "VirtualMachine/ComputeTopology/Memory/SizeInMB":
                if isinstance(settings, bool) or not isinstance(settings, int) or settings <= 0:
                    raise _Failure(H.HCS_E_INVALID_JSON, "Settings: expected a size in MB")
                record["MemoryMB"] = settings
            elif path.startswith("VirtualMachine/Devices/Plan9/Shares"):
                validate_hcs(settings, "Plan9Share", mx, "Settings") if kind == "Add" else None
            elif path.startswith(("VirtualMachine/Devices/", "VirtualMachine/ComputeTopology/")):
                pass  # accepted and recorded only by the document history below
            else:
                raise _Failure(H.E_INVALIDARG, f"ResourcePath {path!r}: unknown resource")
        except SchemaError as exc:
            raise _Failure(H.HCS_E_INVALID_JSON, f"configuration.{exc}") from None
        record.setdefault("Modifications", []).append(request)
        with self.store.lock_record("systems", record["Id"]):
            current = self._live_record(record["Id"], detail=True)
            if current is None or current.get("RuntimeId") != record["RuntimeId"]:
                raise _Failure(H.HCS_E_SYSTEM_NOT_FOUND, "the compute system no longer exists")
            for key in ("Shares", "NetworkAdapters", "Attachments", "MemoryMB", "Modifications"):
                if key in record:
                    current[key] = record[key]
            self.store.write("systems", record["Id"], current)

    # ---- processes -----------------------------------------------------------------------------

    def HcsCreateProcess(
        self,
        system: int | None,
        parameters: str | None,
        operation: int | None,
        security_descriptor: int | None,
        out: Any,
    ) -> int:
        fault = self.enter("HcsCreateProcess")  # counted even when the handle is bad
        handle: SystemHandle = self._get(system, SystemHandle)
        op, fault = self._begin_counted("HcsCreateProcess", operation, fault, handle)
        if not out:
            raise _Failure(H.E_INVALIDARG, "HcsCreateProcess: process out pointer is NULL")
        out[0] = None
        if security_descriptor:
            raise _Failure(H.E_INVALIDARG, "HcsCreateProcess: securityDescriptor must be NULL")
        with self._lock:
            self._next_pid += 4
            pid = self._next_pid
        process = GuestProcess(pid, handle.system_id, handle.runtime_id or "", {})
        process_handle: ProcessHandle = self._new_handle(
            lambda h: ProcessHandle(h, process, handle)
        )
        with self._lock:
            process.handles.add(process_handle)
        out[0] = process_handle.handle

        def work() -> tuple[str | None, Any]:
            params = self._document(parameters, "processParameters", "ProcessParameters")
            record = self._live(handle, "HcsCreateProcess", H.HCS_E_INVALID_STATE, detail=True)
            if record["State"] != "Running":
                raise _Failure(
                    H.HCS_E_INVALID_STATE, f"HcsCreateProcess: the system is {record['State']}"
                )
            if not record.get("GuestConnection"):
                raise _Failure(
                    H.ERROR_NOT_SUPPORTED_HR,
                    "HcsCreateProcess: the request is not supported — the system was created "
                    "without VirtualMachine.GuestConnection, so HCS has no guest agent to run "
                    "processes (hcsshim issue #1327)",
                )
            if not params.get("CommandLine") and not params.get("CommandArgs"):
                raise _Failure(H.E_INVALIDARG, "processParameters.CommandLine is required")
            process.params = params
            process.runtime_id = record["RuntimeId"]
            info = self._spawn(process, record)
            return None, info

        hr = self._launch("HcsCreateProcess", op, OP_CREATE_PROCESS, work, fault, handle)
        process_handle.creating = (op, op.generation)
        return hr

    def _spawn(
        self, process: GuestProcess, record: dict[str, Any]
    ) -> tuple[int, int | None, int | None, int | None]:
        from hcs_sandbox.sim import guest as guestmod  # only when a guest process runs

        params = process.params
        console = bool(params.get("EmulateConsole"))
        guest_in = guest_out = guest_err = None
        host_in = host_out = host_err = None
        if params.get("CreateStdInPipe"):
            guest_in, host_in = os.pipe()
        if params.get("CreateStdOutPipe"):
            host_out, guest_out = os.pipe()
        if params.get("CreateStdErrPipe") and not console:
            host_err, guest_err = os.pipe()
        for fd in (guest_out, guest_err):
            if fd is not None and sys.platform != "win32":  # guest pipes use select(): POSIX
                os.set_blocking(fd, False)
        process.guest_fds = [fd for fd in (guest_in, guest_out, guest_err) if fd is not None]
        for fd, what in ((host_in, "stdin"), (host_out, "stdout"), (host_err, "stderr")):
            if fd is not None:
                self.track_fd(fd, what)
        process.host_fds = (host_in, host_out, host_err)
        with self._lock:
            gate = self._gates.get(process.runtime_id)
            if gate is None:  # the system was Running when HcsCreateProcess checked it
                gate = self._gates[process.runtime_id] = guestmod.RunGate()
        io = guestmod.GuestIO(
            guest_in,
            guest_out,
            guest_out if console else guest_err,
            process.cancel,
            process.stdin_closed,
            gate=gate,
        )
        system_id = record["Id"]

        def shares() -> list[guestmod.Share]:
            current = self._live_record(system_id, detail=True) or record
            return [
                guestmod.Share(
                    s.get("Name", ""),
                    s.get("Path", ""),
                    bool((s.get("Options") or {}).get("ReadOnly")),
                )
                for s in current.get("Shares") or []
            ]

        root = self._guest_root(record)
        if not root.is_dir():  # lazily, on the first guest process of this system or disk
            guestmod.seed_guest_fs(root)
        fs = guestmod.GuestFS(root, shares)
        hostname = "".join(c for c in system_id if c.isalnum())[:15].upper() or "SANDBOX"
        user = params.get("User") or "sandbox\\WDAGUtilityAccount"
        env = guestmod.default_environment(hostname, user)
        env.update(params.get("Environment") or {})
        cwd = params.get("WorkingDirectory") or "C:\\"
        try:
            if not fs.resolve(cwd, "C:\\").host.is_dir():
                raise guestmod.GuestError("the directory name is invalid")
        except (guestmod.GuestError, OSError):  # OSError: a name this host cannot hold
            # The process never starts: release both ends of every pipe made above.
            for fd in process.guest_fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            for fd in (host_in, host_out, host_err):
                if fd is not None:
                    self._close_tracked_fd(fd)
            raise _Failure(
                H.ERROR_DIRECTORY_HR, f"WorkingDirectory {cwd!r}: the directory name is invalid"
            ) from None
        state = guestmod.GuestState(fs, io, env, guestmod._normalize_guest(cwd), hostname, user)
        command_line = params.get("CommandLine") or " ".join(params.get("CommandArgs") or [])
        with self._lock:
            self._processes[(system_id, process.pid)] = process
            self._runtime_procs.setdefault(process.runtime_id, []).append(process)
        self._ensure_watcher()  # the guest stops if another process stops the system
        self._drain_at_exit_once()

        def run() -> None:
            code = 0
            try:
                code = guestmod.run_command_line(state, command_line)
                io.check()  # a paused system's process does not exit until it is resumed
            except guestmod.Cancelled:
                code = process.forced_code if process.forced_code is not None else 1
            except Exception as exc:
                self.violation(f"guest process {process.pid} crashed: {exc!r}")
                code = 1
            if process.forced_code is not None:
                code = process.forced_code
            for fd in process.guest_fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            process.exit_code = code & 0xFFFFFFFF
            process.exited.set()
            self._process_exited(process)

        threading.Thread(target=run, name=f"hcs-sim-guest-{process.pid}", daemon=True).start()
        return (process.pid, host_in, host_out, host_err)

    def guest_folder(self, system_id: str) -> Path:
        """The host folder standing for a live system's ``C:\\`` (tests; see
        :meth:`_guest_root`).  Raises KeyError when there is no such live system."""
        record = self._live_record(system_id, detail=True)
        if record is None:
            raise KeyError(system_id)
        return self._guest_root(record)

    def _guest_root(self, record: dict[str, Any]) -> Path:
        """The folder standing for the guest's ``C:\\`` (``record``: with its details).  On
        Windows the guest's files live on its disk (a sandbox's scratch VHDX), so they are
        the files of the first writable virtual disk the system attaches: a persistent
        sandbox re-created on its disk sees them again, and they go with the disk
        (:meth:`StateStore.disk_guest_root`).  A system without such a disk has a folder of
        its own, discarded when it stops.  Worked out once per system run."""
        runtime = record["RuntimeId"]
        root = self._roots.get(runtime)
        if root is not None:
            return root
        disk = _system_disk(record)
        if disk is not None:
            root = self.store.disk_guest_root(disk, _new_volume_id)
        if root is None:
            root = self.store.guest_root(record["Id"])
        with self._lock:
            self._roots[runtime] = root
        return root

    #: At exit, how long this process waits for its guest processes that still run (on
    #: Windows they run on in the VM after the host process ends, e.g. a logon command of
    #: ``run -d``; here they are threads of this process and end with it).
    EXIT_GRACE = 1.0

    def _drain_at_exit_once(self) -> None:
        with self._lock:
            if getattr(self, "_drain_registered", False):
                return
            self._drain_registered = True
        import atexit

        atexit.register(self._drain_at_exit)

    def _drain_at_exit(self) -> None:
        """Give this process's running guest processes up to :data:`EXIT_GRACE` seconds."""
        deadline = time.monotonic() + self.EXIT_GRACE
        with self._lock:
            running = [p for p in self._processes.values() if not p.exited.is_set()]
        for process in running:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            process.exited.wait(remaining)

    def _status(self, process: GuestProcess) -> dict[str, Any]:
        exited = process.exited.is_set()
        return {
            "ProcessId": process.pid,
            "Exited": exited,
            "ExitCode": process.exit_code if exited else 0,
            "LastWaitResult": 0,
        }

    def _process_exited(self, process: GuestProcess) -> None:
        data = json.dumps(self._status(process))
        with self._lock:
            targets = [h for h in process.handles if h.callback]
        for target in targets:
            self._deliver(target, HCS_EVENT(EVENT_PROCESS_EXITED, data, None))

    def HcsOpenProcess(self, system: int | None, pid: int, access: int, out: Any) -> int:
        hr = self.sync_fault("HcsOpenProcess")
        if hr is not None:
            return hr
        handle: SystemHandle = self._get(system, SystemHandle)
        if not out:
            return H.E_INVALIDARG
        out[0] = None
        with self._lock:
            process = self._processes.get((handle.system_id, pid))
        if process is None or process.runtime_id != handle.runtime_id:
            raise _Failure(H.ERROR_NOT_FOUND_HR, f"no process {pid} in {handle.system_id!r}")
        process_handle: ProcessHandle = self._new_handle(
            lambda h: ProcessHandle(h, process, handle)
        )
        with self._lock:
            process.handles.add(process_handle)
        out[0] = process_handle.handle
        return H.S_OK

    def HcsCloseProcess(self, process: int | None) -> None:
        self.enter("HcsCloseProcess")
        try:
            handle: ProcessHandle = self._get(process, ProcessHandle)
        except _Failure as failure:
            self.violation(f"HcsCloseProcess: {failure.message}")
            return
        creating = handle.creating
        if creating is not None:
            op, generation = creating
            with self._lock:
                running = op.state == "pending" and op.generation == generation
            if running:
                # HCS is still creating the process with this handle: on Windows it would go
                # on with a freed handle (hcsshim internal/computecore/computecore.go
                # ``execute``: handles torn down under a running call, access violations).
                self.violation(
                    f"HcsCloseProcess(0x{handle.handle:X}): use after close: closed while "
                    "its HcsCreateProcess operation was still running"
                )
        with handle.cb_lock:
            handle.closed = True
            handle.callback = None
        with self._lock:
            self._handles.pop(handle.handle, None)
            handle.process.handles.discard(handle)

    def _process_op(
        self,
        function: str,
        process: int | None,
        operation: int | None,
        op_type: int,
        work: Callable[[ProcessHandle], tuple[str | None, Any]],
        reserved: str | None = None,
    ) -> int:
        fault = self.enter(function)  # counted even when the handle is bad
        handle: ProcessHandle = self._get(process, ProcessHandle)
        op, fault = self._begin_counted(function, operation, fault)
        self._must_be_null(function, reserved)
        return self._launch(function, op, op_type, lambda: work(handle), fault)

    @staticmethod
    def _started(handle: ProcessHandle, function: str) -> GuestProcess:
        if not handle.process.params:
            raise _Failure(
                H.HCS_E_PROCESS_INFO_NOT_AVAILABLE, f"{function}: the process was not created"
            )
        return handle.process

    def HcsTerminateProcess(
        self, process: int | None, operation: int | None, options: str | None
    ) -> int:
        def work(h: ProcessHandle) -> tuple[str | None, Any]:
            proc = self._started(h, "HcsTerminateProcess")
            if proc.exited.is_set():
                raise _Failure(H.HCS_E_PROCESS_ALREADY_STOPPED, "the process has already exited")
            proc.forced_code = 1
            proc.cancel.set()
            proc.exited.wait(5)
            return None, None

        return self._process_op(
            "HcsTerminateProcess", process, operation, OP_TERMINATE, work, reserved=options
        )

    def HcsSignalProcess(
        self, process: int | None, operation: int | None, options: str | None
    ) -> int:
        def work(h: ProcessHandle) -> tuple[str | None, Any]:
            opts = self._options(options, "SignalProcessOptions", "options") or {}
            proc = self._started(h, "HcsSignalProcess")
            if proc.exited.is_set():
                raise _Failure(H.HCS_E_PROCESS_ALREADY_STOPPED, "the process has already exited")
            if opts.get("Signal") in (
                "CtrlC",
                "CtrlBreak",
                "CtrlClose",
                "CtrlLogOff",
                "CtrlShutdown",
            ):
                proc.forced_code = H.STATUS_CONTROL_C_EXIT
                proc.cancel.set()
            return None, None

        return self._process_op("HcsSignalProcess", process, operation, OP_SIGNAL_PROCESS, work)

    def HcsGetProcessInfo(self, process: int | None, operation: int | None) -> int:
        def work(h: ProcessHandle) -> tuple[str | None, Any]:
            proc = self._started(h, "HcsGetProcessInfo")
            # The std handles were handed out once, by HcsCreateProcess; here they are NULL.
            return None, (proc.pid, None, None, None)

        return self._process_op("HcsGetProcessInfo", process, operation, OP_GET_PROCESS_INFO, work)

    def HcsGetProcessProperties(
        self, process: int | None, operation: int | None, query: str | None
    ) -> int:
        def work(h: ProcessHandle) -> tuple[str | None, Any]:
            proc = self._started(h, "HcsGetProcessProperties")
            return json.dumps(self._status(proc)), None

        return self._process_op(
            "HcsGetProcessProperties", process, operation, OP_GET_PROCESS_PROPERTIES, work
        )

    def HcsModifyProcess(
        self, process: int | None, operation: int | None, settings: str | None
    ) -> int:
        def work(h: ProcessHandle) -> tuple[str | None, Any]:
            request = self._document(settings, "settings", "ProcessModifyRequest")
            proc = self._started(h, "HcsModifyProcess")
            if proc.exited.is_set():
                raise _Failure(H.HCS_E_PROCESS_ALREADY_STOPPED, "the process has already exited")
            if request["Operation"] == "CloseHandle":
                which = (request.get("CloseHandle") or {}).get("Handle")
                if which is None:
                    raise _Failure(H.HCS_E_INVALID_JSON, "settings.CloseHandle.Handle is required")
                if which in ("StdIn", "All"):
                    proc.stdin_closed.set()
            else:
                size = request.get("ConsoleSize") or {}
                if not proc.params.get("EmulateConsole"):
                    raise _Failure(
                        H.E_INVALIDARG, "ConsoleSize needs a process with EmulateConsole"
                    )
                proc.console_size = (int(size.get("Height", 0)), int(size.get("Width", 0)))
            return None, None

        return self._process_op("HcsModifyProcess", process, operation, OP_MODIFY_PROCESS, work)

    def HcsSetProcessCallback(
        self, process: int | None, options: int, context: int | None, callback: int | None
    ) -> int:
        hr = self.sync_fault("HcsSetProcessCallback")
        if hr is not None:
            return hr
        handle: ProcessHandle = self._get(process, ProcessHandle)
        with handle.cb_lock:
            if handle.callback:
                return H.HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET
            handle.callback, handle.context = callback, context
        return H.S_OK

    def HcsWaitForProcessExit(self, process: int | None, timeout: int, out: Any) -> int:
        """HcsWaitForProcessExit.md: block until the process exits; ``result`` is its
        ``ProcessStatus`` (LocalFree).  Timeout → HCS_E_OPERATION_TIMEOUT (UNCONFIRMED)."""
        hr = self.sync_fault("HcsWaitForProcessExit")
        if out:
            out[0] = None
        if hr is not None:
            return hr
        handle: ProcessHandle = self._get(process, ProcessHandle)
        proc = self._started(handle, "HcsWaitForProcessExit")
        if not proc.exited.wait(None if timeout == INFINITE else timeout / 1000.0):
            raise _Failure(
                H.HCS_E_OPERATION_TIMEOUT, f"HcsWaitForProcessExit: process {proc.pid} still runs"
            )
        if out:
            out[0] = self.alloc_string(
                json.dumps(self._status(proc)), LOCAL_FREE, "HcsWaitForProcessExit"
            )
        return H.S_OK

    # ---- service and VM utilities ---------------------------------------------------------------

    def HcsGetServiceProperties(self, query: str | None, out: Any) -> int:
        hr = self.sync_fault("HcsGetServiceProperties")
        if out:
            out[0] = None
        if hr is not None:
            return hr
        if not out:
            return H.E_INVALIDARG
        try:
            q = parse_document(query, "propertyQuery") if query else {}
            validate_hcs(q, "Service_PropertyQuery", self.max_schema_version)
        except SchemaError as exc:
            out[0] = self.alloc_string(
                json.dumps({"Error": H.signed(H.HCS_E_INVALID_JSON), "ErrorMessage": str(exc)}),
                LOCAL_FREE,
                "HcsGetServiceProperties",
            )
            return H.HCS_E_INVALID_JSON
        props: list[Any] = []
        for kind in q.get("PropertyTypes") or ["Basic"]:
            if kind == "Basic":
                props.append(
                    {
                        "SupportedSchemaVersions": [
                            {"Major": major, "Minor": minor}
                            for major, minor in self.schema_versions
                        ]
                    }
                )
            else:
                props.append({})
        out[0] = self.alloc_string(
            json.dumps({"Properties": props}), LOCAL_FREE, "HcsGetServiceProperties"
        )
        return H.S_OK

    def _grant(self, function: str, vm_id: str | None, path: str | None, add: bool) -> int:
        hr = self.sync_fault(function)
        if hr is not None:
            return hr
        if not vm_id or not path:
            return H.E_INVALIDARG
        ident = None
        try:  # the one stat a grant needs (the file's identity), also the existence check
            if add:
                st = os.stat(path)
                ident = [st.st_dev, st.st_ino]
            elif not os.path.exists(path):
                raise FileNotFoundError(path)
        except (OSError, ValueError):  # what os.path.exists answers False for
            raise _Failure(
                H.ERROR_FILE_NOT_FOUND_HR, f"{function}: {path!r} does not exist"
            ) from None
        try:
            self.store.grant(vm_id, os.path.abspath(path), add, ident)
        except FileNotFoundError:  # deleted since the check above
            raise _Failure(
                H.ERROR_FILE_NOT_FOUND_HR, f"{function}: {path!r} does not exist"
            ) from None
        return H.S_OK

    def HcsGrantVmAccess(self, vm_id: str | None, path: str | None) -> int:
        return self._grant("HcsGrantVmAccess", vm_id, path, True)

    def HcsRevokeVmAccess(self, vm_id: str | None, path: str | None) -> int:
        return self._grant("HcsRevokeVmAccess", vm_id, path, False)

    def _group_grant(self, function: str, path: str | None, add: bool) -> int:
        """HcsGrantVmGroupAccess.md / HcsRevokeVmGroupAccess.md: read access to ``path`` for
        the "Virtual Machines" group, i.e. every VM (recorded in ``group-grants.json``)."""
        hr = self.sync_fault(function)
        if hr is not None:
            return hr
        if not path:
            return H.E_INVALIDARG
        if not os.path.exists(path):
            raise _Failure(H.ERROR_FILE_NOT_FOUND_HR, f"{function}: {path!r} does not exist")
        with self.store.lock():
            value = self.store.read_file(GROUP_GRANTS)
            paths = [p for p in value if isinstance(p, str)] if isinstance(value, list) else []
            norm = os.path.abspath(path)
            if add and norm not in paths:
                paths.append(norm)
            if not add and norm in paths:
                paths.remove(norm)
            StateStore.write_json(os.path.join(self.store.state_text, GROUP_GRANTS), paths)
        return H.S_OK

    def HcsGrantVmGroupAccess(self, path: str | None) -> int:
        return self._group_grant("HcsGrantVmGroupAccess", path, True)

    def HcsRevokeVmGroupAccess(self, path: str | None) -> int:
        return self._group_grant("HcsRevokeVmGroupAccess", path, False)

    def _empty_file(self, function: str, path: str | None, marker: str) -> int:
        hr = self.sync_fault(function)
        if hr is not None:
            return hr
        if not path:
            return H.E_INVALIDARG
        try:
            StateStore.write_file(path, {marker: 1}, create=True)
        except FileExistsError:
            raise _Failure(H.ERROR_FILE_EXISTS_HR, f"{function}: {path!r} exists") from None
        except (FileNotFoundError, NotADirectoryError):
            raise _Failure(
                H.ERROR_PATH_NOT_FOUND_HR, f"{function}: the folder of {path!r} does not exist"
            ) from None
        return H.S_OK

    def HcsCreateEmptyGuestStateFile(self, path: str | None) -> int:
        return self._empty_file("HcsCreateEmptyGuestStateFile", path, "SimulatedGuestState")

    def HcsCreateEmptyRuntimeStateFile(self, path: str | None) -> int:
        return self._empty_file("HcsCreateEmptyRuntimeStateFile", path, "SimulatedRuntimeState")

    # ---- kernel32 / ole32 -----------------------------------------------------------------------

    def _count_only(self, function: str) -> None:
        """Count a call of an allocator or handle function (no faults are injected there)."""
        with self._lock:
            self._calls[function] = self._calls.get(function, 0) + 1

    def LocalFree(self, address: int | None) -> int | None:
        self._count_only("LocalFree")
        if not self._free(address, LOCAL_FREE):
            return address  # LocalFree returns the handle itself on failure
        return None

    def CoTaskMemFree(self, address: int | None) -> None:
        self._count_only("CoTaskMemFree")
        self._free(address, COTASKMEM_FREE)

    def CloseHandle(self, handle: int | None) -> int:
        self._count_only("CloseHandle")
        if not handle:
            return 0
        with self._lock:
            obj = self._handles.get(handle)
            if isinstance(obj, VhdHandle):
                del self._handles[handle]
                self._closing("CloseHandle", handle)
                attachment = self._attached.get(obj.disk)
                if (
                    attachment is not None
                    and not attachment.permanent
                    and not self._disk_handles(obj.disk)
                ):
                    # "If the ATTACH_VIRTUAL_DISK_FLAG_PERMANENT_LIFETIME was not specified, the
                    # virtual disk will be automatically detached when the last open handle is
                    # closed." (nf-virtdisk-detachvirtualdisk.md)
                    del self._attached[obj.disk]
                return 1
            if handle in self._fds:
                if not self._fd_still_ours(handle):
                    # Closed already (by the file object that owned it): a second close,
                    # which on Windows may close a handle value reused by then.
                    del self._fds[handle]
                    closed_twice = True
                else:
                    self._close_tracked_fd(handle)
                    return 1
            else:
                closed_twice = False
        if closed_twice:
            self.violation(f"CloseHandle(0x{handle:X}): a pipe handle closed twice")
            return 0
        self.violation(f"CloseHandle(0x{handle:X}): not a handle the simulator gave out")
        return 0

    # ---- virtdisk ----------------------------------------------------------------------------

    def _vhd_fault(self, function: str) -> int | None:
        hr = self.sync_fault(function)
        if hr is None:
            return None
        # A Win32 HRESULT carries its Win32 code in the low 16 bits (winerror.h HRESULT_CODE).
        return hr & 0xFFFF if H.facility(hr) == H.FACILITY_WIN32 else H.ERROR_INVALID_PARAMETER

    def CreateVirtualDisk(
        self,
        storage_type: int | None,
        path: str | None,
        access: int,
        security: int | None,
        flags: int,
        provider_flags: int,
        parameters: int | None,
        overlapped: int | None,
        out: Any,
    ) -> int:
        from hcs_sandbox.sim.exports import (
            CREATE_VIRTUAL_DISK_PARAMETERS_V1,
            CREATE_VIRTUAL_DISK_PARAMETERS_V2,
            VIRTUAL_STORAGE_TYPE,
        )

        error = self._vhd_fault("CreateVirtualDisk")
        if error is not None:
            return error
        if not path or not out or not parameters:
            return H.ERROR_INVALID_PARAMETER
        out[0] = None
        # CreateVirtualDisk.md: VirtualStorageType is [in], not optional.
        if not storage_type:
            return H.ERROR_INVALID_PARAMETER
        params = ctypes.cast(parameters, ctypes.POINTER(CREATE_VIRTUAL_DISK_PARAMETERS_V2)).contents
        if params.Version == 1:
            v1 = ctypes.cast(parameters, ctypes.POINTER(CREATE_VIRTUAL_DISK_PARAMETERS_V1)).contents
            size, block, sector = (
                int(v1.MaximumSize),
                int(v1.BlockSizeInBytes),
                int(v1.SectorSizeInBytes),
            )
            parent, source = v1.ParentPath, v1.SourcePath
        elif params.Version == 2:
            size, block = int(params.MaximumSize), int(params.BlockSizeInBytes)
            sector, parent, source = (
                int(params.SectorSizeInBytes),
                params.ParentPath,
                params.SourcePath,
            )
        else:
            return H.ERROR_INVALID_PARAMETER
        device = ctypes.cast(storage_type, ctypes.POINTER(VIRTUAL_STORAGE_TYPE)).contents.DeviceId
        vhd1 = device == VIRTUAL_STORAGE_TYPE_DEVICE_VHD or (
            device == VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN and path.lower().endswith(".vhd")
        )
        if _create_parameters_invalid(params.Version, access, flags, size, block, sector, vhd1):
            return H.ERROR_INVALID_PARAMETER
        if parent and (source or size):
            # "If this parameter is not NULL, SourcePath must be NULL"; "If a ParentPath is
            # specified, this value [MaximumSize] must be zero."
            return H.ERROR_INVALID_PARAMETER
        if source:
            # "If a SourcePath is specified, this value can be zero to specify the size of the
            # source virtual disk to be used, otherwise the size specified must be greater
            # than or equal to the size of the source disk."
            source_disk = self._read_vhd(source)
            source_size = int(source_disk.get("MaximumSize", 0)) if source_disk else 0
            if size and size < source_size:
                return H.ERROR_INVALID_PARAMETER
            size = size or source_size
        if parent and not os.path.exists(parent):
            # Checked in this order: something at the path, no folder, no parent.
            if os.path.exists(path):
                return H.ERROR_FILE_EXISTS
            if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
                return H.ERROR_PATH_NOT_FOUND
            return H.ERROR_FILE_NOT_FOUND
        if parent:  # a differencing disk has its parent's size
            with contextlib.suppress(OSError, ValueError), open(parent, "rb") as fh:
                size = int(json.loads(fh.read()).get("MaximumSize", 0))
        disk = {
            "SimulatedVhd": 1,
            "MaximumSize": size,
            "BlockSizeInBytes": block,
            "ParentPath": parent,
            "Formatted": False,
            # Which guest files are on it (StateStore.disk_guest_root): none yet.
            "VolumeId": _new_volume_id(),
        }
        try:  # a new file: its creation is the existence and folder check
            StateStore.write_file(path, disk, create=True)
        except FileExistsError:
            return H.ERROR_FILE_EXISTS
        except (FileNotFoundError, NotADirectoryError):
            return H.ERROR_PATH_NOT_FOUND
        vhd: VhdHandle = self._new_handle(lambda h: VhdHandle(h, path))
        out[0] = vhd.handle
        self.store.wake_disk_sweep()  # files of disks deleted since go (in the background)
        return H.ERROR_SUCCESS

    @staticmethod
    def _read_vhd(path: str) -> dict[str, Any] | None:
        try:
            value = json.loads(read_bytes(path))
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) and value.get("SimulatedVhd") else None

    def OpenVirtualDisk(
        self,
        storage_type: int | None,
        path: str | None,
        access: int,
        flags: int,
        parameters: int | None,
        out: Any,
    ) -> int:
        """nf-virtdisk-openvirtualdisk.md: "If the OpenVirtualDisk function fails with an error
        code value of ERROR_INVALID_PARAMETER (87), the cause may be due to any of the following
        conditions: The VirtualStorageType parameter is NULL. The Path parameter is NULL. The
        VirtualDiskAccessMask parameter is set to a value of (VirtualDiskAccessMask &
        ~VIRTUAL_DISK_ACCESS_ALL). The Flags parameter is set to a value of (Flags &
        ~(OPEN_VIRTUAL_DISK_FLAG_NO_PARENTS | OPEN_VIRTUAL_DISK_FLAG_BLANK_FILE)). The Version
        member of the Parameters parameter is not set to OPEN_VIRTUAL_DISK_VERSION_1 or
        OPEN_VIRTUAL_DISK_VERSION_2."  The flag list and the versions are from that older text:
        the OPEN_VIRTUAL_DISK_FLAG enumeration now goes up to ..._SUPPORT_ENCRYPTED_FILES
        (0x800) and OPEN_VIRTUAL_DISK_VERSION has 3 (ne-virtdisk-open_virtual_disk_version:
        "OPEN_VIRTUAL_DISK_VERSION_UNSPECIFIED Value: 0 Not supported"), so those are accepted.

        What the handle may do (ns-virtdisk-open_virtual_disk_parameters.md): with version 2
        or 3 parameters, "Version2.GetInfoOnly If TRUE, indicates the handle is only to be used
        to get information on the virtual disk" and "Version2.ReadOnly If TRUE, indicates the
        file backing store is to be opened as read-only"; with version 1 (or no parameters)
        the access mask decides: no VIRTUAL_DISK_ACCESS_ATTACH_RW = read-only, neither
        ATTACH_RO nor ATTACH_RW = information only."""
        error = self._vhd_fault("OpenVirtualDisk")
        if error is not None:
            return error
        if not path or not out:
            return H.ERROR_INVALID_PARAMETER
        out[0] = None
        if not storage_type:
            return H.ERROR_INVALID_PARAMETER
        if access & ~VIRTUAL_DISK_ACCESS_ALL or flags & ~OPEN_VIRTUAL_DISK_FLAGS_KNOWN:
            return H.ERROR_INVALID_PARAMETER
        version = ctypes.c_int32.from_address(parameters).value if parameters else 1
        if version not in (1, 2, 3):
            return H.ERROR_INVALID_PARAMETER
        if version == 1:
            read_only = not access & VIRTUAL_DISK_ACCESS_ATTACH_RW
            info_only = not access & (VIRTUAL_DISK_ACCESS_ATTACH_RO | VIRTUAL_DISK_ACCESS_ATTACH_RW)
        else:
            # Version2/Version3 start with BOOL GetInfoOnly; BOOL ReadOnly (4-byte BOOLs) after
            # the 4-byte Version (virtdisk.h; the union is 4-aligned).
            assert parameters is not None
            info_only = bool(ctypes.c_int32.from_address(parameters + 4).value)
            read_only = bool(ctypes.c_int32.from_address(parameters + 8).value)
        if not os.path.exists(path):
            return H.ERROR_FILE_NOT_FOUND
        if self._read_vhd(path) is None:
            return H.ERROR_INVALID_DATA  # not a (simulated) virtual disk
        vhd: VhdHandle = self._new_handle(
            lambda h: VhdHandle(h, path, read_only=read_only, info_only=info_only)
        )
        out[0] = vhd.handle
        return H.ERROR_SUCCESS

    def _vhd(self, handle: int | None) -> VhdHandle | None:
        with self._lock:
            obj = self._handles.get(handle or 0)
        return obj if isinstance(obj, VhdHandle) else None

    def _disk_handles(self, disk: str) -> list[VhdHandle]:
        """The open handles to ``disk`` (call with ``self._lock`` held)."""
        return [h for h in self._handles.values() if isinstance(h, VhdHandle) and h.disk == disk]

    def _attachment(self, vhd: VhdHandle) -> DiskAttachment | None:
        with self._lock:
            return self._attached.get(vhd.disk)

    def AttachVirtualDisk(
        self,
        handle: int | None,
        security: int | None,
        flags: int,
        provider_flags: int,
        parameters: int | None,
        overlapped: int | None,
    ) -> int:
        """nf-virtdisk-attachvirtualdisk.md: ERROR_INVALID_PARAMETER when "The Flags parameter
        is set to a value larger than 0x020" or "The Version member of the Parameters parameter
        is not set to ATTACH_VIRTUAL_DISK_VERSION_1" (older text: the ATTACH_VIRTUAL_DISK_FLAG
        enumeration now goes up to ..._AT_BOOT (0x400) and hcsshim attaches with version 2,
        so flags up to 0x7FF and versions 1 and 2 are accepted); "This function will fail if
        ... the VHD image is already attached" (no code given: ERROR_VHD_INVALID_STATE,
        UNCONFIRMED); "if the virtual disk is being attached for read/write access, the
        VirtualDiskHandle parameter must have been opened using the
        VIRTUAL_DISK_ACCESS_ATTACH_RW access flag" (a read-only or information-only handle:
        ERROR_ACCESS_DENIED, UNCONFIRMED)."""
        error = self._vhd_fault("AttachVirtualDisk")
        if error is not None:
            return error
        vhd = self._vhd(handle)
        if vhd is None:
            return H.ERROR_INVALID_HANDLE
        if flags & ~ATTACH_VIRTUAL_DISK_FLAGS_KNOWN:
            return H.ERROR_INVALID_PARAMETER
        if parameters and ctypes.c_int32.from_address(parameters).value not in (1, 2):
            return H.ERROR_INVALID_PARAMETER
        read_only = bool(flags & ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY)
        if vhd.info_only or (vhd.read_only and not read_only):
            return H.ERROR_ACCESS_DENIED
        with self._lock:
            if vhd.disk in self._attached:
                return H.ERROR_VHD_INVALID_STATE
            self._attached[vhd.disk] = DiskAttachment(
                vhd.handle,
                permanent=bool(flags & ATTACH_VIRTUAL_DISK_FLAG_PERMANENT_LIFETIME),
                read_only=read_only,
            )
        return H.ERROR_SUCCESS

    def DetachVirtualDisk(self, handle: int | None, flags: int, provider_flags: int) -> int:
        """nf-virtdisk-detachvirtualdisk.md: ERROR_INVALID_PARAMETER when "The Flags parameter
        is set to a value other than DETACH_VIRTUAL_DISK_FLAG_NONE (0)"; "All other open
        handles to the virtual disk must be closed before the DetachVirtualDisk function can
        succeed"; "This function will fail ... if the image is not attached".  The last two
        give no code: ERROR_VHD_INVALID_STATE, UNCONFIRMED.  A permanently attached disk is
        detached through any handle opened later (go-winio ``DetachVhd`` does this)."""
        error = self._vhd_fault("DetachVirtualDisk")
        if error is not None:
            return error
        vhd = self._vhd(handle)
        if vhd is None:
            return H.ERROR_INVALID_HANDLE
        if flags:
            return H.ERROR_INVALID_PARAMETER
        with self._lock:
            if vhd.disk not in self._attached:
                return H.ERROR_VHD_INVALID_STATE
            if len(self._disk_handles(vhd.disk)) > 1:
                return H.ERROR_VHD_INVALID_STATE
            del self._attached[vhd.disk]
        return H.ERROR_SUCCESS

    # ---- computestorage ----------------------------------------------------------------------

    def _layer_data(self, text: str | None, what: str) -> dict[str, Any]:
        value: dict[str, Any] = self._document(text, what, "LayerData")
        return value

    def HcsFormatWritableLayerVhd(self, handle: int | None) -> int:
        hr = self.sync_fault("HcsFormatWritableLayerVhd")
        if hr is not None:
            return hr
        vhd = self._vhd(handle)
        if vhd is None:
            raise _Failure(H.E_HANDLE, "HcsFormatWritableLayerVhd: not an open virtual disk handle")
        attachment = self._attachment(vhd)
        if vhd.read_only or (attachment is not None and attachment.read_only):
            # Formatting writes the disk: a handle opened read-only or information-only
            # (ns-virtdisk-open_virtual_disk_parameters.md Version2.ReadOnly / GetInfoOnly), or
            # a disk attached ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY, cannot (code UNCONFIRMED).
            raise _Failure(
                H.E_ACCESSDENIED,
                f"HcsFormatWritableLayerVhd: {vhd.path!r} is open "
                + ("read-only" if vhd.read_only else "but attached read-only"),
            )
        data = self._read_vhd(vhd.path)
        if data is None:
            raise _Failure(H.ERROR_FILE_NOT_FOUND_HR, f"{vhd.path!r} is gone")
        data["Formatted"] = True
        data["VolumeId"] = _new_volume_id()  # a new, empty volume: no guest files
        try:
            StateStore.write_file(vhd.path, data, create=False)  # the same file: grants stay
        except FileNotFoundError:
            raise _Failure(H.ERROR_FILE_NOT_FOUND_HR, f"{vhd.path!r} is gone") from None
        return H.S_OK

    def HcsGetLayerVhdMountPath(self, handle: int | None, out: Any) -> int:
        hr = self.sync_fault("HcsGetLayerVhdMountPath")
        if out:
            out[0] = None
        if hr is not None:
            return hr
        vhd = self._vhd(handle)
        if vhd is None or not out:
            raise _Failure(H.E_HANDLE, "HcsGetLayerVhdMountPath: not an open virtual disk handle")
        # HcsGetLayerVhdMountPath.md: "vhdHandle The handle to a VHD mounted on the host": the
        # disk must be attached, through this handle or any other (the attachment is the disk's).
        if self._attachment(vhd) is None:
            raise _Failure(H.E_INVALIDARG, "HcsGetLayerVhdMountPath: the disk is not attached")
        import uuid

        volume = uuid.uuid5(uuid.NAMESPACE_URL, _norm_path(vhd.path))
        out[0] = self.alloc_string(
            f"\\\\?\\Volume{{{volume}}}\\", LOCAL_FREE, "HcsGetLayerVhdMountPath"
        )
        return H.S_OK

    def HcsSetupBaseOSLayer(
        self, layer_path: str | None, vhd_handle: int | None, options: str | None
    ) -> int:
        hr = self.sync_fault("HcsSetupBaseOSLayer")
        if hr is not None:
            return hr
        opts = self._options(options, "OsLayerOptions", "options") or {}
        if not layer_path or not os.path.isdir(layer_path):
            raise _Failure(
                H.ERROR_PATH_NOT_FOUND_HR, f"HcsSetupBaseOSLayer: {layer_path!r} is not a folder"
            )
        if opts.get("Type", "Container") == "Vm":
            # hcsshim computestorage/helpers.go SetupUtilityVMBaseLayer: "If it is a UtilityVM
            # layer then the base vhdx must be attached when calling `SetupBaseOSLayer`" (it
            # attaches, sets up, then detaches).  Not attached: E_INVALIDARG, UNCONFIRMED.
            vhd = self._vhd(vhd_handle)
            if vhd is None:
                raise _Failure(
                    H.E_HANDLE, "HcsSetupBaseOSLayer: Type Vm needs an attached VHD handle"
                )
            attachment = self._attachment(vhd)
            if attachment is None:
                raise _Failure(
                    H.E_INVALIDARG,
                    f"HcsSetupBaseOSLayer: Type Vm needs the VHD attached ({vhd.path!r} is not: "
                    "AttachVirtualDisk first, as hcsshim SetupUtilityVMBaseLayer does)",
                )
            if vhd.read_only or attachment.read_only:
                raise _Failure(
                    H.E_ACCESSDENIED, f"HcsSetupBaseOSLayer: {vhd.path!r} is read-only here"
                )
        if opts.get("Type", "Container") == "Container" and vhd_handle:
            raise _Failure(
                H.E_INVALIDARG, "HcsSetupBaseOSLayer: Type Container needs a NULL vhdHandle"
            )
        for sub in ("Hives", "Layout"):
            if os.path.exists(os.path.join(layer_path, sub)):
                raise _Failure(H.ERROR_FILE_EXISTS_HR, f"HcsSetupBaseOSLayer: {sub} already exists")
        StateStore.write_json(os.path.join(layer_path, "Layout", "sim-base-layer.json"), opts)
        return H.S_OK

    def HcsInitializeWritableLayer(
        self, path: str | None, layer_data: str | None, options: str | None
    ) -> int:
        hr = self.sync_fault("HcsInitializeWritableLayer")
        if hr is not None:
            return hr
        data = self._layer_data(layer_data, "layerData")
        if not path:
            return H.E_INVALIDARG
        os.makedirs(path, exist_ok=True)
        StateStore.write_json(os.path.join(path, "sim-writable-layer.json"), data)
        return H.S_OK

    def HcsAttachLayerStorageFilter(self, path: str | None, layer_data: str | None) -> int:
        hr = self.sync_fault("HcsAttachLayerStorageFilter")
        if hr is not None:
            return hr
        self._layer_data(layer_data, "layerData")
        if not path or not os.path.isdir(path):
            raise _Failure(H.ERROR_PATH_NOT_FOUND_HR, f"HcsAttachLayerStorageFilter: {path!r}")
        return H.S_OK

    def HcsDetachLayerStorageFilter(self, path: str | None) -> int:
        hr = self.sync_fault("HcsDetachLayerStorageFilter")
        if hr is not None:
            return hr
        if not path or not os.path.isdir(path):
            raise _Failure(H.ERROR_PATH_NOT_FOUND_HR, f"HcsDetachLayerStorageFilter: {path!r}")
        return H.S_OK

    def HcsImportLayer(
        self, layer_path: str | None, source: str | None, layer_data: str | None
    ) -> int:
        hr = self.sync_fault("HcsImportLayer")
        if hr is not None:
            return hr
        self._layer_data(layer_data, "layerData")
        if not layer_path or not source or not os.path.isdir(source):
            raise _Failure(H.ERROR_PATH_NOT_FOUND_HR, f"HcsImportLayer: source {source!r}")
        import shutil  # here only: it imports bz2 and lzma

        shutil.copytree(source, layer_path, dirs_exist_ok=True, symlinks=True)
        return H.S_OK

    def HcsExportLayer(
        self,
        layer_path: str | None,
        export: str | None,
        layer_data: str | None,
        options: str | None,
    ) -> int:
        hr = self.sync_fault("HcsExportLayer")
        if hr is not None:
            return hr
        self._layer_data(layer_data, "layerData")
        self._options(options, "ExportLayerOptions", "options")
        if not layer_path or not export or not os.path.isdir(layer_path):
            raise _Failure(H.ERROR_PATH_NOT_FOUND_HR, f"HcsExportLayer: layer {layer_path!r}")
        import shutil  # here only: it imports bz2 and lzma

        shutil.copytree(layer_path, export, dirs_exist_ok=True, symlinks=True)
        return H.S_OK

    def HcsDestroyLayer(self, layer_path: str | None) -> int:
        hr = self.sync_fault("HcsDestroyLayer")
        if hr is not None:
            return hr
        if not layer_path or not os.path.exists(layer_path):
            raise _Failure(H.ERROR_PATH_NOT_FOUND_HR, f"HcsDestroyLayer: {layer_path!r}")

        def writable(func: Any, path: str, _exc: Any) -> None:
            os.chmod(path, stat.S_IWRITE)
            func(path)

        import shutil  # here only: it imports bz2 and lzma

        shutil.rmtree(layer_path, onerror=writable)
        return H.S_OK

    # ---- computenetwork ----------------------------------------------------------------------

    def hcn_error(self, error_out: Any, failure: _Failure, function: str) -> int:
        """Write an ErrorRecord (CoTaskMemFree) for ``failure`` and return its HRESULT."""
        if error_out:
            record = {
                "Success": False,
                "Error": failure.message,
                "ErrorCode": failure.hr,
                "ErrorMessage": failure.message,
            }
            error_out[0] = self.alloc_string(json.dumps(record), COTASKMEM_FREE, function)
        return failure.hr

    def _hcn_doc(self, text: str | None, type_name: str, what: str) -> dict[str, Any]:
        try:
            value = parse_document(text, what)
            validate_hcn(value, type_name)
        except SchemaError as exc:
            raise _Failure(H.HCN_E_INVALID_JSON, f"{what}: {exc}") from None
        return value  # type: ignore[no-any-return]

    def _query(self, text: str | None) -> dict[str, Any]:
        if not text:
            return {}
        query = self._hcn_doc(text, "HostComputeQuery", "query")
        if query.get("Filter"):
            try:
                flt = json.loads(query["Filter"])
            except ValueError:
                raise _Failure(H.HCN_E_INVALID_JSON, "query.Filter: not valid JSON") from None
            if not isinstance(flt, dict):
                raise _Failure(H.HCN_E_INVALID_JSON, "query.Filter: expected a JSON object")
            return flt
        return {}

    @staticmethod
    def _matches(obj: dict[str, Any], flt: dict[str, Any]) -> bool:
        for key, value in flt.items():
            actual = obj.get("HostComputeNetwork") if key == "VirtualNetwork" else obj.get(key)
            if isinstance(value, str) and isinstance(actual, str):
                if actual.lower() != value.lower():
                    return False
            elif actual != value:
                return False
        return True

    def _enumerate(self, kind: str, query: str | None, out: Any) -> None:
        flt = self._query(query)
        with self.store.lock():
            items = self.store.records(kind)
        ids = [i["ID"] for i in items if self._matches(i, flt)]
        out[0] = self.alloc_string(json.dumps(ids), COTASKMEM_FREE, f"HcnEnumerate {kind}")

    def HcnEnumerateNetworks(self, query: str | None, out: Any, error: Any) -> int:
        if not out:
            return H.E_INVALIDARG
        out[0] = None
        self._enumerate("networks", query, out)
        return H.S_OK

    def HcnEnumerateEndpoints(self, query: str | None, out: Any, error: Any) -> int:
        if not out:
            return H.E_INVALIDARG
        out[0] = None
        self._enumerate("endpoints", query, out)
        return H.S_OK

    @staticmethod
    def _requested_id(guid: Any, doc: dict[str, Any]) -> str:
        import uuid

        wanted = _guid_str(guid.contents) if guid else str(uuid.UUID(int=0))
        if wanted == str(uuid.UUID(int=0)) and doc.get("ID"):
            try:
                wanted = str(uuid.UUID(str(doc["ID"]).strip("{}")))
            except ValueError:
                raise _Failure(H.HCN_E_INVALID_JSON, f"ID {doc['ID']!r} is not a GUID") from None
        if wanted == str(uuid.UUID(int=0)):
            wanted = str(uuid.uuid4())
        return wanted.lower()

    @staticmethod
    def _require_id(guid: Any, function: str) -> None:
        """``_In_ REFGUID Id`` (HcnCreateNetwork.md, HcnCreateEndpoint.md: not ``_opt_``): a
        NULL pointer is refused with E_POINTER, "Pointer that is not valid" (learn.microsoft.com
        "Common HRESULT Values"); the HCN pages give no code (UNCONFIRMED).  The zero GUID is a
        valid pointer and still means "assign an id"."""
        if not guid:
            raise _Failure(
                H.E_POINTER, f"{function}: Id is NULL (pass the zero GUID to have one assigned)"
            )

    def HcnCreateNetwork(self, guid: Any, settings: str | None, out: Any, error: Any) -> int:
        if not out:
            return H.E_INVALIDARG
        out[0] = None
        self._require_id(guid, "HcnCreateNetwork")
        doc = self._hcn_doc(settings, "HostComputeNetwork", "settings")
        net_type = doc.get("Type", "NAT")
        import ipaddress

        for ipam in doc.get("Ipams") or []:
            for subnet in ipam.get("Subnets") or []:
                try:
                    ipaddress.ip_network(subnet.get("IpAddressPrefix", ""), strict=False)
                except ValueError:
                    raise _Failure(
                        H.HCN_E_INVALID_IP, f"IpAddressPrefix {subnet.get('IpAddressPrefix')!r}"
                    ) from None
        net_id = self._requested_id(guid, doc)
        with self.store.lock():
            if self.store.read("networks", net_id) is not None:
                raise _Failure(H.HCN_E_NETWORK_ALREADY_EXISTS, f"network {net_id} already exists")
            name = doc.get("Name")
            for other in self.store.records("networks") if name else ():
                if other.get("Name") == name:
                    # HCNHResult.md: "HCN_E_NETWORK_ALREADY_EXISTS | A network with this name
                    # already exists | 0x803b0010".
                    raise _Failure(
                        H.HCN_E_NETWORK_ALREADY_EXISTS,
                        f"a network named {name!r} already exists (id {other.get('ID')})",
                    )
            record = dict(doc)
            record.update({"ID": net_id, "Type": net_type})
            record.setdefault("SchemaVersion", {"Major": 2, "Minor": 0})
            record.setdefault("Flags", 0)
            self.store.write("networks", net_id, record)
        handle: HcnHandle = self._new_handle(lambda h: HcnHandle(h, "network", net_id))
        out[0] = handle.handle
        self._notify_hcn(HCN_NOTIFICATION_NETWORK_CREATE, net_id)
        return H.S_OK

    def HcnOpenNetwork(self, guid: Any, out: Any, error: Any) -> int:
        if not out or not guid:
            return H.E_INVALIDARG
        out[0] = None
        net_id = _guid_str(guid.contents)
        if self.store.read("networks", net_id) is None:
            raise _Failure(H.HCN_E_NETWORK_NOT_FOUND, f"network {net_id} not found")
        handle: HcnHandle = self._new_handle(lambda h: HcnHandle(h, "network", net_id))
        out[0] = handle.handle
        return H.S_OK

    def _hcn_handle(self, handle: int | None, kind: str) -> HcnHandle:
        with self._lock:
            obj = self._handles.get(handle or 0)
        if not isinstance(obj, HcnHandle) or obj.kind != kind:
            raise _Failure(H.E_HANDLE, f"0x{handle or 0:X} is not an open {kind} handle")
        return obj

    @staticmethod
    def _public(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if not k.startswith("_")}

    def HcnModifyNetwork(self, network: int | None, settings: str | None, error: Any) -> int:
        handle = self._hcn_handle(network, "network")
        request = self._hcn_doc(settings, "ModifySettingRequest", "settings")
        with self.store.lock():
            record = self.store.read("networks", handle.object_id)
            if record is None:
                raise _Failure(H.HCN_E_NETWORK_NOT_FOUND, f"network {handle.object_id} not found")
            body = request.get("Settings") or {}
            if request.get("ResourceType") == "Policy" and isinstance(body, dict):
                policies = list(record.get("Policies") or [])
                if request.get("RequestType") == "Remove":
                    policies = [p for p in policies if p not in (body.get("Policies") or [])]
                else:
                    policies.extend(body.get("Policies") or [])
                record["Policies"] = policies
            elif request.get("ResourceType") == "DNS" and isinstance(body, dict):
                record["Dns"] = body
            self.store.write("networks", handle.object_id, record)
        return H.S_OK

    def HcnQueryNetworkProperties(
        self, network: int | None, query: str | None, out: Any, error: Any
    ) -> int:
        handle = self._hcn_handle(network, "network")
        if not out:
            return H.E_INVALIDARG
        out[0] = None
        self._query(query)
        record = self.store.read("networks", handle.object_id)
        if record is None:
            raise _Failure(H.HCN_E_NETWORK_NOT_FOUND, f"network {handle.object_id} not found")
        out[0] = self.alloc_string(
            json.dumps(self._public(record)), COTASKMEM_FREE, "HcnQueryNetworkProperties"
        )
        return H.S_OK

    def HcnDeleteNetwork(self, guid: Any, error: Any) -> int:
        if not guid:
            return H.E_INVALIDARG
        net_id = _guid_str(guid.contents)
        with self.store.lock():
            if self.store.read("networks", net_id) is None:
                raise _Failure(H.HCN_E_NETWORK_NOT_FOUND, f"network {net_id} not found")
            users = [
                e["ID"]
                for e in self.store.records("endpoints")
                if e.get("HostComputeNetwork") == net_id
            ]
            if users:
                raise _Failure(
                    H.HCN_E_ENTITY_HAS_REFERENCES,
                    f"network {net_id} still has endpoints: {', '.join(users)}",
                )
            self.store.delete("networks", net_id)
        self._notify_hcn(HCN_NOTIFICATION_NETWORK_DELETE, net_id)
        return H.S_OK

    def HcnCloseNetwork(self, network: int | None) -> int:
        handle = self._hcn_handle(network, "network")
        self._closing("HcnCloseNetwork", handle.handle)
        with self._lock:
            self._handles.pop(handle.handle, None)
        return H.S_OK

    def HcnCreateEndpoint(
        self, network: int | None, guid: Any, settings: str | None, out: Any, error: Any
    ) -> int:
        handle = self._hcn_handle(network, "network")
        if not out:
            return H.E_INVALIDARG
        out[0] = None
        self._require_id(guid, "HcnCreateEndpoint")
        doc = self._hcn_doc(settings, "HostComputeEndpoint", "settings")
        if doc.get("HostComputeNamespace"):
            raise _Failure(H.HCN_E_INVALID_ENDPOINT, "HostComputeNamespace is read-only at create")
        declared = str(doc.get("HostComputeNetwork", "")).strip("{}").lower()
        if declared and declared != handle.object_id:
            raise _Failure(
                H.HCN_E_INVALID_ENDPOINT,
                f"HostComputeNetwork {declared} is not the network the endpoint is created on",
            )
        ep_id = self._requested_id(guid, doc)
        with self.store.lock():
            net = self.store.read("networks", handle.object_id)
            if net is None:
                raise _Failure(H.HCN_E_NETWORK_NOT_FOUND, f"network {handle.object_id} not found")
            if self.store.read("endpoints", ep_id) is not None:
                raise _Failure(H.HCN_E_INVALID_ENDPOINT, f"endpoint {ep_id} already exists")
            self._check_ports(doc.get("Policies") or [], ep_id, [])
            record = dict(doc)
            record.update({"ID": ep_id, "HostComputeNetwork": handle.object_id})
            record.setdefault("SchemaVersion", {"Major": 2, "Minor": 0})
            subnet = self._first_subnet(net)
            explicit = record.get("IpConfigurations")
            needs_address = subnet is not None and not explicit
            # Read once, under the lock held until the endpoint is written (see _free_address).
            endpoints = (
                self.store.records("endpoints")
                if needs_address or explicit or not record.get("MacAddress")
                else []
            )
            if explicit:
                self._check_explicit_addresses(net, explicit, endpoints)
            if subnet is not None and needs_address:
                gateway = self._gateway(net)
                address = self._free_address(net, subnet, gateway, endpoints)
                record["IpConfigurations"] = [
                    {"IpAddress": str(address), "PrefixLength": subnet.prefixlen}
                ]
                if gateway is not None:
                    record.setdefault(
                        "Routes", [{"NextHop": str(gateway), "DestinationPrefix": "0.0.0.0/0"}]
                    )
            if not record.get("MacAddress"):
                record["MacAddress"] = self._free_mac(net, endpoints)
            self.store.write("endpoints", ep_id, record)
        ep: HcnHandle = self._new_handle(lambda h: HcnHandle(h, "endpoint", ep_id))
        out[0] = ep.handle
        return H.S_OK

    @staticmethod
    def _check_explicit_addresses(
        net: dict[str, Any], configs: Any, endpoints: list[dict[str, Any]]
    ) -> None:
        """The addresses an endpoint document asks for (``IpConfigurations[].IpAddress``),
        checked as HCNHResult.md defines its codes: "HCN_E_INVALID_IP | IP address is either
        invalid or not part of any configured subnet(s) | 0x803b001e" and
        "HCN_E_ADDR_INVALID_OR_RESERVED | An address provided is invalid or reserved |
        0x803b002F".  Not an IP, or outside every subnet of the network (when it has any):
        HCN_E_INVALID_IP.  A subnet's network or last (broadcast) address, a gateway (a
        route's ``NextHop``), or an address another endpoint of the network still holds:
        HCN_E_ADDR_INVALID_OR_RESERVED.  Which of the two codes HNS gives for each case is
        UNCONFIRMED (docs/windows-notes.md "Endpoint addressing")."""
        import ipaddress

        subnets = []
        gateways = set()
        for ipam in net.get("Ipams") or []:
            for item in ipam.get("Subnets") or []:
                if item.get("IpAddressPrefix"):
                    subnets.append(ipaddress.ip_network(item["IpAddressPrefix"], strict=False))
                for route in item.get("Routes") or []:
                    with contextlib.suppress(ValueError):
                        gateways.add(ipaddress.ip_address(str(route.get("NextHop"))))
        held = {}
        for endpoint in endpoints:
            if endpoint.get("HostComputeNetwork") != net.get("ID"):
                continue
            for config in endpoint.get("IpConfigurations") or []:
                if isinstance(config, dict):
                    with contextlib.suppress(ValueError):
                        held[ipaddress.ip_address(str(config.get("IpAddress")))] = endpoint["ID"]
        for config in configs if isinstance(configs, list) else []:
            if not isinstance(config, dict) or config.get("IpAddress") is None:
                continue
            text = config["IpAddress"]
            try:
                address = ipaddress.ip_address(str(text))
            except ValueError:
                raise _Failure(
                    H.HCN_E_INVALID_IP, f"IpAddress {text!r} is not an IP address"
                ) from None
            inside = [n for n in subnets if address.version == n.version and address in n]
            if subnets and not inside:
                raise _Failure(
                    H.HCN_E_INVALID_IP,
                    f"IpAddress {text} is in no subnet of network {net.get('ID')} "
                    f"({', '.join(map(str, subnets))})",
                )
            for subnet in inside:
                if address in (subnet.network_address, subnet.broadcast_address):
                    raise _Failure(
                        H.HCN_E_ADDR_INVALID_OR_RESERVED,
                        f"IpAddress {text} is the network or broadcast address of {subnet}",
                    )
            if address in gateways:
                raise _Failure(
                    H.HCN_E_ADDR_INVALID_OR_RESERVED, f"IpAddress {text} is the network's gateway"
                )
            if address in held:
                raise _Failure(
                    H.HCN_E_ADDR_INVALID_OR_RESERVED,
                    f"IpAddress {text} is held by endpoint {held[address]} (delete it first)",
                )

    @staticmethod
    def _first_subnet(net: dict[str, Any]) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
        import ipaddress

        for ipam in net.get("Ipams") or []:
            for subnet in ipam.get("Subnets") or []:
                if subnet.get("IpAddressPrefix"):
                    return ipaddress.ip_network(subnet["IpAddressPrefix"], strict=False)
        return None

    @staticmethod
    def _gateway(net: dict[str, Any]) -> Any:
        import ipaddress

        for ipam in net.get("Ipams") or []:
            for subnet in ipam.get("Subnets") or []:
                for route in subnet.get("Routes") or []:
                    if route.get("NextHop"):
                        return ipaddress.ip_address(route["NextHop"])
        return None

    @staticmethod
    def _free_address(
        net: dict[str, Any],
        subnet: ipaddress.IPv4Network | ipaddress.IPv6Network,
        gateway: Any,
        endpoints: list[dict[str, Any]],
    ) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """The lowest address of ``subnet`` that no endpoint of ``net`` holds, the network
        address, the broadcast (last) address and the gateway excluded.  ``endpoints``: every
        endpoint record, read with the store lock held, which the caller keeps until the new
        endpoint is written, so two processes never get the same address.

        HNS frees an endpoint's address when the endpoint is deleted (moby/moby#47576,
        docker/for-win#13965): an address a stale endpoint still holds is never handed out
        here, and asked for explicitly it is refused (HCN_E_ADDR_INVALID_OR_RESERVED,
        :meth:`_check_explicit_addresses`) until that endpoint is deleted.  The order in which
        HNS hands out a subnet's addresses is documented nowhere (learn.microsoft.com "HCN
        JSON document schemas", hcsshim ``hcn/``): the lowest free one is the simulator's
        choice, UNCONFIRMED (docs/windows-notes.md "Endpoint addressing").
        An exhausted subnet fails with HCN_E_INVALID_IP (the real HRESULT is UNCONFIRMED)."""
        import ipaddress

        taken = set()
        for endpoint in endpoints:
            if endpoint.get("HostComputeNetwork") != net.get("ID"):
                continue
            for config in endpoint.get("IpConfigurations") or []:
                if not isinstance(config, dict):
                    continue
                try:
                    taken.add(ipaddress.ip_address(str(config.get("IpAddress"))))
                except ValueError:
                    continue
        first = int(subnet.network_address) + 1
        last = int(subnet.broadcast_address) - 1
        # The lowest free address is at most len(taken) + 1 addresses past the first (the
        # gateway aside), so this stops early in any subnet, however large.
        for value in range(first, min(last, first + len(taken) + 1) + 1):
            address: ipaddress.IPv4Address | ipaddress.IPv6Address = (
                ipaddress.IPv4Address(value)
                if subnet.version == 4
                else ipaddress.IPv6Address(value)
            )
            if address != gateway and address not in taken:
                return address
        raise _Failure(
            H.HCN_E_INVALID_IP,
            f"subnet {subnet} has no free address: its {max(last - first + 1, 0)} host "
            f"addresses are the gateway's or held by endpoints of network {net.get('ID')} "
            "(delete one of them first)",
        )

    def _free_mac(self, net: dict[str, Any], endpoints: list[dict[str, Any]]) -> str:
        """The lowest MAC of the network's ``MacPool`` ranges that no endpoint on this host
        holds.  ``endpoints``: every endpoint record, read under the store lock the caller holds
        until the new endpoint is written.

        HNS assigns an endpoint created without ``MacAddress`` a MAC from its network's
        ``MacPool`` (HNS_Schema.md ``MacPool``/``MacRange``; hcsshim creates endpoints
        without one and reads ``MacAddress`` back: ``hcn/hcnendpoint.go``,
        ``internal/uvm/network.go``).  Simulated choices (UNCONFIRMED on Windows): the
        lowest free address, ranges inclusive, unique host-wide; a network without a pool
        draws from ``00-15-5D-00-00-00``..``00-15-5D-00-FF-FF``.  An exhausted pool fails
        with HCN_E_INVALID_ENDPOINT: HCNHResult.md has no pool-exhausted code, so the real
        HRESULT is UNCONFIRMED.  An explicit ``MacAddress`` is taken as given (whether HNS
        refuses a duplicate one is not documented, so the simulator does not)."""
        ranges: list[tuple[int, int]] = []
        for item in (net.get("MacPool") or {}).get("Ranges") or []:
            if isinstance(item, dict):
                low = _mac_value(item.get("StartMacAddress"))
                high = _mac_value(item.get("EndMacAddress"))
                if low is not None and high is not None and low <= high:
                    ranges.append((low, high))
        if not ranges:
            ranges = [(0x00155D000000, 0x00155D00FFFF)]
        taken = {_mac_value(ep.get("MacAddress")) for ep in endpoints}
        size = 0
        for low, high in ranges:
            size += high - low + 1
            for value in range(low, high + 1):
                if value not in taken:
                    raw = f"{value:012X}"
                    return "-".join(raw[i : i + 2] for i in range(0, 12, 2))
        raise _Failure(
            H.HCN_E_INVALID_ENDPOINT,
            f"the MacPool of network {net.get('ID')} has no free MAC address "
            f"({size} addresses, all in use)",
        )

    def HcnOpenEndpoint(self, guid: Any, out: Any, error: Any) -> int:
        if not out or not guid:
            return H.E_INVALIDARG
        out[0] = None
        ep_id = _guid_str(guid.contents)
        if self.store.read("endpoints", ep_id) is None:
            raise _Failure(H.HCN_E_ENDPOINT_NOT_FOUND, f"endpoint {ep_id} not found")
        ep: HcnHandle = self._new_handle(lambda h: HcnHandle(h, "endpoint", ep_id))
        out[0] = ep.handle
        return H.S_OK

    def HcnModifyEndpoint(self, endpoint: int | None, settings: str | None, error: Any) -> int:
        handle = self._hcn_handle(endpoint, "endpoint")
        request = self._hcn_doc(settings, "ModifySettingRequest", "settings")
        with self.store.lock():
            record = self.store.read("endpoints", handle.object_id)
            if record is None:
                raise _Failure(H.HCN_E_ENDPOINT_NOT_FOUND, f"endpoint {handle.object_id} not found")
            body = request.get("Settings") or {}
            if request.get("ResourceType") == "Policy" and isinstance(body, dict):
                policies = list(record.get("Policies") or [])
                if request.get("RequestType") == "Remove":
                    policies = [p for p in policies if p not in (body.get("Policies") or [])]
                else:
                    self._check_ports(body.get("Policies") or [], handle.object_id, policies)
                    policies.extend(body.get("Policies") or [])
                record["Policies"] = policies
            self.store.write("endpoints", handle.object_id, record)
        return H.S_OK

    @staticmethod
    def _port_keys(policies: list[Any]) -> set[tuple[int, int]]:
        """(Protocol, ExternalPort) of each PortMapping policy (HNS_Schema.md
        #PortMappingPolicySetting; hcsshim hcn/hcnpolicy.go)."""
        keys: set[tuple[int, int]] = set()
        for policy in policies:
            if isinstance(policy, dict) and policy.get("Type") == "PortMapping":
                settings = policy.get("Settings") or {}
                if isinstance(settings, dict) and settings.get("ExternalPort"):
                    keys.add((int(settings.get("Protocol") or 6), int(settings["ExternalPort"])))
        return keys

    def _check_ports(self, new: list[Any], ep_id: str, own: list[Any]) -> None:
        """A host port (per protocol) is published once on the host: HCN_E_PORT_ALREADY_EXISTS
        (0x803B0013, HCNHResult.md) otherwise.  Call with the store lock held."""
        wanted = self._port_keys(new)
        if not wanted:
            return
        taken = self._port_keys(own)
        for other in self.store.records("endpoints"):
            if other.get("ID") != ep_id:
                taken |= self._port_keys(list(other.get("Policies") or []))
        seen: set[tuple[int, int]] = set()
        for policy in new:
            for key in self._port_keys([policy]):
                if key in taken or key in seen:
                    raise _Failure(
                        H.HCN_E_PORT_ALREADY_EXISTS,
                        f"port {key[1]} (protocol {key[0]}) is already mapped on this host",
                    )
                seen.add(key)

    def HcnQueryEndpointProperties(
        self, endpoint: int | None, query: str | None, out: Any, error: Any
    ) -> int:
        handle = self._hcn_handle(endpoint, "endpoint")
        if not out:
            return H.E_INVALIDARG
        out[0] = None
        self._query(query)
        record = self.store.read("endpoints", handle.object_id)
        if record is None:
            raise _Failure(H.HCN_E_ENDPOINT_NOT_FOUND, f"endpoint {handle.object_id} not found")
        out[0] = self.alloc_string(
            json.dumps(self._public(record)), COTASKMEM_FREE, "HcnQueryEndpointProperties"
        )
        return H.S_OK

    def HcnDeleteEndpoint(self, guid: Any, error: Any) -> int:
        if not guid:
            return H.E_INVALIDARG
        ep_id = _guid_str(guid.contents)
        with self.store.lock():
            if self.store.read("endpoints", ep_id) is None:
                raise _Failure(H.HCN_E_ENDPOINT_NOT_FOUND, f"endpoint {ep_id} not found")
            for system in self.store.records("systems"):
                if system.get("State") == STOPPED:
                    continue
                for adapter in (system.get("NetworkAdapters") or {}).values():
                    if str(adapter.get("EndpointId", "")).strip("{}").lower() == ep_id:
                        raise _Failure(
                            H.HCN_E_ENDPOINT_ALREADY_ATTACHED,
                            f"endpoint {ep_id} is attached to compute system {system['Id']!r}",
                        )
            self.store.delete("endpoints", ep_id)
        return H.S_OK

    def HcnCloseEndpoint(self, endpoint: int | None) -> int:
        handle = self._hcn_handle(endpoint, "endpoint")
        self._closing("HcnCloseEndpoint", handle.handle)
        with self._lock:
            self._handles.pop(handle.handle, None)
        return H.S_OK

    # HcnRegisterServiceCallback.md / HcnUnregisterServiceCallback.md.  Simulated: callbacks
    # of this process hear NetworkCreate / NetworkDelete (HCN_NOTIFICATIONS 2 / 4) for networks
    # created or deleted in this process, on a worker thread; NotificationData is
    # ``{"ID": "<network guid>"}`` (the real document is UNCONFIRMED).

    def HcnRegisterServiceCallback(
        self, callback: int | None, context: int | None, out: Any
    ) -> int:
        if not callback or not out:
            return H.E_INVALIDARG
        out[0] = None
        registration: HcnHandle = self._new_handle(
            lambda h: HcnHandle(h, "service callback", "", callback, context)
        )
        out[0] = registration.handle
        return H.S_OK

    def HcnUnregisterServiceCallback(self, registration: int | None) -> int:
        handle = self._hcn_handle(registration, "service callback")
        with self._lock:
            self._handles.pop(handle.handle, None)
        return H.S_OK

    def _notify_hcn(self, notification: int, object_id: str) -> None:
        with self._lock:
            targets = [
                h
                for h in self._handles.values()
                if isinstance(h, HcnHandle) and h.kind == "service callback"
            ]
        if not targets:
            return
        data = json.dumps({"ID": object_id})
        with self._lock:
            self._hcn_pending.append((targets, notification, data))
            if self._hcn_draining:
                return  # the running drain job delivers it after the earlier ones
            self._hcn_draining = True
        self._workers.submit(self._drain_hcn)

    def _drain_hcn(self) -> None:
        """Deliver the queued HCN notifications in order (see ``_notify_hcn``)."""
        while True:
            with self._lock:
                if not self._hcn_pending:
                    self._hcn_draining = False
                    return
                targets, notification, data = self._hcn_pending.pop(0)
            for target in targets:
                with self._lock:
                    if self._handles.get(target.handle) is not target:
                        continue  # unregistered meanwhile
                HCN_NOTIFICATION_CALLBACK(target.callback or 0)(
                    notification, target.context, H.S_OK, data
                )


# ---------------------------------------------------------------------------------------------
# Environment syntax
# ---------------------------------------------------------------------------------------------


def parse_faults(text: str) -> list[Fault]:
    """``FUNC:NTH:ACTION[:TIMES][:WHERE],...``; ACTION = hex/decimal HRESULT or ``hang``.

    Example: ``HcsStartComputeSystem:1:0x80370105,HcsCreateEndpoint:2:hang``.
    """
    faults = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        fields = item.split(":")
        if len(fields) < 3:
            raise SimulatorError(
                f"{ENV_FAULTS}: {item!r} must be FUNCTION:NTH:HRESULT|hang[:TIMES][:call|result]"
            )
        function, nth_text, action = fields[0], fields[1], fields[2]
        try:
            nth = int(nth_text)
            times = int(fields[3]) if len(fields) > 3 and fields[3] else 1
        except ValueError:
            raise SimulatorError(f"{ENV_FAULTS}: {item!r}: NTH and TIMES are integers") from None
        where = fields[4] if len(fields) > 4 else "call"
        if where not in ("call", "result"):
            raise SimulatorError(f"{ENV_FAULTS}: {item!r}: WHERE is 'call' or 'result'")
        if action.lower() == "hang":
            faults.append(Fault(function, nth, H.E_FAIL, True, times, where))
            continue
        try:
            hresult = int(action, 0) & 0xFFFFFFFF
        except ValueError:
            raise SimulatorError(f"{ENV_FAULTS}: {item!r}: {action!r} is not an HRESULT") from None
        faults.append(Fault(function, nth, hresult, False, times, where))
    return faults


def parse_latency(text: str) -> dict[str, float]:
    """``FUNC:SECONDS,...`` where FUNC may be ``*`` (every asynchronous operation)."""
    out: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.rpartition(":")
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not sep or not name or seconds < 0:
            raise SimulatorError(f"{ENV_LATENCY}: {item!r} must be FUNCTION:SECONDS or *:SECONDS")
        out[name] = seconds
    return out
