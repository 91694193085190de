"""The one exception tree of hcs-sandbox, and the one factory that maps an HRESULT to it.

Every error the library raises derives from :class:`HcsSandboxError`.  Each carries a
one-line ``message`` (what failed and why) and an optional ``remedy`` (what to do); the
CLI prints ``str(error)``, which joins the two, on one line.

HCS failures are built only by :func:`error_from_hresult`, from the HRESULT a call
returned plus the ``ResultError`` document HCS may attach to it.

Sources for the HRESULT values:
- Microsoft, *HCS HRESULT values*
  (MicrosoftDocs/Virtualization-Documentation ``virtualization/api/hcs/Reference/HCSHResult.md``);
- Microsoft, *HCN HRESULT values* (``virtualization/api/hcn/Reference/HCNHResult.md``);
- hcsshim ``internal/hcs/errors.go`` for the NTSTATUS-style ``0xC037xxxx`` twins, and
  ``internal/interop/interop.go`` for the Win32-in-HRESULT rule.

This module imports nothing from the package at run time (one import for type checkers
only): every layer may use it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~5 ms at start-up
if TYPE_CHECKING:
    from typing import Any

    from hcs_sandbox.sandbox.guest import ExecResult  # for type checkers only: no cycle

__all__ = [
    "AccessDeniedError",
    "AlreadyExistsError",
    "AlreadyStoppedError",
    "ConnectFailedError",
    "ExecTimeoutError",
    "GuestCommandError",
    "HcnError",
    "HcsError",
    "HcsSandboxError",
    "HcsUnavailableError",
    "InvalidJsonError",
    "InvalidStateError",
    "NameInUseError",
    "NotFoundError",
    "OperationTimeoutError",
    "OtherHostSandboxError",
    "ProcessAlreadyStoppedError",
    "SandboxExitedError",
    "SandboxNotFoundError",
    "SandboxStateError",
    "SchemaError",
    "ServiceNotAvailableError",
    "SpecError",
    "StateConflictError",
    "StateDatabaseError",
    "StorageError",
    "StoreError",
    "WsbError",
    "error_from_hresult",
    "hresult_name",
    "normalize_hresult",
    "quoted",
]


class HcsSandboxError(Exception):
    """Base class of every error hcs-sandbox raises.

    ``message`` says what failed and why; ``remedy`` says what to do about it.
    """

    exit_code: int = 1

    def __init__(self, message: str, *, remedy: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy

    def __str__(self) -> str:
        if self.remedy:
            return f"{self.message} ({self.remedy})"
        return self.message


# --------------------------------------------------------------------------------------
# Input errors (exit code 2 at the CLI)
# --------------------------------------------------------------------------------------


class SpecError(HcsSandboxError, ValueError):
    """A sandbox description is invalid: which field, which value, why, what is allowed.

    ``reason``: the why alone, when the message is ``invalid FIELD VALUE: REASON`` (so that a
    caller can say it in its own words, as the CLI names the flag instead of the field)."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        value: object = None,
        allowed: str | None = None,
        remedy: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, remedy=remedy if remedy is not None else allowed)
        self.field = field
        self.value = value
        self.allowed = allowed
        self.reason = reason


class WsbError(SpecError):
    """A ``.wsb`` file is invalid.  ``path`` and ``line`` say where."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
        value: object = None,
        remedy: str | None = None,
    ) -> None:
        where = path or "<wsb>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}", field=field, value=value, remedy=remedy)
        self.path = path
        self.line = line


class NameInUseError(HcsSandboxError):
    """A sandbox name is already taken."""

    exit_code = 2


class SandboxNotFoundError(HcsSandboxError):
    """No sandbox has that name or id."""

    exit_code = 2


class OtherHostSandboxError(SandboxNotFoundError):
    """The sandbox's record was made through another HCS host (Windows, or another
    simulator directory): its compute system cannot be seen from here, so it is left alone."""


class StoreError(HcsSandboxError):
    """The state store could not be read or written."""


class StateDatabaseError(StoreError):
    """The state database as a whole could not be used (busy past its timeout, damaged,
    unreadable, no space): no record can be read or written now, so an operation over many
    records (``prune``) stops at the first one instead of failing once per record (review
    RV60 F2)."""


class StateConflictError(StoreError):
    """A compare-and-set update of a store record lost a race: the record changed meanwhile.

    ``expected`` is what the caller required (states or a revision), ``actual`` what it found.
    """

    def __init__(
        self,
        message: str,
        *,
        record_id: str | None = None,
        expected: object = None,
        actual: object = None,
        remedy: str | None = None,
    ) -> None:
        super().__init__(message, remedy=remedy)
        self.record_id = record_id
        self.expected = expected
        self.actual = actual


class StorageError(HcsSandboxError):
    """A disk, file or base image problem."""


class SandboxStateError(HcsSandboxError):
    """The sandbox is not in a state that allows the operation (e.g. removing a running
    sandbox without force, starting a stopped ephemeral one).  ``state`` is its state."""

    def __init__(
        self, message: str, *, state: str | None = None, remedy: str | None = None
    ) -> None:
        super().__init__(message, remedy=remedy)
        self.state = state


class SchemaError(HcsSandboxError, ValueError):
    """A JSON document does not fit the HCS/HCN schema model it was parsed as.

    ``path`` is the dotted JSON path of the offending value (``"VirtualMachine.Devices"``).
    Raised only by :mod:`hcs_sandbox.schema`.
    """

    def __init__(self, message: str, *, path: str | None = None, remedy: str | None = None) -> None:
        super().__init__(message, remedy=remedy)
        self.path = path


class HcsUnavailableError(HcsSandboxError, OSError):
    """HCS (or one of its DLLs or exports) is not available on this host."""

    exit_code = 3


class ExecTimeoutError(HcsSandboxError):
    """A command in a sandbox did not finish within its timeout (``exec --timeout``).

    The guest process was killed before this was raised (unless ``killed`` is False).
    ``stdout``/``stderr`` hold the output collected until then.  Exit code 124, as
    coreutils ``timeout`` uses.
    """

    exit_code = 124

    def __init__(
        self,
        message: str,
        *,
        timeout: float,
        stdout: bytes = b"",
        stderr: bytes = b"",
        killed: bool = True,
        remedy: str | None = None,
    ) -> None:
        super().__init__(message, remedy=remedy)
        self.timeout = timeout
        self.stdout = stdout
        self.stderr = stderr
        self.killed = killed


class SandboxExitedError(SandboxStateError):
    """The sandbox's compute system exited (killed, stopped or removed by another process,
    its guest crashed, or the command shut it down) while a guest command ran in it, or just
    after the command ended with a non-zero code (the two cannot be told apart): the exit
    code HCS reported for the process (``process_exit_code``) may not be the command's own.
    ``stdout``/``stderr`` hold the output collected until then.  Exit code 125 at the CLI
    (``exec``, ``run -- COMMAND``), which is not the guest command's status."""

    exit_code = 125

    def __init__(
        self,
        message: str,
        *,
        process_exit_code: int | None = None,
        stdout: bytes = b"",
        stderr: bytes = b"",
        remedy: str | None = None,
    ) -> None:
        super().__init__(message, state="stopped", remedy=remedy)
        self.process_exit_code = process_exit_code
        self.stdout = stdout
        self.stderr = stderr


#: The remedy of :class:`GuestCommandError` from ``ExecResult.check()``: the command ran and
#: said why it failed; nothing else is known.
GUEST_COMMAND_REMEDY = (
    "the command's own output says why: see the error's .result.stdout and .stderr"
)


class GuestCommandError(HcsSandboxError):
    """A guest command exited with a non-zero code (``ExecResult.check``, the copy and map
    helpers).  ``result`` is its :class:`~hcs_sandbox.sandbox.guest.ExecResult`; the message
    ends with the last line of its output.  Defined here, with the other errors, so that
    ``from hcs_sandbox.errors import GuestCommandError`` works (``hcs_sandbox.sandbox.guest``
    names the same class)."""

    def __init__(
        self, result: ExecResult, *, doing: str | None = None, remedy: str | None = None
    ) -> None:
        detail = (result.stderr_text.strip() or result.stdout_text.strip()).splitlines()
        tail = f": {detail[-1]}" if detail else ""
        what = doing or f"the guest command {result.command_line!r}"
        super().__init__(
            f"{what} failed with exit code {result.exit_code}{tail}",
            remedy=remedy or GUEST_COMMAND_REMEDY,
        )
        self.result = result

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as the others are (the message in ``args``, the fields in ``__dict__``),
        # but not rebuilt through ``__init__``, which wants the ExecResult, not the message:
        # a ProcessPoolExecutor worker's check() reaches its parent as this error.
        return (_rebuilt, (type(self), self.args), self.__dict__)


def _rebuilt(cls: type[HcsSandboxError], args: tuple[object, ...]) -> HcsSandboxError:
    """An error of ``cls`` with ``args``, without its ``__init__`` (unpickling sets the
    rest): :meth:`GuestCommandError.__reduce__`."""
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    return error


# --------------------------------------------------------------------------------------
# HRESULT-based errors
# --------------------------------------------------------------------------------------

FACILITY_HCS = 0x037  # HCS_E_*  (HCSHResult.md)
FACILITY_HCN = 0x03B  # HCN_E_*  (HCNHResult.md)
FACILITY_WIN32 = 0x007  # winerror.h FACILITY_WIN32

# HRESULTs the hcs layer raises or compares by name (each is also in the tables below).
E_HANDLE = 0x80070006  # winerror.h: HRESULT_FROM_WIN32(ERROR_INVALID_HANDLE)
ERROR_INVALID_DATA_HR = 0x8007000D  # winerror.h: HRESULT_FROM_WIN32(ERROR_INVALID_DATA)
HCS_E_OPERATION_TIMEOUT = 0x80370118  # HCSHResult.md

# HCS_E_* codes, HCSHResult.md.  Key: the low 16 bits ("code") in facility 0x037.
HCS_CODES: dict[int, str] = {
    0x0100: "HCS_E_TERMINATED_DURING_START",
    0x0101: "HCS_E_IMAGE_MISMATCH",
    0x0102: "HCS_E_HYPERV_NOT_INSTALLED",
    0x0103: "HCS_E_OPERATION_PENDING_LEGACY",  # 0xC0370103 in vmcompute (hcsshim errors.go)
    0x0105: "HCS_E_INVALID_STATE",
    0x0106: "HCS_E_UNEXPECTED_EXIT",
    0x0107: "HCS_E_TERMINATED",
    0x0108: "HCS_E_CONNECT_FAILED",
    0x0109: "HCS_E_CONNECTION_TIMEOUT",
    0x010A: "HCS_E_CONNECTION_CLOSED",
    0x010B: "HCS_E_UNKNOWN_MESSAGE",
    0x010C: "HCS_E_UNSUPPORTED_PROTOCOL_VERSION",
    0x010D: "HCS_E_INVALID_JSON",
    0x010E: "HCS_E_SYSTEM_NOT_FOUND",
    0x010F: "HCS_E_SYSTEM_ALREADY_EXISTS",
    0x0110: "HCS_E_SYSTEM_ALREADY_STOPPED",
    0x0111: "HCS_E_PROTOCOL_ERROR",
    0x0112: "HCS_E_INVALID_LAYER",
    0x0113: "HCS_E_WINDOWS_INSIDER_REQUIRED",
    0x0114: "HCS_E_SERVICE_NOT_AVAILABLE",
    0x0115: "HCS_E_OPERATION_NOT_STARTED",
    0x0116: "HCS_E_OPERATION_ALREADY_STARTED",
    0x0117: "HCS_E_OPERATION_PENDING",
    0x0118: "HCS_E_OPERATION_TIMEOUT",
    0x0119: "HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET",
    0x011A: "HCS_E_OPERATION_RESULT_ALLOCATION_FAILED",
    0x011B: "HCS_E_ACCESS_DENIED",
    0x011C: "HCS_E_GUEST_CRITICAL_ERROR",
    0x011D: "HCS_E_PROCESS_INFO_NOT_AVAILABLE",
    0x011E: "HCS_E_SERVICE_DISCONNECT",
    0x011F: "HCS_E_PROCESS_ALREADY_STOPPED",
}

# HCN_E_* codes, HCNHResult.md.  Key: the low 16 bits in facility 0x03B.
HCN_CODES: dict[int, str] = {
    0x0001: "HCN_E_NETWORK_NOT_FOUND",
    0x0002: "HCN_E_ENDPOINT_NOT_FOUND",
    0x0003: "HCN_E_LAYER_NOT_FOUND",
    0x0004: "HCN_E_SWITCH_NOT_FOUND",
    0x0005: "HCN_E_SUBNET_NOT_FOUND",
    0x0006: "HCN_E_ADAPTER_NOT_FOUND",
    0x0007: "HCN_E_PORT_NOT_FOUND",
    0x0008: "HCN_E_POLICY_NOT_FOUND",
    0x0009: "HCN_E_VFP_PORTSETTING_NOT_FOUND",
    0x000A: "HCN_E_INVALID_NETWORK",
    0x000B: "HCN_E_INVALID_NETWORK_TYPE",
    0x000C: "HCN_E_INVALID_ENDPOINT",
    0x000D: "HCN_E_INVALID_POLICY",
    0x000E: "HCN_E_INVALID_POLICY_TYPE",
    0x000F: "HCN_E_INVALID_REMOTE_ENDPOINT_OPERATION",
    0x0010: "HCN_E_NETWORK_ALREADY_EXISTS",
    0x0011: "HCN_E_LAYER_ALREADY_EXISTS",
    0x0012: "HCN_E_POLICY_ALREADY_EXISTS",
    0x0013: "HCN_E_PORT_ALREADY_EXISTS",
    0x0014: "HCN_E_ENDPOINT_ALREADY_ATTACHED",
    0x0015: "HCN_E_REQUEST_UNSUPPORTED",
    0x0016: "HCN_E_MAPPING_NOT_SUPPORTED",
    0x0017: "HCN_E_DEGRADED_OPERATION",
    0x0018: "HCN_E_SHARED_SWITCH_MODIFICATION",
    0x0019: "HCN_E_GUID_CONVERSION_FAILURE",
    0x001A: "HCN_E_REGKEY_FAILURE",
    0x001B: "HCN_E_INVALID_JSON",
    0x001C: "HCN_E_INVALID_JSON_REFERENCE",
    0x001D: "HCN_E_ENDPOINT_SHARING_DISABLED",
    0x001E: "HCN_E_INVALID_IP",
    0x001F: "HCN_E_SWITCH_EXTENSION_NOT_FOUND",
    0x0020: "HCN_E_MANAGER_STOPPED",
    0x0021: "GCN_E_MODULE_NOT_FOUND",
    0x0022: "GCN_E_NO_REQUEST_HANDLERS",
    0x0023: "GCN_E_REQUEST_UNSUPPORTED",
    0x0024: "GCN_E_RUNTIMEKEYS_FAILED",
    0x0025: "GCN_E_NETADAPTER_TIMEOUT",
    0x0026: "GCN_E_NETADAPTER_NOT_FOUND",
    0x0027: "GCN_E_NETCOMPARTMENT_NOT_FOUND",
    0x0028: "GCN_E_NETINTERFACE_NOT_FOUND",
    0x0029: "GCN_E_DEFAULTNAMESPACE_EXISTS",
    0x002A: "HCN_E_ICS_DISABLED",
    0x002B: "HCN_E_ENDPOINT_NAMESPACE_ALREADY_EXISTS",
    0x002C: "HCN_E_ENTITY_HAS_REFERENCES",
    0x002D: "HCN_E_INVALID_INTERNAL_PORT",
    0x002E: "HCN_E_NAMESPACE_ATTACH_FAILED",
    0x002F: "HCN_E_ADDR_INVALID_OR_RESERVED",
    0x0030: "HCN_E_INVALID_PREFIX",
    0x0031: "HCN_E_OBJECT_USED_AFTER_UNLOAD",
    0x0032: "HCN_E_INVALID_SUBNET",
    0x0033: "HCN_E_INVALID_IP_SUBNET",
    0x0034: "HCN_E_ENDPOINT_NOT_ATTACHED",
    0x0035: "HCN_E_ENDPOINT_NOT_LOCAL",
    0x0036: "HCN_INTERFACEPARAMETERS_ALREADY_APPLIED",  # sic: no "_E_" in HCNHResult.md
    0x0037: "HCN_E_VFP_NOT_ALLOWED",
}

# A few generic HRESULTs seen from HCS in practice (hcsshim internal/hcs/errors.go, winerror.h).
GENERIC_CODES: dict[int, str] = {
    0x80004001: "E_NOTIMPL",
    0x80004003: "E_POINTER",
    0x80004005: "E_FAIL",
    0x8000FFFF: "E_UNEXPECTED",
    0x80070002: "ERROR_FILE_NOT_FOUND",
    0x80070003: "ERROR_PATH_NOT_FOUND",
    0x80070005: "E_ACCESSDENIED",
    0x80070006: "E_HANDLE",
    0x8007000D: "ERROR_INVALID_DATA",
    0x8007000E: "E_OUTOFMEMORY",
    0x80070032: "ERROR_NOT_SUPPORTED",
    0x80070050: "ERROR_FILE_EXISTS",
    0x80070057: "E_INVALIDARG",
    0x8007007F: "ERROR_PROC_NOT_FOUND",
    0x800700B7: "ERROR_ALREADY_EXISTS",
    0x80070490: "ERROR_NOT_FOUND",
    0x800705B4: "ERROR_TIMEOUT",
    # virtdisk (winerror.h FACILITY_USERMODE_VHD; windows-sys metadata: 3225026588): "The
    # requested operation cannot be performed on the virtual disk in its current state."
    0xC03A001C: "ERROR_VHD_INVALID_STATE",
}

ACCESS_REMEDY = "run as Administrator or join Hyper-V Administrators"

#: The remedy of an HCS error that has no specific one (an HRESULT not in ``_REMEDIES``): the
#: message already says which step failed and HCS's own ResultError text; what is left to
#: say is how to look further.  Nothing in it is a claim about Windows.
HCS_GENERIC_REMEDY = (
    "try again; if it fails again, 'hcs-sandbox doctor --deep' tests this host step by step "
    "and 'hcs-sandbox ls -a' shows each sandbox's state"
)


#: The remedy of an error that says hcs-sandbox sent something the host does not accept
#: (an invalid JSON document, an invalid argument): trying again would send the same.
BUG_REMEDY = (
    "this is a bug in hcs-sandbox or an unsupported host; please report it with the output "
    "of 'hcs-sandbox doctor --deep'"
)


def normalize_hresult(hr: int) -> int:
    """Return ``hr`` as an unsigned 32-bit value (ctypes hands back a signed int32)."""
    return hr & 0xFFFFFFFF


def _facility(hr: int) -> int:
    return (hr >> 16) & 0x1FFF


def failed(hr: int) -> bool:
    """``FAILED(hr)`` (winerror.h): the severity bit of the 32-bit value is set (also true
    for NTSTATUS-style 0xCxxxxxxx values)."""
    return bool(hr & 0x80000000)


def hresult_name(hr: int) -> str | None:
    """The symbolic name of an HRESULT, or None when it is not one we know.

    Facility 0x037 matches in both its ``0x8037xxxx`` and ``0xC037xxxx`` forms.
    """
    # normalize_hresult, failed and _facility written out: this runs twice for every error
    # (the factory and HcsError.__init__), on ordinary paths too.
    hr &= 0xFFFFFFFF
    if not hr & 0x80000000:
        return "S_OK" if hr == 0 else None
    code = hr & 0xFFFF
    facility = (hr >> 16) & 0x1FFF
    if facility == FACILITY_HCS:
        return HCS_CODES.get(code)
    if facility == FACILITY_HCN:
        return HCN_CODES.get(code)
    return GENERIC_CODES.get(hr)


def win32_error(hr: int) -> int | None:
    """The Win32 error code inside a ``0x8007xxxx`` HRESULT (hcsshim interop.go), else None."""
    hr = normalize_hresult(hr)
    if failed(hr) and _facility(hr) == FACILITY_WIN32:
        return hr & 0xFFFF
    return None


class HcsError(HcsSandboxError):
    """A call into HCS (computecore/computestorage/virtdisk) failed.

    ``hresult`` is the unsigned HRESULT, ``name`` its symbol when known, ``function`` the
    API that failed, and ``result_error`` the parsed ResultError document when HCS gave one.
    ``remedy`` is never empty: without a specific one it is :data:`HCS_GENERIC_REMEDY`
    (:func:`specific_remedy` tells the two apart).
    """

    def __init__(
        self,
        message: str,
        *,
        hresult: int,
        function: str | None = None,
        result_error: Mapping[str, Any] | None = None,
        remedy: str | None = None,
    ) -> None:
        super().__init__(message, remedy=remedy or HCS_GENERIC_REMEDY)
        self.hresult = normalize_hresult(hresult)
        self.name = hresult_name(self.hresult)
        self.function = function
        self.result_error: Mapping[str, Any] | None = result_error

    def restated(
        self, message: str, *, remedy: str | None = None, cls: type[HcsError] | None = None
    ) -> HcsError:
        """This error told again, for what the caller was doing: ``message`` and ``remedy``
        new; the HRESULT, function and ResultError kept; the same class (and so the same
        CLI exit code) unless ``cls`` names another.  Raise it ``from`` this one."""
        return (cls or type(self))(
            message,
            hresult=self.hresult,
            function=self.function,
            result_error=self.result_error,
            remedy=remedy,
        )


def specific_remedy(exc: HcsSandboxError) -> str | None:
    """``exc.remedy``, or None when it is only :data:`HCS_GENERIC_REMEDY` (a caller that
    knows better says its own)."""
    return None if exc.remedy == HCS_GENERIC_REMEDY else exc.remedy


def quoted(text: str) -> str:
    """``text`` in single quotes as typed, for a message, so a Windows path keeps its single
    backslashes (``'C:\\src'``, not repr's ``'C:\\\\src'``); repr when it holds a quote or
    an unprintable character."""
    if "'" in text or not text.isprintable():
        return repr(text)
    return f"'{text}'"


def in_brief(exc: BaseException) -> str:
    """``exc`` for a log line, a warning or a list of failures: its message with its
    specific remedy, without :data:`HCS_GENERIC_REMEDY` (whose "try again" means nothing
    there: the error line of the verb that failed is where it belongs)."""
    if not isinstance(exc, HcsSandboxError):
        return str(exc)
    remedy = specific_remedy(exc)
    return f"{exc.message} ({remedy})" if remedy else exc.message


class NotFoundError(HcsError):
    """HCS_E_SYSTEM_NOT_FOUND, ERROR_NOT_FOUND and similar."""


class AlreadyExistsError(HcsError):
    """HCS_E_SYSTEM_ALREADY_EXISTS."""


class AlreadyStoppedError(HcsError):
    """HCS_E_SYSTEM_ALREADY_STOPPED."""


class InvalidStateError(HcsError):
    """HCS_E_INVALID_STATE: the operation is not valid in the system's current state."""


class OperationTimeoutError(HcsError):
    """HCS_E_OPERATION_TIMEOUT or HCS_E_CONNECTION_TIMEOUT."""

    exit_code = 124


class ServiceNotAvailableError(HcsError):
    """HCS_E_SERVICE_NOT_AVAILABLE / HCS_E_HYPERV_NOT_INSTALLED / HCS_E_SERVICE_DISCONNECT."""


class InvalidJsonError(HcsError):
    """HCS_E_INVALID_JSON / HCN_E_INVALID_JSON: a document was rejected."""


class AccessDeniedError(HcsError):
    """HCS_E_ACCESS_DENIED or E_ACCESSDENIED."""


class ConnectFailedError(HcsError):
    """The guest connection failed: HCS_E_CONNECT_FAILED, _CONNECTION_CLOSED, _UNKNOWN_MESSAGE."""


class ProcessAlreadyStoppedError(HcsError):
    """HCS_E_PROCESS_ALREADY_STOPPED."""


class TerminatedError(HcsError):
    """HCS_E_TERMINATED, HCS_E_UNEXPECTED_EXIT, HCS_E_TERMINATED_DURING_START."""


class HcnError(HcsError):
    """A call into HCN (computenetwork.dll) failed."""


class HcnNotFoundError(HcnError, NotFoundError):
    """HCN_E_NETWORK_NOT_FOUND / HCN_E_ENDPOINT_NOT_FOUND."""


class HcnAlreadyExistsError(HcnError, AlreadyExistsError):
    """HCN_E_NETWORK_ALREADY_EXISTS / HCN_E_PORT_ALREADY_EXISTS and similar."""


_BY_NAME: dict[str, type[HcsError]] = {
    "HCS_E_SYSTEM_NOT_FOUND": NotFoundError,
    "ERROR_NOT_FOUND": NotFoundError,
    "ERROR_FILE_NOT_FOUND": NotFoundError,
    "ERROR_PATH_NOT_FOUND": NotFoundError,
    "HCS_E_SYSTEM_ALREADY_EXISTS": AlreadyExistsError,
    "ERROR_ALREADY_EXISTS": AlreadyExistsError,
    "ERROR_FILE_EXISTS": AlreadyExistsError,
    "HCS_E_SYSTEM_ALREADY_STOPPED": AlreadyStoppedError,
    "HCS_E_INVALID_STATE": InvalidStateError,
    "HCS_E_OPERATION_TIMEOUT": OperationTimeoutError,
    "HCS_E_CONNECTION_TIMEOUT": OperationTimeoutError,
    "ERROR_TIMEOUT": OperationTimeoutError,
    "HCS_E_SERVICE_NOT_AVAILABLE": ServiceNotAvailableError,
    "HCS_E_HYPERV_NOT_INSTALLED": ServiceNotAvailableError,
    "HCS_E_SERVICE_DISCONNECT": ServiceNotAvailableError,
    "HCS_E_INVALID_JSON": InvalidJsonError,
    "HCS_E_ACCESS_DENIED": AccessDeniedError,
    "E_ACCESSDENIED": AccessDeniedError,
    "HCS_E_CONNECT_FAILED": ConnectFailedError,
    "HCS_E_CONNECTION_CLOSED": ConnectFailedError,
    "HCS_E_UNKNOWN_MESSAGE": ConnectFailedError,
    "HCS_E_PROCESS_ALREADY_STOPPED": ProcessAlreadyStoppedError,
    "HCS_E_TERMINATED": TerminatedError,
    "HCS_E_UNEXPECTED_EXIT": TerminatedError,
    "HCS_E_TERMINATED_DURING_START": TerminatedError,
    "HCN_E_NETWORK_NOT_FOUND": HcnNotFoundError,
    "HCN_E_ENDPOINT_NOT_FOUND": HcnNotFoundError,
    "HCN_E_NETWORK_ALREADY_EXISTS": HcnAlreadyExistsError,
    "HCN_E_PORT_ALREADY_EXISTS": HcnAlreadyExistsError,
    "HCN_E_ENDPOINT_NAMESPACE_ALREADY_EXISTS": HcnAlreadyExistsError,
    "HCN_E_POLICY_ALREADY_EXISTS": HcnAlreadyExistsError,
    "HCN_E_INVALID_JSON": InvalidJsonError,
}

_REMEDIES: dict[str, str] = {
    "HCS_E_ACCESS_DENIED": ACCESS_REMEDY,
    "E_ACCESSDENIED": ACCESS_REMEDY,
    "HCS_E_SERVICE_NOT_AVAILABLE": (
        "enable the 'Virtual Machine Platform' and 'Windows Sandbox' features and start the "
        "vmcompute service; 'hcs-sandbox doctor' checks this"
    ),
    "HCS_E_HYPERV_NOT_INSTALLED": (
        "enable Hyper-V or 'Virtual Machine Platform' in Windows Features and reboot"
    ),
    "HCS_E_SERVICE_DISCONNECT": "the vmcompute service stopped; restart it and try again",
    "HCS_E_INVALID_JSON": BUG_REMEDY,
    "HCN_E_INVALID_JSON": BUG_REMEDY,
    # An argument HCS or virtdisk refused: hcs-sandbox passed something the host does not
    # accept (trying again passes the same).
    "E_INVALIDARG": BUG_REMEDY,
    "E_POINTER": BUG_REMEDY,
    "HCS_E_CONNECT_FAILED": "the guest agent did not answer; check that the guest has booted",
    "HCS_E_OPERATION_TIMEOUT": "the host is slow or stuck; try again with a longer timeout",
    "HCS_E_INVALID_STATE": (
        "the compute system is not in a state that allows this (another process may be "
        "changing it): see its state with 'hcs-sandbox ls -a' and try again"
    ),
    "HCS_E_SYSTEM_NOT_FOUND": (
        "the compute system is gone (it stopped, or another process removed it): "
        "'hcs-sandbox ls -a' shows what is left, 'hcs-sandbox prune' tidies up"
    ),
    "HCS_E_SYSTEM_ALREADY_EXISTS": (
        "a compute system with this id exists already (left by a crashed run?): "
        "'hcs-sandbox prune' removes orphaned systems"
    ),
    "HCS_E_TERMINATED_DURING_START": (
        "the VM stopped while it started: check the base image with 'hcs-sandbox doctor "
        "--deep' (its report names the failing step)"
    ),
    "HCS_E_UNEXPECTED_EXIT": (
        "the VM exited unexpectedly: 'hcs-sandbox doctor --deep' checks the host and base"
    ),
    "HCN_E_ICS_DISABLED": "start the 'Internet Connection Sharing (SharedAccess)' service",
    "HCN_E_MANAGER_STOPPED": "start the Host Network Service (hns)",
}


def _result_error_message(result_error: Mapping[str, Any] | None) -> str | None:
    if not result_error:
        return None
    message = result_error.get("ErrorMessage")
    parts = [str(message)] if message else []
    events = result_error.get("ErrorEvents")
    if isinstance(events, list):
        for event in events:
            if isinstance(event, Mapping) and event.get("Message"):
                text = str(event["Message"])
                if text not in parts:
                    parts.append(text)
    return "; ".join(parts) or None


def parse_result_document(document: str | None) -> dict[str, Any] | None:
    """Parse a result document tolerantly: a JSON object, or None (empty, not JSON, not
    an object)."""
    if not document:
        return None
    try:
        value = json.loads(document)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def error_from_hresult(
    hr: int,
    *,
    function: str | None = None,
    result_document: str | Mapping[str, Any] | None = None,
    context: str | None = None,
    hcn: bool = False,
) -> HcsError:
    """Build the exception for a failed HCS/HCN call: the one factory of the tree.

    ``result_document`` is the ResultError (HCS) or ErrorRecord (HCN) JSON when the call
    returned one; its ErrorMessage becomes part of the message.  ``context`` names what
    the caller was doing (``"starting sandbox 'web'"``).
    """
    # This runs on ordinary paths too (``remove`` opens a system that is already gone and
    # gets HCS_E_SYSTEM_NOT_FOUND), so it calls only what the message needs.
    hr &= 0xFFFFFFFF  # normalize_hresult(hr)
    result_error: Mapping[str, Any] | None
    if result_document is None or isinstance(result_document, str):  # no ABC check for these
        result_error = parse_result_document(result_document) if result_document else None
    elif isinstance(result_document, Mapping):
        result_error = result_document
    else:
        result_error = parse_result_document(result_document)
    name = hresult_name(hr)
    cls: type[HcsError] = _BY_NAME.get(name or "", HcsError)
    if cls is HcsError and (hcn or _facility(hr) == FACILITY_HCN):
        cls = HcnError
    detail = _result_error_message(result_error) if result_error else None
    if name:
        label = f"{name} (0x{hr:08X})"
    else:
        win32 = win32_error(hr)
        label = f"HRESULT 0x{hr:08X}" if win32 is None else f"Win32 error {win32} (0x{hr:08X})"
    head = f"{context} failed: " if context else ""
    where = f"{function}: " if function else ""
    message = f"{head}{where}{label}"
    if detail:
        message += f": {detail}"
    return cls(
        message,
        hresult=hr,
        function=function,
        result_error=result_error,
        remedy=_REMEDIES.get(name or ""),
    )
