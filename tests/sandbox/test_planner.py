"""The planner: properties over random specs, version gating, security defaults, errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hcs_sandbox.errors import SpecError
from hcs_sandbox.sandbox.planner import (
    NAT_NETWORK_NAME,
    OWNER,
    VSMB_GUEST_PREFIX,
    HostFacts,
    Plan,
    normalise_mac,
    plan,
)
from hcs_sandbox.sandbox.spec import BaseImage, MappedFolder, PortMapping, SandboxSpec
from hcs_sandbox.schema import (
    ComputeSystem,
    HostComputeEndpoint,
    HostComputeNetwork,
    fields_newer_than,
    undocumented_fields,
    unknown_keys,
)

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "data" / "schema"
_HCS = json.loads((SCHEMA_DIR / "hcs-schema.json").read_text(encoding="utf-8"))
_HNS = json.loads((SCHEMA_DIR / "hns-schema-fields.json").read_text(encoding="utf-8"))["types"]


def _unknown_in_hcs_schema(value: Any, go_type: str, path: str = "") -> list[str]:
    """Keys of ``value`` that Microsoft's / hcsshim's schema (tests/data copy) does not know."""
    go_type = go_type.lstrip("*")
    go_type = _HCS["aliases"].get(go_type, go_type)
    if go_type.startswith("[]"):
        return [
            p
            for i, v in enumerate(value)
            for p in _unknown_in_hcs_schema(v, go_type[2:], f"{path}[{i}]")
        ]
    if go_type.startswith("map[string]"):
        return [
            p
            for k, v in value.items()
            for p in _unknown_in_hcs_schema(v, go_type[len("map[string]") :], f"{path}[{k}]")
        ]
    fields = _HCS["types"].get(go_type)
    if fields is None or not isinstance(value, dict):
        return []
    out: list[str] = []
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        if key not in fields:
            out.append(where)
        else:
            out.extend(_unknown_in_hcs_schema(item, fields[key], where))
    return out


# --------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------

_guest_dirs = st.sampled_from(["C:\\work", "C:\\data", "D:\\out", "C:\\Users\\x\\y", "C:\\tools"])
_host_dirs = st.sampled_from(["C:\\src", "D:\\data", "C:\\Program Files\\x", "E:\\a b"])


@st.composite
def specs(draw: st.DrawFn) -> SandboxSpec:
    kind = draw(st.sampled_from(["host", "image", "vhdx"]))
    base = {
        "host": BaseImage(),
        "image": BaseImage("image", "C:\\images\\ltsc2022"),
        "vhdx": BaseImage("vhdx", "C:\\vms\\disk.vhdx"),
    }[kind]
    network = draw(st.sampled_from(["none", "nat", "internet-only"]))
    ports: list[PortMapping] = []
    if network != "none":
        for host_port in draw(st.sets(st.integers(1, 65535), max_size=3)):
            ports.append(
                PortMapping(
                    host_port,
                    draw(st.integers(1, 65535)),
                    draw(st.sampled_from(["tcp", "udp"])),
                )
            )
    guests = draw(st.lists(_guest_dirs, unique=True, max_size=3))
    folders = [MappedFolder(draw(_host_dirs), g, draw(st.booleans())) for g in guests]
    return SandboxSpec(
        name=draw(st.one_of(st.none(), st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True))),
        base=base,
        memory_mb=draw(st.integers(1024, 65536)),
        cpus=draw(st.integers(1, 64)),
        network=network,  # type: ignore[arg-type]
        ports=tuple(ports),
        mapped_folders=tuple(folders),
        logon_command=draw(st.one_of(st.none(), st.just("cmd /c ver"))),
        gpu=draw(st.booleans()),
        clipboard=draw(st.booleans()),
        audio_input=draw(st.booleans()),
        video_input=draw(st.booleans()),
        printer=draw(st.booleans()),
        display=draw(st.sampled_from(["headless", "desktop"])),
        persistence=draw(st.sampled_from(["ephemeral", "persistent"])),
    )


_schemas = st.sampled_from([(2, 1), (2, 2), (2, 3), (2, 4), (2, 5), (2, 6)])


def _check_plan(p: Plan, top: tuple[int, int]) -> None:
    spec, doc = p.spec, p.document
    # Every key is a field the schema models know, and the document round-trips.
    assert unknown_keys(doc, ComputeSystem) == []
    assert ComputeSystem.from_dict(doc).to_dict() == doc
    # Never a field newer than the host's highest schema; the declared version fits.
    assert fields_newer_than(p.compute_system, top) == []
    assert p.schema_version <= top
    assert (doc["SchemaVersion"]["Major"], doc["SchemaVersion"]["Minor"]) == p.schema_version
    if p.facts.variant == "documented" or spec.base.kind != "host":
        assert undocumented_fields(p.compute_system) == []
        assert _unknown_in_hcs_schema(doc, "ComputeSystem") == []
        from hcs_sandbox.sim.validate import validate_hcs

        validate_hcs(doc, "ComputeSystem", top)
    vm = doc["VirtualMachine"]
    devices = vm["Devices"]
    assert doc["Owner"] == OWNER
    assert "GuestConnection" in vm
    assert "GuestCrashReporting" not in devices
    # Network: an adapter iff a network; the endpoint's id is the adapter's.
    if spec.network == "none":
        assert "NetworkAdapters" not in devices
        assert p.network is None
        assert p.endpoint is None
    else:
        assert p.network_document is not None
        assert p.endpoint_document is not None
        assert unknown_keys(p.network_document, HostComputeNetwork) == []
        assert unknown_keys(p.endpoint_document, HostComputeEndpoint) == []
        assert set(p.network_document) <= set(_HNS["HostComputeNetwork"])
        assert set(p.endpoint_document) <= set(_HNS["HostComputeEndpoint"])
        (adapter,) = devices["NetworkAdapters"].values()
        assert adapter["EndpointId"] == p.endpoint_document["ID"]
        # No MAC is planned: HNS assigns one from the MacPool; with_adapter_mac puts it in.
        assert "MacAddress" not in adapter
        assert "MacAddress" not in p.endpoint_document
        bound = p.with_adapter_mac("00-15-5d-52-c0-07")
        (bound_adapter,) = bound.document["VirtualMachine"]["Devices"]["NetworkAdapters"].values()
        assert bound_adapter == {**adapter, "MacAddress": "00-15-5D-52-C0-07"}
        assert bound.compute_system.to_dict() == bound.document
        assert "MacAddress" not in adapter  # the original plan is untouched
        assert bound.schema_version == p.schema_version
        assert bound.endpoint_document == p.endpoint_document
        if p.facts.variant == "documented" or spec.base.kind != "host":
            from hcs_sandbox.sim.validate import validate_hcs

            validate_hcs(bound.document, "ComputeSystem", top)
        assert p.network_document["Name"] == NAT_NETWORK_NAME
        maps = [
            pol["Settings"]
            for pol in p.endpoint_document.get("Policies", [])
            if pol["Type"] == "PortMapping"
        ]
        assert len(maps) == len(spec.ports)
        acls = [pol for pol in p.endpoint_document.get("Policies", []) if pol["Type"] == "ACL"]
        assert bool(acls) == (spec.network == "internet-only")
    # Display: both pipes iff desktop, each limited to the user's SID.
    if spec.display == "desktop":
        for key in ("VideoMonitor", "EnhancedModeVideo"):
            options = devices[key]["ConnectionOptions"]
            assert options["AccessSids"] == [p.facts.user_sid]
            assert options["NamedPipe"].startswith("\\\\.\\pipe\\")
    else:
        assert "VideoMonitor" not in devices
        assert "EnhancedModeVideo" not in devices
        assert "Keyboard" not in devices
        assert "Mouse" not in devices
    # Mapped folders: one share each, read-only exactly when asked.
    shares = {s["Name"]: s for s in devices.get("VirtualSmb", {}).get("Shares", [])}
    assert len(p.guest_links) == len(spec.mapped_folders)
    for link, folder in zip(p.guest_links, spec.mapped_folders, strict=True):
        share = shares[link.share]
        assert share["Path"] == folder.host_path
        assert bool(share["Options"].get("ReadOnly")) == folder.read_only
        assert link.guest_share_path == VSMB_GUEST_PREFIX + link.share
    # Files: the scratch disk is attached and granted.
    assert p.scratch is not None
    assert p.scratch.path in p.grants
    attached = [a["Path"] for c in devices["Scsi"].values() for a in c["Attachments"].values()]
    assert attached == [p.scratch.path]
    if spec.base.kind == "vhdx":
        assert p.scratch.method == "differencing"
        assert p.scratch.parent == spec.base.path
        assert p.scratch.size_bytes == 0  # the parent's size: MaximumSize 0 with a ParentPath
        assert spec.base.path in p.grants
    if spec.persistence == "persistent":
        assert doc["ShouldTerminateOnLastHandleClosed"] is False
    for sentence in spec.loosened_isolation():
        assert sentence in p.warnings


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=specs(),
    top=_schemas,
    variant=st.sampled_from(["documented", "wsb-compat"]),
    tie=st.booleans(),
)
def test_random_specs_give_known_fields_only(
    spec: SandboxSpec, top: tuple[int, int], variant: str, tie: bool
) -> None:
    versions = [(2, m) for m in range(1, top[1] + 1)]
    facts = HostFacts.for_planning(
        spec,
        variant=variant,  # type: ignore[arg-type]
        supported_schema_versions=versions,
        terminate_on_close=tie,
    )
    if variant == "wsb-compat" and spec.base.kind == "host" and top < (2, 4):
        with pytest.raises(SpecError, match=r"2\.4"):
            plan(spec, facts)
        return
    _check_plan(plan(spec, facts), top)


# --------------------------------------------------------------------------------------
# Version gating
# --------------------------------------------------------------------------------------

EVERYTHING = SandboxSpec(
    name="all",
    network="internet-only",
    ports=(PortMapping(8080, 80),),
    mapped_folders=(MappedFolder("C:\\src", "C:\\work", False),),
    display="desktop",
    gpu=True,
    clipboard=True,
)


@pytest.mark.parametrize("kind", ["host", "image", "vhdx"])
def test_host_with_only_2_1_gets_no_newer_field(kind: str) -> None:
    base = {
        "host": BaseImage(),
        "image": BaseImage("image", "C:\\img"),
        "vhdx": BaseImage("vhdx", "C:\\d.vhdx"),
    }[kind]
    spec = EVERYTHING.replace(base=base)
    p = plan(spec, HostFacts.for_planning(spec, supported_schema_versions=[(2, 1)]))
    assert p.schema_version == (2, 1)
    assert fields_newer_than(p.compute_system, (2, 1)) == []
    assert "SupportCloudFiles" not in json.dumps(p.document)


def test_newer_host_gets_the_2_3_share_option() -> None:
    spec = SandboxSpec()
    p = plan(spec, HostFacts.for_planning(spec, supported_schema_versions=[(2, 1), (2, 3)]))
    assert p.schema_version == (2, 3)
    os_share = p.document["VirtualMachine"]["Devices"]["VirtualSmb"]["Shares"][0]
    assert os_share["Options"]["SupportCloudFiles"] is True


def test_wsb_compat_needs_2_4() -> None:
    spec = SandboxSpec()
    facts = HostFacts.for_planning(
        spec, variant="wsb-compat", supported_schema_versions=[(2, 1), (2, 3)]
    )
    with pytest.raises(SpecError, match=r"schema 2\.4.*20348.*up to 2\.3"):
        plan(spec, facts)


def test_wsb_compat_is_marked_experimental() -> None:
    spec = SandboxSpec()
    p = plan(spec, HostFacts.for_planning(spec, variant="wsb-compat"))
    assert p.schema_version == (2, 4)
    assert undocumented_fields(p.compute_system)
    assert any("experimental" in w and "RunInSilo" in w for w in p.warnings)
    vm = p.document["VirtualMachine"]
    assert vm["RunInSilo"]["SiloBaseOsPath"].endswith("BaseLayer\\Files")
    assert vm["ComputeTopology"]["Memory"]["SharedMemoryAccessSids"] == [p.facts.user_sid]


def test_host_older_than_2_1_is_refused() -> None:
    spec = SandboxSpec()
    with pytest.raises(SpecError, match=r"needs 2\.1"):
        plan(spec, HostFacts.for_planning(spec, supported_schema_versions=[(2, 0)]))


def test_internet_only_with_an_old_hcn_is_refused() -> None:
    spec = SandboxSpec(network="internet-only")
    with pytest.raises(SpecError, match=r"internet-only.*HCN schema 2\.5"):
        plan(spec, HostFacts.for_planning(spec, hcn_schema_version=(2, 0)))
    ok = plan(spec, HostFacts.for_planning(spec, hcn_schema_version=(2, 16)))
    assert ok.endpoint_document is not None


# --------------------------------------------------------------------------------------
# Defaults and choices
# --------------------------------------------------------------------------------------


def test_default_spec_is_tight() -> None:
    spec = SandboxSpec()
    p = plan(spec, HostFacts.for_planning(spec))
    devices = p.document["VirtualMachine"]["Devices"]
    assert set(devices) == {"Scsi", "HvSocket", "VirtualSmb"}
    assert devices["HvSocket"]["HvSocketConfig"] == {
        "DefaultBindSecurityDescriptor": "D:P(A;;FA;;;SY)",
        "DefaultConnectSecurityDescriptor": "D:P(A;;FA;;;SY)",
    }
    assert p.document["ShouldTerminateOnLastHandleClosed"] is False
    assert p.warnings == ()
    assert p.session.to_dict() == {
        "clipboard": False,
        "audio_input": False,
        "video_input": False,
        "printer": False,
        "protected_client": False,
    }
    assert p.gpu_request is None


def test_terminate_on_close_only_for_ephemeral() -> None:
    spec = SandboxSpec()
    tied = plan(spec, HostFacts.for_planning(spec, terminate_on_close=True))
    assert tied.document["ShouldTerminateOnLastHandleClosed"] is True
    kept = spec.replace(persistence="persistent")
    p = plan(kept, HostFacts.for_planning(kept, terminate_on_close=True))
    assert p.document["ShouldTerminateOnLastHandleClosed"] is False


def test_memory_is_rounded_to_even_with_a_warning() -> None:
    spec = SandboxSpec(memory_mb=4097)
    p = plan(spec, HostFacts.for_planning(spec))
    assert p.document["VirtualMachine"]["ComputeTopology"]["Memory"]["SizeInMB"] == 4098
    assert any("rounded up to 4098" in w for w in p.warnings)


def test_image_base_follows_hcsshim() -> None:
    spec = SandboxSpec(base=BaseImage("image", "C:\\img"))
    p = plan(spec, HostFacts.for_planning(spec))
    assert p.scratch is not None
    assert p.scratch.method == "copy"
    assert p.scratch.parent == "C:\\img\\UtilityVM\\SystemTemplate.vhdx"
    vm = p.document["VirtualMachine"]
    assert vm["Chipset"]["Uefi"]["BootThis"]["DeviceType"] == "VmbFs"
    os_share = vm["Devices"]["VirtualSmb"]["Shares"][0]
    assert os_share["Name"] == "os"
    assert os_share["Path"] == "C:\\img\\UtilityVM\\Files"
    assert vm["GuestConnection"] == {}
    assert p.guest_state_file is None


def test_vhdx_base_follows_the_tutorial() -> None:
    spec = SandboxSpec(base=BaseImage("vhdx", "C:\\d.vhdx"))
    p = plan(spec, HostFacts.for_planning(spec))
    boot = p.document["VirtualMachine"]["Chipset"]["Uefi"]["BootThis"]
    assert boot == {"DeviceType": "ScsiDrive", "DevicePath": "Primary disk", "DiskNumber": 0}
    assert "Primary disk" in p.document["VirtualMachine"]["Devices"]["Scsi"]
    assert "VirtualSmb" not in p.document["VirtualMachine"]["Devices"]


def test_posix_paths_for_the_simulator() -> None:
    spec = SandboxSpec(base=BaseImage("image", "/images/x"))
    facts = HostFacts.for_planning(spec, path_style="posix", sandbox_dir="/state/sb/1")
    p = plan(spec, facts)
    assert p.scratch is not None
    assert p.scratch.path == "/state/sb/1/sandbox.vhdx"
    assert p.scratch.parent == "/images/x/UtilityVM/SystemTemplate.vhdx"
    assert p.warnings == ()


def test_foreign_path_style_is_warned() -> None:
    spec = SandboxSpec(mapped_folders=(MappedFolder("/srv/data", "C:\\data"),))
    p = plan(spec, HostFacts.for_planning(spec))
    assert any("/srv/data" in w and "drive letter" in w for w in p.warnings)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00-15-5D-52-C0-02", "00-15-5D-52-C0-02"),
        ("00-15-5d-52-c0-0a", "00-15-5D-52-C0-0A"),
        ("00:15:5d:52:cf:ff", "00-15-5D-52-CF-FF"),
        (" 00-15-5D-52-C0-02\n", "00-15-5D-52-C0-02"),
    ],
)
def test_normalise_mac(text: str, expected: str) -> None:
    assert normalise_mac(text) == expected


@pytest.mark.parametrize(
    "text", ["", "00-15-5D-52-C0", "00-15-5D-52-C0-0G", "00-15:5D-52-C0-02", "00155D52C002"]
)
def test_normalise_mac_refuses_what_is_not_a_mac(text: str) -> None:
    with pytest.raises(SpecError, match="not a MAC address"):
        normalise_mac(text)


def test_with_adapter_mac_needs_a_network() -> None:
    spec = SandboxSpec(network="none")
    with pytest.raises(SpecError, match="no network endpoint"):
        plan(spec, HostFacts.for_planning(spec)).with_adapter_mac("00-15-5D-52-C0-02")


def test_to_dict_is_json() -> None:
    p = plan(EVERYTHING, HostFacts.for_planning(EVERYTHING))
    data = p.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["compute_system"] == p.document
    assert data["after_start"]["gpu"]["ResourcePath"] == "VirtualMachine/ComputeTopology/Gpu"


# --------------------------------------------------------------------------------------
# Bad facts
# --------------------------------------------------------------------------------------


def test_desktop_without_a_user_sid() -> None:
    spec = SandboxSpec(display="desktop")
    with pytest.raises(SpecError, match="SID"):
        plan(spec, HostFacts.for_planning(spec, user_sid=None))


def test_network_without_an_endpoint_id() -> None:
    spec = SandboxSpec(network="nat")
    with pytest.raises(SpecError, match="endpoint id"):
        plan(spec, HostFacts.for_planning(spec, endpoint_id=None))


def test_host_base_without_a_base_image() -> None:
    spec = SandboxSpec()
    with pytest.raises(SpecError, match="base image"):
        plan(spec, HostFacts.for_planning(spec, base_path=None))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"variant": "fancy"}, "variant"),
        ({"path_style": "dos"}, "path style"),
        ({"supported_schema_versions": ()}, "no supported"),
        ({"scratch_size_bytes": 0}, "positive"),
    ],
)
def test_bad_host_facts(change: dict[str, Any], match: str) -> None:
    with pytest.raises(SpecError, match=match):
        HostFacts.for_planning(SandboxSpec(), **change)


def test_for_sandbox_gives_each_sandbox_its_own_adapter_and_mac() -> None:
    def facts(sid: str) -> HostFacts:
        return HostFacts.for_sandbox(
            sandbox_id=sid,
            system_id=sid,
            sandbox_dir=f"/state/{sid}",
            base_path="/base",
            supported_schema_versions=[(2, 1)],
            path_style="posix",
        )

    a = facts("11111111-1111-4111-8111-111111111111")
    b = facts("22222222-2222-4222-8222-222222222222")
    assert a.endpoint_id != b.endpoint_id
    assert a.adapter_id != b.adapter_id
    # The MAC is HNS's to choose (from the network's MacPool), never derived here.
    assert a.mac_address is None
    assert b.mac_address is None
    assert a == facts("11111111-1111-4111-8111-111111111111")
    spec = SandboxSpec(network="nat", base=BaseImage("image", "/img"))
    p = plan(spec, a)
    (adapter,) = p.document["VirtualMachine"]["Devices"]["NetworkAdapters"].values()
    assert adapter == {"EndpointId": a.endpoint_id}
    assert p.endpoint_document is not None
    assert "MacAddress" not in p.endpoint_document
    # An explicit MAC in the facts is requested from HNS and put in the adapter.
    explicit = plan(spec, dataclasses.replace(a, mac_address="00-15-5D-52-C0-09"))
    assert explicit.endpoint_document is not None
    assert explicit.endpoint_document["MacAddress"] == "00-15-5D-52-C0-09"
    (adapter,) = explicit.document["VirtualMachine"]["Devices"]["NetworkAdapters"].values()
    assert adapter["MacAddress"] == "00-15-5D-52-C0-09"
