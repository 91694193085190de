"""Review RV7a (minor): HCS errors a user meets on start/stop got no 'what to do'.
Review RV16 finding 2: no HCS error, failed remove or missing cp source goes without one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hcs_sandbox import Sandbox, SandboxSpec, errors


@pytest.mark.parametrize(
    "hresult",
    [
        0x80370105,  # HCS_E_INVALID_STATE
        0xC037010E,  # HCS_E_SYSTEM_NOT_FOUND
        0xC037010F,  # HCS_E_SYSTEM_ALREADY_EXISTS
        0x80370100,  # HCS_E_TERMINATED_DURING_START
        0x80370106,  # HCS_E_UNEXPECTED_EXIT
    ],
)
def test_common_hcs_errors_say_what_to_do(hresult: int) -> None:
    exc = errors.error_from_hresult(hresult, function="HcsStartComputeSystem")
    assert errors.hresult_name(hresult) in str(exc)
    assert exc.remedy
    assert "hcs-sandbox" in exc.remedy


# -- Review RV16 finding 2: every HCS error line says what to do ------------------------------


@pytest.mark.parametrize(
    "hresult",
    [
        0x80004005,  # E_FAIL
        0x8007000E,  # E_OUTOFMEMORY
        0x80370107,  # HCS_E_TERMINATED
        0x80071234,  # a Win32 error we have no name for
        0x87654321,  # an HRESULT we have no name for
        0x803B0001,  # HCN_E_NETWORK_NOT_FOUND
    ],
)
def test_hcs_errors_without_a_specific_remedy_get_the_generic_one(hresult: int) -> None:
    exc = errors.error_from_hresult(
        hresult,
        function="HcsCreateComputeSystem",
        result_document='{"ErrorMessage": "the host said why"}',
        context="creating compute system 'x'",
    )
    assert exc.remedy == errors.HCS_GENERIC_REMEDY
    assert errors.specific_remedy(exc) is None
    text = str(exc)
    # what failed, why (HCS's own ResultError text kept), what to do
    assert text.startswith("creating compute system 'x' failed: HcsCreateComputeSystem: ")
    assert "the host said why" in text
    assert text.endswith(f"({errors.HCS_GENERIC_REMEDY})")
    assert "hcs-sandbox doctor" in text


def test_an_hcs_error_built_directly_gets_a_remedy_and_a_specific_one_is_kept() -> None:
    bare = errors.HcsError("HcsX returned junk", hresult=0x8007000D, function="HcsX")
    assert bare.remedy == errors.HCS_GENERIC_REMEDY
    denied = errors.error_from_hresult(0x80070005, function="HcsStartComputeSystem")
    assert denied.remedy == errors.ACCESS_REMEDY
    assert errors.specific_remedy(denied) == errors.ACCESS_REMEDY
    assert denied.restated("starting 'web' failed").remedy == errors.HCS_GENERIC_REMEDY


def test_an_injected_create_fault_prints_a_remedy(tmp_path: Path) -> None:
    from hcs_sandbox.sim import get_simulator

    get_simulator().inject("HcsCreateComputeSystem", hresult=0x80004005)
    with pytest.raises(errors.HcsError) as info:
        Sandbox.create(SandboxSpec(name="f3"), state_dir=tmp_path)
    assert "E_FAIL (0x80004005)" in str(info.value)
    assert info.value.remedy == errors.HCS_GENERIC_REMEDY


@pytest.mark.parametrize(
    ("hresult", "specific"), [(0x80004005, None), (0x80070005, errors.ACCESS_REMEDY)]
)
def test_a_remove_that_stops_half_way_says_how_to_finish(
    tmp_path: Path, hresult: int, specific: str | None
) -> None:
    from hcs_sandbox.sim import get_simulator

    sb = Sandbox.create(SandboxSpec(name="i1"), state_dir=tmp_path)
    sb.start()
    get_simulator().inject("HcsTerminateComputeSystem", hresult=hresult)
    with pytest.raises(errors.HcsError) as info:
        sb.remove(force=True)
    exc = info.value
    assert type(exc) is type(errors.error_from_hresult(hresult))  # class (exit code) kept
    assert exc.hresult == hresult
    assert exc.message.startswith(
        "removing sandbox 'i1' stopped half way (it is left 'removing'): terminating compute "
    )
    assert exc.args == (exc.message,)
    finish = (
        "finish it with 'hcs-sandbox rm -f i1' (again) or, once this process has exited, "
        "'hcs-sandbox prune'"
    )
    assert exc.remedy == (f"{specific}; then {finish}" if specific else finish)
    again = Sandbox.get("i1", state_dir=tmp_path)
    assert again.record.state == "removing"
    again.remove(force=True)  # as the remedy says
    with pytest.raises(errors.SandboxNotFoundError):
        Sandbox.get("i1", state_dir=tmp_path)


def test_cp_of_a_missing_file_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with Sandbox.run(SandboxSpec(), state_dir=tmp_path / "state") as sb:
        with pytest.raises(errors.SpecError) as info:
            sb.copy_in("nosuchfile", "C:\\x")
        assert str(info.value) == (
            f"cannot copy nosuchfile: it does not exist (check the host path; a relative one "
            f"starts at {tmp_path})"
        )
        with pytest.raises(errors.SpecError) as info:
            sb.copy_in(str(tmp_path / "nosuchfile"), "C:\\x")
        assert info.value.remedy == "check the host path"
        with pytest.raises(errors.SpecError) as info:
            sb.copy_out("C:\\Users\\nosuch.txt", str(tmp_path))
        assert info.value.remedy == (
            f"check the guest path; list C:\\Users with: hcs-sandbox exec {sb.name} -- cmd /c "
            'dir "C:\\Users"'  # double quotes: cmd.exe passes single ones on (review RV41 #3)
        )


def test_a_guest_verb_on_a_sandbox_left_removing_says_how_to_finish(tmp_path: Path) -> None:
    from hcs_sandbox.sim import get_simulator

    sb = Sandbox.create(SandboxSpec(name="i2"), state_dir=tmp_path)
    sb.start()
    get_simulator().inject("HcsTerminateComputeSystem", hresult=0x80004005)
    with pytest.raises(errors.HcsError):
        sb.remove(force=True)
    left = Sandbox.get("i2", state_dir=tmp_path)
    with pytest.raises(errors.SandboxStateError) as info:
        left.exec(["cmd", "/c", "ver"], timeout=10)
    assert "hcs-sandbox rm -f i2" in str(info.value.remedy)
    assert "start it" not in str(info.value.remedy)
    left.remove(force=True)


# -- Review RV16 finding 13: the no-HCS remedy names the Python way too -----------------------


def test_no_hcs_remedy_names_use_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    from hcs_sandbox.native import loader

    monkeypatch.setattr(loader, "_backend", None)
    monkeypatch.setattr(loader.sys, "platform", "linux")
    monkeypatch.setattr(loader, "simulator_requested", lambda: False)
    with pytest.raises(loader.NativeUnavailable) as info:
        loader.get_backend()
    remedy: Any = info.value.remedy
    assert "hcs_sandbox.use_simulator()" in remedy
    assert "--simulator" in remedy
    assert "HCS_SANDBOX_SIMULATOR=1" in remedy


def test_doctor_keeps_its_own_fix_over_the_generic_remedy() -> None:
    """doctor's hcs check falls back to its platform fix when HCS gives no specific remedy
    (the generic one would send the user to doctor from doctor)."""
    from hcs_sandbox.sandbox import doctor
    from hcs_sandbox.sim import get_simulator

    get_simulator().inject("HcsGetServiceProperties", hresult=0x80004005)
    check, _ = doctor._check_hcs(True)
    assert check.fix == doctor.REMEDY_PLATFORM
    get_simulator().inject("HcsGetServiceProperties", hresult=0x80070005)
    check, _ = doctor._check_hcs(True)
    assert check.fix == errors.ACCESS_REMEDY


def test_spec_errors_carry_their_reason_alone() -> None:
    # ``invalid FIELD VALUE: REASON``: the reason is kept apart, so that the CLI can say the
    # same with the flag's name instead of parsing the message back.
    from hcs_sandbox.errors import SpecError
    from hcs_sandbox.sandbox.spec import SandboxSpec

    with pytest.raises(SpecError) as caught:
        SandboxSpec(memory_mb=-5)
    assert caught.value.reason is not None
    assert caught.value.message.endswith(": " + caught.value.reason)


# -- Session 10: an argument the host refused is not fixed by trying again --------------------


@pytest.mark.parametrize(
    ("hresult", "name"),
    [
        (0x80070057, "E_INVALIDARG"),
        (0x80004003, "E_POINTER"),
        (0x8037010D, "HCS_E_INVALID_JSON"),
        (0x803B001B, "HCN_E_INVALID_JSON"),
    ],
)
def test_refused_arguments_say_report_it_not_try_again(hresult: int, name: str) -> None:
    exc = errors.error_from_hresult(hresult, function="CreateVirtualDisk")
    assert errors.hresult_name(hresult) == name
    assert exc.remedy == errors.BUG_REMEDY
    assert "try again" not in str(exc)
    assert "hcs-sandbox doctor --deep" in str(exc)


def test_virtdisk_invalid_state_has_its_name() -> None:
    # winerror.h ERROR_VHD_INVALID_STATE (windows-sys metadata 3225026588 = 0xC03A001C):
    # the simulator's refusal of a second attach or a detach of a disk not attached.
    assert errors.hresult_name(0xC03A001C) == "ERROR_VHD_INVALID_STATE"
