"""What ``Sandbox.create`` gives HCS: the planner's document, as text when the planner's
template had it (``PlanDocuments.document_json``), the very text the dict makes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hcs_sandbox.hcs.system import ComputeSystem
from hcs_sandbox.sandbox import planner
from hcs_sandbox.sandbox import sandbox as sandbox_module
from hcs_sandbox.sandbox.planner import PlanDocuments
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec


@pytest.mark.parametrize("network", ["none", "nat"])
def test_hcs_gets_the_planned_document(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, network: str
) -> None:
    planner._documents_cache.clear()
    planned: list[tuple[PlanDocuments, str | None]] = []
    given: list[Any] = []
    real_blueprint = sandbox_module._blueprint
    real_create = ComputeSystem.create.__func__  # type: ignore[attr-defined]

    def blueprint(*args: Any, **kwargs: Any) -> PlanDocuments:
        bp = real_blueprint(*args, **kwargs)
        planned.append((bp, bp.document_json))  # the text as planned
        return bp

    def create(cls: type[ComputeSystem], system_id: str, document: Any, **kw: Any) -> Any:
        given.append(document)
        return real_create(cls, system_id, document, **kw)

    monkeypatch.setattr(sandbox_module, "_blueprint", blueprint)
    monkeypatch.setattr(ComputeSystem, "create", classmethod(create))
    for i in range(3):
        sb = Sandbox.create(SandboxSpec(name=f"doc{i}", network=network), state_dir=tmp_path)
        sb.remove(force=True)
        sb.close()
    assert [text is not None for _, text in planned] == [False, True, True]
    for (bp, text), document in zip(planned, given, strict=True):
        if network == "nat":  # the adapter's MAC goes in: a new dict
            assert isinstance(document, dict)
            assert document["VirtualMachine"]["Devices"]["NetworkAdapters"]
            continue
        if text is None:
            assert document is bp.document
        else:
            assert document == text
            assert document == json.dumps(bp.document, separators=(",", ":"))
