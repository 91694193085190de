"""Service-wide computecore calls: service properties, VM file access, state files.

All synchronous (no operation handle), returning an HRESULT (Microsoft
``virtualization/api/hcs/Reference/HcsGetServiceProperties.md``, ``HcsGrantVmAccess.md``,
``HcsRevokeVmAccess.md``, ``HcsGrantVmGroupAccess.md``, ``HcsRevokeVmGroupAccess.md``,
``HcsCreateEmptyGuestStateFile.md``, ``HcsCreateEmptyRuntimeStateFile.md``).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping
from typing import Any

from hcs_sandbox import errors
from hcs_sandbox.hcs._call import check, dumps, native, optional_json
from hcs_sandbox.native.loader import NativeUnavailable, get_backend

__all__ = [
    "create_empty_guest_state_file",
    "create_empty_runtime_state_file",
    "grant_vm_access",
    "grant_vm_group_access",
    "host_identity",
    "revoke_vm_access",
    "revoke_vm_group_access",
    "service_properties",
    "supported_schema_versions",
]

PathLike = str | os.PathLike[str]


def host_identity() -> str:
    """Which HCS host this process talks to: ``"windows"``, or ``"simulator:<directory>"``
    for the simulator (each simulator directory is a host of its own).  Raises
    :class:`~hcs_sandbox.errors.HcsUnavailableError` when no backend can be chosen."""
    try:
        return get_backend().identity
    except NativeUnavailable as exc:
        raise errors.HcsUnavailableError(exc.message, remedy=exc.remedy) from exc


def service_properties(query: str | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``HcsGetServiceProperties(query, &result)`` → the result document.

    ``query`` is a ``ServicePropertyQuery`` such as ``{"PropertyTypes": ["Basic"]}``; on
    failure the result may hold a ``ResultError``, which becomes part of the error.
    """
    from hcs_sandbox.native.strings import take_hcs_string

    out = ctypes.c_void_p(None)
    hr = native("computecore", "HcsGetServiceProperties")(dumps(query), ctypes.byref(out))
    text = take_hcs_string(out)
    check(
        int(hr),
        function="HcsGetServiceProperties",
        result_document=text,
        context="querying the Host Compute Service",
    )
    value = optional_json(text, function="HcsGetServiceProperties")
    return value if isinstance(value, dict) else {}


def supported_schema_versions() -> list[tuple[int, int]]:
    """The schema versions HCS supports, sorted: ``[(2, 1), (2, 2), ...]``.

    ``{"PropertyTypes": ["Basic"]}`` → ``{"Properties": [{"SupportedSchemaVersions":
    [{"Major": 2, "Minor": N}, ...]}]}`` (HcsGetServiceProperties.md sample; hcsshim
    ``internal/hcs/service.go``; ``BasicInformation`` in SchemaReference.md).
    """
    document = service_properties({"PropertyTypes": ["Basic"]})
    versions: set[tuple[int, int]] = set()
    properties = document.get("Properties")
    if not isinstance(properties, list):
        raise errors.HcsError(
            "HcsGetServiceProperties returned no 'Properties' list for the Basic query",
            hresult=errors.ERROR_INVALID_DATA_HR,
            function="HcsGetServiceProperties",
            remedy="this host's HCS answered in an unknown format; please report it",
        )
    for item in properties:
        if not isinstance(item, Mapping):
            continue
        for version in item.get("SupportedSchemaVersions") or []:
            if not isinstance(version, Mapping):
                continue
            major, minor = version.get("Major"), version.get("Minor")
            if isinstance(major, int) and isinstance(minor, int):
                versions.add((major, minor))
    return sorted(versions)


def _path_call(function: str, args: tuple[str, ...], doing: str) -> None:
    """``function(*args)``; on failure the error's context is ``doing.format(*args)`` (built
    only then: these calls run several times per sandbox and almost never fail)."""
    hr = native("computecore", function)(*args)
    if hr & 0x80000000:  # FAILED(hr) (check() masks the signed value the same way)
        check(hr, function=function, context=doing.format(*args))


def grant_vm_access(vm_id: str, path: PathLike) -> None:
    """``HcsGrantVmAccess(vmId, filePath)``: let the VM worker of ``vm_id`` open ``path``."""
    _path_call("HcsGrantVmAccess", (vm_id, os.fspath(path)), "granting {0!r} access to {1}")


def revoke_vm_access(vm_id: str, path: PathLike) -> None:
    """``HcsRevokeVmAccess(vmId, filePath)``."""
    _path_call("HcsRevokeVmAccess", (vm_id, os.fspath(path)), "revoking {0!r} access to {1}")


def grant_vm_group_access(path: PathLike) -> None:
    """``HcsGrantVmGroupAccess(filePath)``: read access for the "Virtual Machines" group
    (Windows 10 2004 / Server 2022 and later)."""
    _path_call("HcsGrantVmGroupAccess", (os.fspath(path),), "granting VM group access to {0}")


def revoke_vm_group_access(path: PathLike) -> None:
    """``HcsRevokeVmGroupAccess(filePath)``."""
    _path_call("HcsRevokeVmGroupAccess", (os.fspath(path),), "revoking VM group access to {0}")


def create_empty_guest_state_file(path: PathLike) -> None:
    """``HcsCreateEmptyGuestStateFile(guestStateFilePath)`` (a ``.vmgs``)."""
    _path_call("HcsCreateEmptyGuestStateFile", (os.fspath(path),), "creating guest state file {0}")


def create_empty_runtime_state_file(path: PathLike) -> None:
    """``HcsCreateEmptyRuntimeStateFile(runtimeStateFilePath)`` (a ``.vmrs`` save target)."""
    _path_call(
        "HcsCreateEmptyRuntimeStateFile", (os.fspath(path),), "creating runtime state file {0}"
    )
