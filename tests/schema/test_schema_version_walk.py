"""required_schema_version / fields_newer_than (fast walk without paths) agree with the
definition in terms of set_fields, on every golden planner document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hcs_sandbox.schema._base import (
    VersionTuple,
    fields_newer_than,
    required_schema_version,
    set_fields,
)
from hcs_sandbox.schema.compute import ComputeSystem

GOLDEN = sorted((Path(__file__).parent.parent / "data" / "golden").glob("*.json"))


def _by_definition(model: ComputeSystem, version: VersionTuple) -> list[str]:
    return [p for p, info in set_fields(model) if info.since is not None and info.since > version]


def _required_by_definition(model: ComputeSystem) -> VersionTuple:
    best: VersionTuple = (2, 0)
    for _path, info in set_fields(model):
        if info.since is not None and info.since > best:
            best = info.since
    return best


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_fast_walk_matches_definition(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    document = data["compute_system"]
    model = ComputeSystem.from_dict(document, lenient=True)
    assert required_schema_version(model) == _required_by_definition(model)
    for version in [(1, 0), (2, 0), (2, 1), (2, 3), (2, 5), (9, 9)]:
        assert fields_newer_than(model, version) == _by_definition(model, version)


def test_golden_documents_exist() -> None:
    assert len(GOLDEN) >= 5
    newest = max(
        required_schema_version(
            ComputeSystem.from_dict(
                json.loads(p.read_text(encoding="utf-8"))["compute_system"], lenient=True
            )
        )
        for p in GOLDEN
    )
    assert newest > (2, 0)  # the walk finds versioned fields at all
