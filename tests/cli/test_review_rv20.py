"""Review RV20 (the field kit): what ``doctor`` reports, and the inputs around it."""

from __future__ import annotations

import ctypes
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


# --- F8: the docs example's ResultError matches its HRESULT --------------------------------


def test_field_kit_example_result_error_matches_its_hresult() -> None:
    """HCS puts the HRESULT in ResultError's ``Error`` as a signed 32-bit number."""
    text = (ROOT / "docs" / "field-kit.md").read_text(encoding="utf-8")
    pairs = re.findall(
        r"HRESULT: \w+ (0x[0-9A-Fa-f]{8})\n\s*ResultError: \{'Error': (-?\d+)", text
    )
    assert pairs, "the field-kit example lost its HRESULT/ResultError lines"
    for hresult, error in pairs:
        assert ctypes.c_int32(int(hresult, 16)).value == int(error), (hresult, error)
