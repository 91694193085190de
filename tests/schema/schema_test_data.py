"""Loading the copied Microsoft/hcsshim schema files for tests/schema (see tests/data/schema)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data" / "schema"


@cache
def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def swagger() -> dict[str, Any]:
    """``definitions`` of HCS_Schema-Windows_11_SDK_21H2.json."""
    defs: dict[str, Any] = load("HCS_Schema-Windows_11_SDK_21H2.json")["definitions"]
    return defs


def shim_types() -> dict[str, dict[str, str]]:
    """``types`` of hcs-schema.json (Microsoft's schema + hcsshim's schema2 extras)."""
    types: dict[str, dict[str, str]] = load("hcs-schema.json")["types"]
    return types


def hns_types() -> dict[str, list[str]]:
    """HNS_Schema.md field names per HCN type."""
    types: dict[str, list[str]] = load("hns-schema-fields.json")["types"]
    return types
