"""``errors.error_from_hresult`` builds only what the message needs (round 8): the same
errors as the factory before that change, which is kept here as the reference."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.errors import (
    _BY_NAME,
    _REMEDIES,
    FACILITY_HCN,
    HcnError,
    HcsError,
    _facility,
    _result_error_message,
    error_from_hresult,
    hresult_name,
    normalize_hresult,
    parse_result_document,
    win32_error,
)


def _reference(
    hr: int,
    *,
    function: str | None = None,
    result_document: str | Mapping[str, Any] | None = None,
    context: str | None = None,
    hcn: bool = False,
) -> HcsError:
    """The factory as it was at db75484 (round 7), verbatim."""
    hr = normalize_hresult(hr)
    if isinstance(result_document, Mapping):
        result_error: Mapping[str, Any] | None = result_document
    else:
        result_error = parse_result_document(result_document)
    name = hresult_name(hr)
    facility = _facility(hr)
    cls: type[HcsError] = _BY_NAME.get(name or "", HcsError)
    if cls is HcsError and (hcn or facility == FACILITY_HCN):
        cls = HcnError
    detail = _result_error_message(result_error)
    label = f"{name} (0x{hr:08X})" if name else f"HRESULT 0x{hr:08X}"
    win32 = win32_error(hr)
    if name is None and win32 is not None:
        label = f"Win32 error {win32} (0x{hr:08X})"
    head = " ".join(p for p in (context, "failed:" if context else None) if p)
    where = f"{function}: " if function else ""
    message = f"{head + ' ' if head else ''}{where}{label}"
    if detail:
        message += f": {detail}"
    return cls(
        message,
        hresult=hr,
        function=function,
        result_error=result_error,
        remedy=_REMEDIES.get(name or ""),
    )


_HRESULTS = (
    0,
    1,
    errors.HCS_E_OPERATION_TIMEOUT,
    0x8037010E,  # HCS_E_SYSTEM_NOT_FOUND
    0xC037010E,  # the same code in its NTSTATUS-like form
    0x803B0001,  # an HCN code
    0x803BFFFF,  # an unknown HCN code
    0x80070005,  # E_ACCESSDENIED
    0x80070002,  # ERROR_FILE_NOT_FOUND as an HRESULT
    0x80071234,  # an unknown Win32 error
    0x80004005,  # E_FAIL
    0x8000FFFF,
    0x87654321,
    -2147024891,  # E_ACCESSDENIED as ctypes' signed int32
)
_DOCUMENTS: tuple[str | Mapping[str, Any] | None, ...] = (
    None,
    "",
    "not json",
    "[1, 2]",
    '{"ErrorMessage": "the disk is full"}',
    '{"ErrorMessage": "a", "ErrorEvents": [{"Message": "b"}, {"Message": "a"}, 3]}',
    {},
    {"ErrorMessage": "from a mapping"},
)


@pytest.mark.parametrize(
    ("hr", "document"), list(itertools.product(_HRESULTS, range(len(_DOCUMENTS))))
)
def test_error_factory_matches_the_reference(hr: int, document: int) -> None:
    doc = _DOCUMENTS[document]
    for context, function, hcn in itertools.product(
        (None, "", "starting sandbox 'web'"), (None, "", "HcsStartComputeSystem"), (False, True)
    ):
        got = error_from_hresult(
            hr, function=function, result_document=doc, context=context, hcn=hcn
        )
        want = _reference(hr, function=function, result_document=doc, context=context, hcn=hcn)
        assert type(got) is type(want)
        assert got.message == want.message
        assert str(got) == str(want)
        assert (got.hresult, got.name, got.function, got.remedy) == (
            want.hresult,
            want.name,
            want.function,
            want.remedy,
        )
        assert got.result_error == want.result_error


def test_not_found_message() -> None:
    """The error ``remove`` meets on its ordinary path (a system already gone)."""
    error = error_from_hresult(
        0x8037010E,
        function="HcsOpenComputeSystem",
        context="opening compute system 'x'",
    )
    assert isinstance(error, errors.NotFoundError)
    assert error.message.startswith(
        "opening compute system 'x' failed: HcsOpenComputeSystem: HCS_E_SYSTEM_NOT_FOUND"
    )
