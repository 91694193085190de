"""The planner wired into the Sandbox lifecycle, end to end on the simulator.

Each test creates real sandboxes through ``Sandbox`` (record → files → grants → endpoint →
``HcsCreateComputeSystem``) and compares what HCS received with an independent run of the
planner on the same host facts (``hostfacts.gather`` + ``planner.plan``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox import hostfacts, network
from hcs_sandbox.sandbox.planner import GPU_RESOURCE_PATH, MAC_POOL, plan
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import BaseImage, SandboxSpec

if TYPE_CHECKING:
    from conftest import Inspector

SRC = Path(__file__).resolve().parents[2] / "src"


def _sim_record(sim: Any, system_id: str) -> dict[str, Any]:
    record = sim.store.read("systems", system_id)
    assert record is not None, f"the simulator has no compute system {system_id}"
    return dict(record)


def _document(sim: Any, sb: Sandbox) -> dict[str, Any]:
    """The document HCS received for this sandbox's compute system."""
    return dict(_sim_record(sim, sb.system_id)["Document"])


def _expected(sb: Sandbox, state_dir: Path, **kw: Any) -> Any:
    """The planner's plan for this sandbox, computed independently of Sandbox; a networked
    plan gets the MAC HNS assigned to the sandbox's endpoint (``Plan.with_adapter_mac``)."""
    facts = hostfacts.gather(
        sb.spec, sandbox_id=sb.id, system_id=sb.system_id, state_dir=state_dir, **kw
    )
    planned = plan(sb.spec, facts)
    if planned.endpoint is not None:
        info = network.endpoint_info(planned.endpoint.ID)
        assert info is not None
        assert info.mac, "HNS has no MAC for the sandbox's endpoint"
        planned = planned.with_adapter_mac(info.mac)
    return planned


def _lifecycle(sb: Sandbox, world: Inspector) -> dict[str, Any]:
    """start → inspect → remove; returns the inspect() data."""
    sb.start()
    assert sb.state == "running"
    info = sb.inspect()
    assert info["state"] == "running"
    assert info["statistics"] is not None
    sb.remove(force=True)
    world.assert_nothing_left()
    return info


# --------------------------------------------------------------------------------------
# The three bases
# --------------------------------------------------------------------------------------


def test_host_base_document_is_the_planners(world: Inspector, state_dir: Path, sim: Any) -> None:
    from hcs_sandbox.sandbox import storage

    sb = Sandbox.create(SandboxSpec(name="host-base"))
    expected = _expected(sb, state_dir)
    document = _document(sim, sb)
    assert document == expected.document
    base = storage.find_host_base()
    shares = document["VirtualMachine"]["Devices"]["VirtualSmb"]["Shares"]
    assert shares[0]["Name"] == "os"
    assert shares[0]["Path"] == base.os_files
    assert document["Owner"] == "hcs-sandbox"
    assert document["ShouldTerminateOnLastHandleClosed"] is False
    assert "NetworkAdapters" not in document["VirtualMachine"]["Devices"]
    # The files the plan names are the ones made and recorded.
    assert expected.scratch is not None
    assert expected.scratch.method == "create"
    assert Path(expected.scratch.path).is_file()
    assert expected.guest_state_file is not None
    assert Path(expected.guest_state_file).is_file()
    assert set(sb.record.files) >= {expected.scratch.path, expected.guest_state_file}
    grants = sim.store.read_grants()[sb.system_id.lower()]
    assert sorted(grants) == sorted(expected.grants)
    _lifecycle(sb, world)


def _image_base(root: Path) -> Path:
    """A fake container base image: UtilityVM\\Files and a real (simulated) template VHDX."""
    from hcs_sandbox.hcs import storage as hcs_storage

    folder = root / "image-base"
    (folder / "UtilityVM" / "Files").mkdir(parents=True)
    template = folder / "UtilityVM" / "SystemTemplate.vhdx"
    hcs_storage.create_vhdx(template, 1024**3)
    with hcs_storage.open_vhd(template) as vhd:
        hcs_storage.format_writable_layer_vhd(vhd)
    return folder


def test_image_base_copies_the_template(
    world: Inspector, state_dir: Path, sim: Any, tmp_path: Path
) -> None:
    folder = _image_base(tmp_path)
    template = folder / "UtilityVM" / "SystemTemplate.vhdx"
    before = template.read_bytes()
    sb = Sandbox.create(SandboxSpec(name="img", base=BaseImage("image", str(folder))))
    expected = _expected(sb, state_dir)
    assert _document(sim, sb) == expected.document
    assert expected.scratch is not None
    assert expected.scratch.method == "copy"
    assert expected.scratch.parent == str(template)
    assert Path(expected.scratch.path).read_bytes() == before
    shares = _document(sim, sb)["VirtualMachine"]["Devices"]["VirtualSmb"]["Shares"]
    assert shares[0]["Path"] == str(folder / "UtilityVM" / "Files")
    _lifecycle(sb, world)
    assert template.read_bytes() == before


def test_vhdx_base_boots_a_differencing_child(
    world: Inspector, state_dir: Path, sim: Any, tmp_path: Path
) -> None:
    from hcs_sandbox.hcs import storage as hcs_storage

    disk = tmp_path / "base.vhdx"
    hcs_storage.create_vhdx(disk, 1024**3)
    before = disk.read_bytes()
    sb = Sandbox.create(SandboxSpec(name="disk", base=BaseImage("vhdx", str(disk))))
    expected = _expected(sb, state_dir)
    assert _document(sim, sb) == expected.document
    assert expected.scratch is not None
    assert expected.scratch.method == "differencing"
    assert expected.scratch.parent == str(disk)
    # The parent is granted (and remembered, so remove takes the grant back).
    assert str(disk) in sim.store.read_grants()[sb.system_id.lower()]
    assert sb.record.extra["foreign_grants"] == [str(disk)]
    # Its own scratch disk and guest state file are granted too, and not remembered as
    # foreign (deleting them with the sandbox takes their grants back).
    assert set(expected.grants) == {str(disk), *sb.record.files[1:]}
    assert set(expected.grants) <= set(sim.store.read_grants()[sb.system_id.lower()])
    _lifecycle(sb, world)
    assert disk.read_bytes() == before
    assert str(disk) not in sim.store.read_grants().get(sb.system_id.lower(), [])


def test_host_base_grants_only_its_own_files(world: Inspector, state_dir: Path, sim: Any) -> None:
    # A new sandbox's scratch disk and guest state file are its own (in its folder, listed in
    # the record): granted, but no foreign grant is remembered for remove to take back.
    sb = Sandbox.create(SandboxSpec(name="own-grants"))
    expected = _expected(sb, state_dir)
    assert expected.grants
    assert set(expected.grants) == set(sb.record.files[1:])
    assert set(expected.grants) <= set(sim.store.read_grants()[sb.system_id.lower()])
    assert "foreign_grants" not in sb.record.extra
    _lifecycle(sb, world)


# --------------------------------------------------------------------------------------
# Per-sandbox identity: network ids and MAC, the user's SID
# --------------------------------------------------------------------------------------


def test_nat_sandboxes_get_their_own_adapter_and_mac(
    world: Inspector, state_dir: Path, sim: Any
) -> None:
    a = Sandbox.create(SandboxSpec(name="nat-a", network="nat"))
    b = Sandbox.create(SandboxSpec(name="nat-b", network="nat"))
    seen = []
    for sb in (a, b):
        expected = _expected(sb, state_dir)
        document = _document(sim, sb)
        assert document == expected.document
        adapters = document["VirtualMachine"]["Devices"]["NetworkAdapters"]
        assert list(adapters) == [expected.facts.adapter_id]
        (adapter,) = adapters.values()
        endpoint_id = expected.facts.endpoint_id
        assert adapter["EndpointId"] == endpoint_id
        # The endpoint was created without a MAC; HNS chose one and the adapter carries it.
        assert expected.facts.mac_address is None
        assert expected.endpoint_document is not None
        assert "MacAddress" not in expected.endpoint_document
        info = network.endpoint_info(endpoint_id)
        assert info is not None
        assert adapter["MacAddress"] == info.mac == sb.record.extra["mac"]
        assert MAC_POOL[0] <= adapter["MacAddress"] <= MAC_POOL[1]
        assert list(sb.record.endpoint_ids) == [endpoint_id]
        seen.append((expected.facts.adapter_id, endpoint_id, adapter["MacAddress"]))
    (adapter_a, endpoint_a, mac_a), (adapter_b, endpoint_b, mac_b) = seen
    assert adapter_a != adapter_b
    assert endpoint_a != endpoint_b
    assert adapter_a not in (endpoint_a, endpoint_b)
    assert mac_a != mac_b
    a.start()
    b.start()
    a.remove(force=True)
    b.remove(force=True)
    world.assert_nothing_left()


def test_desktop_access_sids_hold_the_user(world: Inspector, sim: Any) -> None:
    sb = Sandbox.create(SandboxSpec(name="desk", display="desktop"))
    devices = _document(sim, sb)["VirtualMachine"]["Devices"]
    sid = hostfacts.user_sid()
    assert devices["VideoMonitor"]["ConnectionOptions"]["AccessSids"] == [sid]
    assert devices["EnhancedModeVideo"]["ConnectionOptions"]["AccessSids"] == [sid]
    assert sid != "S-1-5-21-0-0-0-1001"  # never the planner's placeholder
    if sys.platform != "win32":
        assert sid == f"S-1-22-1-{os.getuid()}"
    pipe = devices["VideoMonitor"]["ConnectionOptions"]["NamedPipe"]
    assert sb.system_id in pipe
    assert any("desktop display is on" in w for w in sb.inspect()["warnings"])
    _lifecycle(sb, world)


def test_user_sid_off_windows_is_the_unix_user_form() -> None:
    from hcs_sandbox.native import loader, security

    hostfacts.invalidate_cache()
    if sys.platform == "win32":  # pragma: no cover - Windows only
        sid = security.current_user_sid()
        assert sid.startswith("S-1-5-")
        assert hostfacts.user_sid() == sid
        return
    with pytest.raises(loader.NativeUnavailable, match="Windows"):
        security.current_user_sid()
    assert hostfacts.user_sid() == f"{hostfacts.UNIX_USER_SID_PREFIX}{os.getuid()}"


def test_wsb_compat_variant_from_the_environment(
    world: Inspector, state_dir: Path, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The doctor's variant choice reaches the planner, with the real user SID.  Windows
    accepts Windows Sandbox's own document, undocumented fields and all, and so does the
    simulator (exactly the dump's fields: sim/data/wsb-dump-fields.json), so the sandbox
    is created, runs and is removed."""
    monkeypatch.setenv("HCS_SANDBOX_HOST_VARIANT", "wsb-compat")
    spec = SandboxSpec(name="compat", network="nat")
    facts = hostfacts.gather(spec, sandbox_id="0" * 32, system_id="0" * 32, state_dir=state_dir)
    assert facts.variant == "wsb-compat"
    memory = plan(spec, facts).document["VirtualMachine"]["ComputeTopology"]["Memory"]
    assert memory["SharedMemoryAccessSids"] == [hostfacts.user_sid()]
    sb = Sandbox.create(spec)
    document = _document(sim, sb)
    assert document == _expected(sb, state_dir).document
    assert document["VirtualMachine"]["RunInSilo"]["NotifySiloJobCreated"] is True
    assert document["VirtualMachine"]["ComputeTopology"]["Memory"]["EnableEpf"] is True
    _lifecycle(sb, world)


def test_wsb_compat_still_refuses_a_truly_unknown_key(
    world: Inspector, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accepting the Windows Sandbox dump's fields loosens nothing else: a key neither
    Microsoft's schema, hcsshim nor the dump knows is refused and the create rolls back."""
    from hcs_sandbox.sandbox import sandbox as sandbox_module

    monkeypatch.setenv("HCS_SANDBOX_HOST_VARIANT", "wsb-compat")
    real = sandbox_module._blueprint

    def tampered(*args: Any, **kwargs: Any) -> Any:
        bp = real(*args, **kwargs)
        document = dict(bp.document)
        vm = dict(document["VirtualMachine"])
        vm["ComputeTopology"] = {
            **vm["ComputeTopology"],
            "Memory": {**vm["ComputeTopology"]["Memory"], "EnableWarpDrive": True},
        }
        document["VirtualMachine"] = vm
        bp.document = document  # a new PlanDocuments per call: the caller may change it
        return bp

    monkeypatch.setattr(sandbox_module, "_blueprint", tampered)
    with pytest.raises(errors.InvalidJsonError, match="EnableWarpDrive: unknown field"):
        Sandbox.create(SandboxSpec(name="compat-unknown"))
    world.assert_nothing_left()


# --------------------------------------------------------------------------------------
# Persistent sandboxes
# --------------------------------------------------------------------------------------


def test_persistent_stop_start_same_disk_and_endpoint(
    world: Inspector, state_dir: Path, sim: Any
) -> None:
    sb = Sandbox.create(SandboxSpec(name="keep", persistence="persistent", network="nat"))
    disk = next(f for f in sb.record.files if f.endswith("sandbox.vhdx"))
    stamp = Path(disk).stat().st_mtime_ns, Path(disk).stat().st_ino
    first = _document(sim, sb)
    endpoints = list(sb.record.endpoint_ids)
    mac = sb.record.extra["mac"]
    sb.start()
    sb.stop(timeout=2)
    assert sb.state == "stopped"
    again = Sandbox.get("keep")
    again.start()
    assert again.state == "running"
    # Same disk (not re-made), same planned document, same endpoint and MAC.
    assert (Path(disk).stat().st_mtime_ns, Path(disk).stat().st_ino) == stamp
    assert _document(sim, again) == first == _expected(again, state_dir).document
    assert list(again.record.endpoint_ids) == endpoints
    assert again.record.extra["mac"] == mac
    assert len(world.endpoints()) == 1
    assert first["ShouldTerminateOnLastHandleClosed"] is False
    again.remove(force=True)
    sb.close()
    world.assert_nothing_left()


# --------------------------------------------------------------------------------------
# GPU
# --------------------------------------------------------------------------------------


def test_gpu_is_assigned_after_start(world: Inspector, sim: Any) -> None:
    steps: list[str] = []
    sb = Sandbox.create(SandboxSpec(name="gpu", gpu=True))
    assert sb.record.extra["gpu_request"]["ResourcePath"] == GPU_RESOURCE_PATH
    assert not _sim_record(sim, sb.system_id).get("Modifications")
    sb.start(progress=steps.append)
    assert "assigning the GPU (GPU-PV)" in steps
    modifications = _sim_record(sim, sb.system_id)["Modifications"]
    assert modifications == [sb.record.extra["gpu_request"]]
    assert modifications[0]["Settings"]["AssignmentMode"] == "Mirror"
    sb.remove(force=True)
    world.assert_nothing_left()


def test_no_gpu_no_modify(world: Inspector, sim: Any) -> None:
    sb = Sandbox.create(SandboxSpec(name="nogpu"))
    assert "gpu_request" not in sb.record.extra
    sb.start()
    assert not _sim_record(sim, sb.system_id).get("Modifications")
    sb.remove(force=True)
    world.assert_nothing_left()


def test_gpu_failure_is_clear_and_rolls_back(world: Inspector, sim: Any) -> None:
    sb = Sandbox.create(SandboxSpec(name="gpu-fail", gpu=True))
    sim.inject("HcsModifyComputeSystem", where="result", hresult=0x80070005)  # access denied
    with pytest.raises(errors.HcsError) as info:
        sb.start()
    # HCS's own class (and so the CLI's exit code) is kept, with the GPU named.
    assert type(info.value) is errors.AccessDeniedError
    text = str(info.value)
    assert "GPU could not be assigned" in text
    assert GPU_RESOURCE_PATH in text
    assert "without --gpu" in text
    assert info.value.function == "HcsModifyComputeSystem"
    # No half-started VM: the system is gone and the record says stopped.
    assert world.systems() == []
    assert sb.state == "stopped"
    sb.remove()
    world.assert_nothing_left()


def test_gpu_failure_on_persistent_restart_rolls_back(world: Inspector, sim: Any) -> None:
    sb = Sandbox.create(SandboxSpec(name="gpu-keep", gpu=True, persistence="persistent"))
    sb.start()
    sb.stop(timeout=2)
    sim.inject("HcsModifyComputeSystem", where="result")
    again = Sandbox.get("gpu-keep")
    with pytest.raises(errors.HcsError, match="GPU could not be assigned"):
        again.start()
    assert world.systems() == []
    assert again.state == "stopped"
    assert any(f.endswith("sandbox.vhdx") for f in world.files())  # the disk is kept
    again.start()  # and a later start works
    assert again.state == "running"
    again.remove(force=True)
    sb.close()
    world.assert_nothing_left()


# --------------------------------------------------------------------------------------
# ShouldTerminateOnLastHandleClosed
# --------------------------------------------------------------------------------------


def test_create_outlives_its_handle(world: Inspector, sim: Any) -> None:
    sb = Sandbox.create(SandboxSpec(name="detached"))
    assert _document(sim, sb)["ShouldTerminateOnLastHandleClosed"] is False
    sb.start()
    sb.close()
    assert Sandbox.get("detached").state == "running"
    Sandbox.get("detached").remove(force=True)
    world.assert_nothing_left()


def test_run_asks_hcs_to_terminate_on_last_handle(world: Inspector, sim: Any) -> None:
    with Sandbox.run(SandboxSpec(name="owned")) as sb:
        assert _document(sim, sb)["ShouldTerminateOnLastHandleClosed"] is True
        assert sb.record.extra["terminate_on_close"] is True
        assert sb.state == "running"
        sb.close()  # our last handle: HCS terminates the VM
        assert _wait_for(lambda: Sandbox.get("owned").state == "stopped")
    world.assert_nothing_left()


def test_run_of_a_persistent_spec_keeps_terminate_off(world: Inspector, sim: Any) -> None:
    with Sandbox.run(SandboxSpec(name="owned-p", persistence="persistent")) as sb:
        assert _document(sim, sb)["ShouldTerminateOnLastHandleClosed"] is False
        assert "terminate_on_close" not in sb.record.extra
    world.assert_nothing_left()


def _wait_for(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_a_crashed_run_process_leaks_no_running_vm(
    world: Inspector, state_dir: Path, sim_state_dir: Path
) -> None:
    script = textwrap.dedent(
        """
        import os
        from hcs_sandbox.sandbox.sandbox import Sandbox
        from hcs_sandbox.sandbox.spec import SandboxSpec

        with Sandbox.run(SandboxSpec(name="crash")) as sb:
            assert sb.state == "running"
            os._exit(7)  # no clean-up at all: as if the process crashed
        """
    )
    env = dict(os.environ)
    env.update(
        HCS_SANDBOX_SIMULATOR=str(sim_state_dir),
        HCS_SANDBOX_STATE_DIR=str(state_dir),
        PYTHONPATH=os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]),
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, env=env, capture_output=True, timeout=120
    )
    assert done.returncode == 7, done.stderr.decode(errors="replace")
    # The record is left behind (prune's job), but HCS has terminated the VM.
    left = Sandbox.get("crash")
    assert _wait_for(lambda: left.state == "stopped")
    assert world.systems() == []
    left.remove()
    world.assert_nothing_left()


# --------------------------------------------------------------------------------------
# Schema versions: one HcsGetServiceProperties per process and backend
# --------------------------------------------------------------------------------------


def test_schema_versions_are_asked_once_per_backend(
    world: Inspector, monkeypatch: pytest.MonkeyPatch, sim_state_dir: Path
) -> None:
    from hcs_sandbox.hcs import service
    from hcs_sandbox.native import loader

    real = service.supported_schema_versions
    calls: list[int] = []

    def counting() -> list[tuple[int, int]]:
        calls.append(1)
        return real()

    monkeypatch.setattr(service, "supported_schema_versions", counting)
    hostfacts.invalidate_cache()
    a = Sandbox.create(SandboxSpec(name="c1"))
    b = Sandbox.create(SandboxSpec(name="c2"))
    assert len(calls) == 1
    assert hostfacts.supported_schema_versions() == tuple(real())
    assert len(calls) == 1
    # A new backend (use_simulator / reset_backend) asks again.
    loader.use_simulator(sim_state_dir)
    hostfacts.supported_schema_versions()
    assert len(calls) == 2
    hostfacts.invalidate_cache()
    hostfacts.supported_schema_versions()
    assert len(calls) == 3
    a.remove(force=True)
    b.remove(force=True)
    world.assert_nothing_left()


def test_old_host_schema_is_a_clear_spec_error(
    world: Inspector, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HCS_SANDBOX_HOST_VARIANT", "wsb-compat")
    sim.set_supported_schema_versions([(2, 1)])
    hostfacts.invalidate_cache()
    with pytest.raises(errors.SpecError, match="wsb-compat"):
        Sandbox.create(SandboxSpec(name="old"))
    world.assert_nothing_left()


def test_unreadable_sid_only_matters_where_it_is_needed(
    world: Inspector, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> str:
        raise errors.HcsSandboxError("could not read this process's user SID")

    monkeypatch.setattr(hostfacts, "user_sid", broken)
    headless = SandboxSpec(name="headless")
    facts = hostfacts.gather(headless, sandbox_id="1" * 32, system_id="1" * 32, state_dir=state_dir)
    assert facts.user_sid is None
    Sandbox.create(headless).remove()
    with pytest.raises(errors.HcsSandboxError, match="user SID"):
        Sandbox.create(SandboxSpec(name="desk2", display="desktop"))
    world.assert_nothing_left()
