"""Review RV7a (minor): HCS errors a user meets on start/stop got no 'what to do'."""

from __future__ import annotations

import pytest

from hcs_sandbox import errors


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
