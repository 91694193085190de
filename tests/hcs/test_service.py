"""Service queries, VM access grants and state files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.hcs import service


def test_supported_schema_versions() -> None:
    versions = service.supported_schema_versions()
    assert versions == sorted(versions)
    assert (2, 1) in versions
    assert all(major == 2 for major, _ in versions)


def test_service_properties_basic() -> None:
    props = service.service_properties({"PropertyTypes": ["Basic"]})
    assert isinstance(props["Properties"], list)


def test_service_properties_bad_query_has_result_error() -> None:
    with pytest.raises(errors.HcsError) as info:
        service.service_properties('{"PropertyTypes": 5}')
    assert info.value.function == "HcsGetServiceProperties"


def test_state_files_and_grants(tmp_path: Path) -> None:
    vmgs = tmp_path / "guest.vmgs"
    vmrs = tmp_path / "runtime.vmrs"
    service.create_empty_guest_state_file(vmgs)
    service.create_empty_runtime_state_file(vmrs)
    assert vmgs.exists()
    assert vmrs.exists()
    service.grant_vm_access("vm-1", vmgs)
    service.revoke_vm_access("vm-1", vmgs)


def test_grant_missing_file(tmp_path: Path) -> None:
    with pytest.raises(errors.NotFoundError, match="HcsGrantVmAccess"):
        service.grant_vm_access("vm-1", tmp_path / "missing.vhdx")


def exported(dll: str, name: str) -> bool:
    from hcs_sandbox.native.loader import NativeUnavailable, get_backend

    try:
        get_backend().resolve(dll, name)
    except NativeUnavailable:
        return False
    return True


def test_vm_group_access(tmp_path: Path) -> None:
    """HcsGrantVmGroupAccess is an optional export (Windows 10 2004+): either it works, or the
    call fails with the clear "unavailable" error naming it."""
    target = tmp_path / "f.vhdx"
    target.write_bytes(b"")
    if exported("computecore.dll", "HcsGrantVmGroupAccess"):
        service.grant_vm_group_access(target)
        service.revoke_vm_group_access(target)
    else:
        with pytest.raises(errors.HcsUnavailableError, match="HcsGrantVmGroupAccess"):
            service.grant_vm_group_access(target)


@pytest.mark.parametrize(
    ("call", "function", "context"),
    [
        (
            lambda p: service.grant_vm_access("vm-{1}", p),
            "HcsGrantVmAccess",
            "granting 'vm-{1}' access to {path}",
        ),
        (
            lambda p: service.revoke_vm_access("vm-1", p),
            "HcsRevokeVmAccess",
            "revoking 'vm-1' access to {path}",
        ),
        (
            service.create_empty_guest_state_file,
            "HcsCreateEmptyGuestStateFile",
            "creating guest state file {path}",
        ),
        (
            service.create_empty_runtime_state_file,
            "HcsCreateEmptyRuntimeStateFile",
            "creating runtime state file {path}",
        ),
    ],
)
def test_path_call_failure_names_what_was_done(
    tmp_path: Path, sim: Any, call: Any, function: str, context: str
) -> None:
    """The error context is built only on failure (the success path formats nothing): it is
    the same text as before, braces in the arguments kept as they are."""
    target = tmp_path / "a{0}b.vmgs"
    target.write_bytes(b"")
    sim.inject(function, hresult=0x80070005, where="call")  # E_ACCESSDENIED
    with pytest.raises(errors.HcsError) as info:
        call(target)
    assert info.value.function == function
    assert context.replace("{path}", str(target)) in str(info.value)
