"""``planner.plan_documents``: the per-process template cache gives exactly what the
planner gives (``PlanDocuments.of(plan(spec, facts))``), for every input."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
from test_planner_golden import CASES  # the golden cases: every base kind and option

from hcs_sandbox.errors import SpecError
from hcs_sandbox.sandbox import planner
from hcs_sandbox.sandbox.planner import HostFacts, PlanDocuments, plan, plan_documents
from hcs_sandbox.sandbox.spec import BaseImage, MappedFolder, PortMapping, SandboxSpec

IDS = (
    "11111111-1111-4111-8111-111111111111",
    "22222222-2222-4222-8222-222222222222",
    "33333333-3333-4333-8333-333333333333",
)


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    planner._documents_cache.clear()
    yield
    planner._documents_cache.clear()


def _slow(spec: SandboxSpec, facts: HostFacts) -> PlanDocuments:
    return PlanDocuments.of(plan(spec, facts))


def _as_json(docs: PlanDocuments) -> str:
    return json.dumps(docs._values(), sort_keys=True)


def _for(facts: HostFacts, sid: str) -> HostFacts:
    """``facts`` for another sandbox: its ids and folder, as ``HostFacts.for_sandbox`` makes
    them, the rest unchanged."""
    other = HostFacts.for_sandbox(
        sandbox_id=sid,
        system_id=sid,
        sandbox_dir=(
            f"C:\\ProgramData\\hcs-sandbox\\sandboxes\\{sid}"
            if facts.path_style == "windows"
            else f"/var/lib/hcs-sandbox/sandboxes/{sid}"
        ),
        base_path=facts.base_path,
        supported_schema_versions=facts.supported_schema_versions,
        path_style=facts.path_style,
    )
    return dataclasses.replace(
        facts,
        sandbox_id=other.sandbox_id,
        system_id=other.system_id,
        sandbox_dir=other.sandbox_dir,
        endpoint_id=other.endpoint_id,
        adapter_id=other.adapter_id,
    )


def _check(spec: SandboxSpec, facts: HostFacts) -> PlanDocuments:
    """plan_documents == the slow path, for the call that fills the cache and for hits."""
    got = plan_documents(spec, facts)
    text = got.document_json
    want = _slow(spec, facts)
    assert got == want
    assert _as_json(got) == _as_json(want)
    if text is not None:  # a hit: the text HCS gets is the dict's, exactly
        assert text == json.dumps(want.document, separators=(",", ":"))
    return got


@pytest.mark.parametrize("name", sorted(CASES))
def test_equal_to_the_planner_for_every_golden_case(name: str) -> None:
    spec, facts = CASES[name]()
    _check(spec, facts)
    key = planner._documents_key(spec, facts)
    assert planner._documents_cache[key] is not None  # these plans are made from templates
    for sid in IDS:
        other = _for(facts, sid)
        assert planner._documents_key(spec, other) == key  # a hit
        assert plan_documents(spec, other).document_json is not None
        got = _check(spec, other)
        assert sid in _as_json(got)
    # Another name, labels or environment: the same documents.
    renamed = spec.replace(name="other-name", labels={"a": "b"}, environment={"X": "1"})
    assert planner._documents_key(renamed, facts) == key
    assert plan_documents(renamed, facts) == _slow(renamed, facts) == _slow(spec, facts)
    # Another logon command: the same documents; having one or not: its warning.
    first, second = spec.replace(logon_command="cmd"), spec.replace(logon_command="other")
    assert planner._documents_key(first, facts) == planner._documents_key(second, facts)
    assert (planner._documents_key(first, facts) == key) == (spec.logon_command is not None)
    assert plan_documents(first, facts) == _slow(first, facts)
    assert plan_documents(second, facts) == _slow(second, facts) == _slow(first, facts)
    assert "logon_command" in _slow(second, facts).warning_fields


def test_every_field_is_keyed_or_excluded_on_purpose() -> None:
    spec_fields = {f.name for f in dataclasses.fields(SandboxSpec)}
    assert set(planner._PLANNED) | set(planner._NOT_PLANNED) == spec_fields
    assert not set(planner._PLANNED) & set(planner._NOT_PLANNED)
    facts_fields = {f.name for f in dataclasses.fields(HostFacts)}
    assert set(planner._PER_SANDBOX) | set(planner._FACTS_KEYED) == facts_fields
    assert not set(planner._PER_SANDBOX) & set(planner._FACTS_KEYED)


NAT = SandboxSpec(network="nat", ports=(PortMapping(8080, 80),))
INET = SandboxSpec(network="internet-only", ports=(PortMapping(8443, 443),))
HOST = SandboxSpec()
IMAGE = BaseImage(kind="image", path="C:\\images\\ltsc2022")

# (what changes, the spec and facts before, the spec and facts after): every keyed input.
SPEC_CHANGES: list[tuple[str, SandboxSpec, dict[str, Any]]] = [
    ("base", HOST, {"base": IMAGE}),
    ("base.path", SandboxSpec(base=IMAGE), {"base": BaseImage("image", "C:\\other")}),
    ("memory_mb", HOST, {"memory_mb": 8192}),
    ("cpus", HOST, {"cpus": 4}),
    ("network", HOST, {"network": "nat"}),
    ("network-inet", NAT, {"network": "internet-only"}),
    ("ports", NAT, {"ports": (PortMapping(8081, 80),)}),
    ("ports-protocol", NAT, {"ports": (PortMapping(8080, 80, "udp"),)}),
    ("mapped_folders", HOST, {"mapped_folders": (MappedFolder("C:\\src", "C:\\work"),)}),
    (
        "mapped_folders.read_only",
        HOST.replace(mapped_folders=(MappedFolder("C:\\src", "C:\\work"),)),
        {"mapped_folders": (MappedFolder("C:\\src", "C:\\work", False),)},
    ),
    ("gpu", HOST, {"gpu": True}),
    ("clipboard", HOST, {"clipboard": True}),
    ("audio_input", HOST, {"audio_input": True}),
    ("video_input", HOST, {"video_input": True}),
    ("printer", HOST, {"printer": True}),
    ("protected_client", HOST, {"protected_client": True}),
    ("display", HOST, {"display": "desktop"}),
    ("persistence", HOST, {"persistence": "persistent"}),
]
FACT_CHANGES: list[tuple[str, SandboxSpec, dict[str, Any]]] = [
    ("base_path", HOST, {"base_path": "C:\\ProgramData\\Other"}),
    ("supported_schema_versions", HOST, {"supported_schema_versions": ((2, 1),)}),
    ("hcn_schema_version", INET, {"hcn_schema_version": (2, 5)}),
    ("mac_address", NAT, {"mac_address": "00-15-5D-52-C0-09"}),
    ("user_sid", HOST.replace(display="desktop"), {"user_sid": "S-1-5-21-1-2-3-1001"}),
    ("variant", HOST, {"variant": "wsb-compat"}),
    ("path_style", HOST, {"path_style": "posix"}),
    ("network_id", NAT, {"network_id": "6f1b5c3e-0000-4000-8000-000000000001"}),
    ("nat_subnet", NAT, {"nat_subnet": "172.31.0.0/24"}),
    ("nat_gateway", NAT, {"nat_gateway": "172.30.0.254"}),
    ("scratch_size_bytes", HOST, {"scratch_size_bytes": 10 * 1024**3}),
    ("terminate_on_close", HOST, {"terminate_on_close": True}),
]


@pytest.mark.parametrize(("what", "spec", "change"), SPEC_CHANGES, ids=[c[0] for c in SPEC_CHANGES])
def test_a_change_of_the_spec_changes_the_documents(
    what: str, spec: SandboxSpec, change: dict[str, Any]
) -> None:
    facts = HostFacts.for_planning(spec, sandbox_id=IDS[0])
    before = _check(spec, facts)
    changed = spec.replace(**change)
    facts2 = HostFacts.for_planning(changed, sandbox_id=IDS[1])
    after = _check(changed, facts2)  # not the cached template of ``spec``
    assert _as_json(after) != _as_json(before)
    assert _check(changed, _for(facts2, IDS[2])) != _check(spec, _for(facts, IDS[2]))


@pytest.mark.parametrize(("what", "spec", "change"), FACT_CHANGES, ids=[c[0] for c in FACT_CHANGES])
def test_a_change_of_the_host_facts_changes_the_documents(
    what: str, spec: SandboxSpec, change: dict[str, Any]
) -> None:
    assert what in planner._FACTS_KEYED
    facts = HostFacts.for_planning(spec, sandbox_id=IDS[0])
    before = _check(spec, facts)
    changed = dataclasses.replace(facts, **change)
    after = _check(changed and spec, changed)
    assert _as_json(after) != _as_json(before)


def test_covers_every_keyed_input() -> None:
    named = {c[0].split("-")[0].split(".")[0] for c in SPEC_CHANGES}
    assert named == set(planner._PLANNED)
    assert {c[0] for c in FACT_CHANGES} == set(planner._FACTS_KEYED)


def test_results_are_new_objects_each_time() -> None:
    spec = NAT
    facts = HostFacts.for_planning(spec, sandbox_id=IDS[0])
    first = plan_documents(spec, facts)
    first.document["VirtualMachine"]["Devices"].clear()
    assert first.network_document is not None
    first.network_document.clear()
    again = plan_documents(spec, facts)
    assert again == _slow(spec, facts)
    third = plan_documents(spec, facts)
    assert third.document is not again.document
    assert third == again


def test_with_adapter_mac_equals_the_plans() -> None:
    for spec in (NAT, INET, NAT.replace(base=IMAGE)):
        for sid in IDS:
            facts = HostFacts.for_planning(spec, sandbox_id=sid)
            docs = plan_documents(spec, facts)
            before = json.dumps(docs.document)
            for mac in ("00-15-5d-52-c0-0a", "00:15:5D:52:C0:0B"):
                want = plan(spec, facts).with_adapter_mac(mac).document
                got = docs.with_adapter_mac(mac)
                assert json.dumps(got) == json.dumps(want)
            assert json.dumps(docs.document) == before  # unchanged
            with pytest.raises(SpecError, match="not a MAC"):
                docs.with_adapter_mac("nope")
    docs = plan_documents(HOST, HostFacts.for_planning(HOST))
    with pytest.raises(SpecError, match="no network endpoint"):
        docs.with_adapter_mac("00-15-5D-52-C0-0A")


def test_marker_text_in_the_users_values_is_planned_the_slow_way() -> None:
    spec = SandboxSpec(
        mapped_folders=(MappedFolder(f"C:\\{planner._MARK}1@@", "C:\\work"),),
    )
    facts = HostFacts.for_planning(spec, sandbox_id=IDS[0])
    _check(spec, facts)
    assert planner._documents_cache[planner._documents_key(spec, facts)] is None
    _check(spec, _for(facts, IDS[1]))


def test_per_sandbox_values_are_put_in_verbatim() -> None:
    spec = NAT.replace(display="desktop")
    facts = HostFacts.for_planning(spec, sandbox_id=IDS[0])
    _check(spec, facts)
    odd = dataclasses.replace(
        facts,
        sandbox_id=f"{planner._MARK}0@@",
        system_id='quote " and \\ backslash \u00e9',
        sandbox_dir=f"C:\\{planner._MARK}2@@\\x",
        endpoint_id="\u2603",
    )
    _check(spec, odd)
    got = plan_documents(spec, odd)
    assert got.endpoint_id == "\u2603"


@pytest.mark.parametrize(
    ("style", "directory"),
    [
        ("windows", "C:\\state\\sandboxes\\x\\"),
        ("windows", "C:"),
        ("windows", "C:/state/x/"),
        ("windows", "\\\\server\\share"),
        ("windows", ""),
        ("posix", "/state/x/"),
        ("posix", "/"),
        ("posix", "a:"),
    ],
)
def test_folders_of_every_shape(style: str, directory: str) -> None:
    spec = SandboxSpec(base=IMAGE)
    facts = HostFacts.for_planning(spec, sandbox_id=IDS[0], path_style=style)
    _check(spec, facts)  # a usual folder first: its template is cached
    _check(spec, dataclasses.replace(facts, sandbox_dir=directory))
    _check(spec, dataclasses.replace(facts, sandbox_dir=directory + "y"))


def test_ids_that_coincide_or_are_missing() -> None:
    spec = NAT
    facts = HostFacts.for_planning(spec, sandbox_id=IDS[0])
    _check(spec, facts)
    _check(spec, dataclasses.replace(facts, system_id=IDS[1]))
    _check(spec, dataclasses.replace(facts, adapter_id=None))
    _check(spec, dataclasses.replace(facts, adapter_id=facts.endpoint_id))
    with pytest.raises(SpecError, match="endpoint id"):
        plan_documents(spec, dataclasses.replace(facts, endpoint_id=None))
    with pytest.raises(SpecError, match="endpoint id"):
        plan_documents(spec, dataclasses.replace(facts, endpoint_id=""))


def test_errors_are_the_planners_and_never_cached() -> None:
    spec = HOST.replace(display="desktop")
    facts = HostFacts.for_planning(spec, sandbox_id=IDS[0], user_sid=None)
    for _ in range(2):
        with pytest.raises(SpecError, match="SID"):
            plan_documents(spec, facts)
    assert not planner._documents_cache


def test_the_cache_is_bounded() -> None:
    for memory in range(1024, 1024 + 2 * planner._CACHE_MAX * 2, 2):
        spec = SandboxSpec(memory_mb=memory)
        _check(spec, HostFacts.for_planning(spec))
        assert len(planner._documents_cache) <= planner._CACHE_MAX


def test_uuid5_helpers_equal_the_uuid_module() -> None:
    import uuid

    namespace = uuid.UUID("00000000-0000-4000-8000-68637373616e")
    for name in ("", "x", *IDS, "\u00e9\u2603 long " * 20):
        want = uuid.uuid5(namespace, name)
        assert planner._uuid5_bytes(namespace.bytes, name) == want.bytes
        assert planner._uuid5_text(namespace.bytes, name) == str(want)
        again = uuid.uuid5(want, "endpoint")
        assert planner._uuid5_text(want.bytes, "endpoint") == str(again)
    # HostFacts.for_sandbox's ids are the documented UUIDv5 derivations of the sandbox id.
    facts = HostFacts.for_sandbox(
        sandbox_id=IDS[0],
        system_id=IDS[0],
        sandbox_dir="/s",
        base_path="/b",
        supported_schema_versions=[(2, 1)],
        path_style="posix",
    )
    ns = uuid.uuid5(namespace, IDS[0])
    assert facts.endpoint_id == str(uuid.uuid5(ns, "endpoint"))
    assert facts.adapter_id == str(uuid.uuid5(ns, "adapter"))


def test_unhashable_facts_are_planned_without_the_cache() -> None:
    spec = INET
    facts = dataclasses.replace(
        HostFacts.for_planning(spec, sandbox_id=IDS[0]),
        hcn_schema_version=[2, 5],  # type: ignore[arg-type]
    )
    _check(spec, facts)
    assert not planner._documents_cache


@pytest.mark.parametrize(
    ("field", "first", "second"),
    [("terminate_on_close", False, 0), ("scratch_size_bytes", 1 << 30, float(1 << 30))],
)
def test_equal_values_of_another_type_are_another_key(field: str, first: Any, second: Any) -> None:
    spec, facts = CASES["vhdx"]()
    plan_documents(spec, dataclasses.replace(facts, **{field: first}))
    other = dataclasses.replace(facts, **{field: second})
    assert _as_json(plan_documents(spec, other)) == _as_json(_slow(spec, other))
    assert len(planner._documents_cache) == 2


def test_a_folder_that_is_not_text_is_planned_without_the_cache() -> None:
    import pathlib

    spec, facts = CASES["vhdx"]()
    other = dataclasses.replace(facts, sandbox_dir=pathlib.PureWindowsPath(facts.sandbox_dir))
    assert _as_json(plan_documents(spec, other)) == _as_json(_slow(spec, other))
    assert not planner._documents_cache


def test_a_hit_parses_the_document_on_first_use() -> None:
    """A template hit keeps the compute-system document as text (what HCS is given) and
    parses it only when asked: the same dict as the planner's, kept once parsed."""
    spec, facts = CASES[sorted(CASES)[0]]()
    plan_documents(spec, facts)  # fills the cache
    other = _for(facts, IDS[0])
    got = plan_documents(spec, other)
    text = got.document_json
    assert text is not None
    assert got._document is None
    document = got.document
    assert document == _slow(spec, other).document
    assert got.document is document
    assert json.dumps(document, separators=(",", ":")) == text
    # Whoever has read the dict may change it: the text is no longer offered.
    assert got.document_json is None
    again = plan_documents(spec, other)
    again.document = {"changed": True}
    assert again.document_json is None
    assert again.document == {"changed": True}
    with pytest.raises(TypeError):
        PlanDocuments._from_values([None, *_slow(spec, other)._values()[1:]])
