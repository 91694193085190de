"""Fixtures for the sandbox-layer tests: each test gets its own state directory (through
``HCS_SANDBOX_STATE_DIR``) and the simulator (the root conftest points it at a fresh
directory and checks leaks after the test)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hcs_sandbox.native import loader


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh hcs-sandbox state directory for this test."""
    state = tmp_path / "hcs-state"
    monkeypatch.setenv("HCS_SANDBOX_STATE_DIR", str(state))
    forced = False
    if not loader.simulator_requested():  # the root conftest normally did this already
        loader.use_simulator(str(tmp_path / "sim"))
        forced = True
    yield state
    if forced:
        loader.reset_backend()


@pytest.fixture
def sim() -> object:
    """The process's simulator (fault injection, latency, leaks)."""
    from hcs_sandbox.sim import get_simulator

    return get_simulator()


def owned_systems() -> list[dict[str, object]]:
    """Compute systems HCS reports with Owner hcs-sandbox."""
    from hcs_sandbox.hcs.system import enumerate_compute_systems

    return enumerate_compute_systems({"Owners": ["hcs-sandbox"]})


def files_under(state: Path) -> list[str]:
    """Every file and folder under the state dir's sandboxes/ folder."""
    root = state / "sandboxes"
    if not root.exists():
        return []
    return sorted(os.path.relpath(p, root) for p in root.rglob("*"))


def endpoints() -> list[str]:
    from hcs_sandbox.hcs import network

    return network.enumerate_endpoints(None)


def records(state: Path) -> list[str]:
    from hcs_sandbox.sandbox.store import open_store

    with open_store(state) as store:
        return [f"{r.name}:{r.state}" for r in store.list(all=True, kind=None)]


def assert_nothing_left(state: Path) -> None:
    """Zero systems, files, endpoints and records."""
    assert owned_systems() == []
    assert files_under(state) == []
    assert endpoints() == []
    assert records(state) == []


NAT_ID = "6f1b5c3e-0000-4000-8000-68637373616e"


def _test_blueprint(spec: object, record: object, state: Path, *, fresh: bool) -> object:
    """A minimal, schema-valid plan used while the real planner is not available."""
    import uuid

    from hcs_sandbox.sandbox import paths, storage
    from hcs_sandbox.sandbox.sandbox import _Blueprint
    from hcs_sandbox.sandbox.storage import ScratchDisk

    base = storage.resolve_base(spec.base.kind, spec.base.path)  # type: ignore[attr-defined]
    files = paths.sandbox_files(state, record.id)  # type: ignore[attr-defined]
    devices: dict[str, object] = {
        "Scsi": {
            "primary": {
                "Attachments": {"0": {"Type": "VirtualDisk", "Path": str(files.scratch_vhdx)}}
            }
        },
        "VirtualSmb": {
            "Shares": [{"Name": "os", "Path": base.os_files, "Options": {"ReadOnly": True}}]
        },
    }
    network = endpoint = None
    if spec.network != "none":  # type: ignore[attr-defined]
        eid = str(uuid.uuid5(uuid.UUID(NAT_ID), record.id))  # type: ignore[attr-defined]
        network = {
            "ID": NAT_ID,
            "Name": "hcs-sandbox-nat",
            "Type": "NAT",
            "SchemaVersion": {"Major": 2, "Minor": 0},
            "Ipams": [{"Type": "Static", "Subnets": [{"IpAddressPrefix": "172.30.0.0/24"}]}],
        }
        endpoint = {
            "ID": eid,
            "Name": f"hcs-sandbox-{record.id}",  # type: ignore[attr-defined]
            "HostComputeNetwork": NAT_ID,
            "SchemaVersion": {"Major": 2, "Minor": 0},
        }
        devices["NetworkAdapters"] = {eid: {"EndpointId": eid}}
    document = {
        "SchemaVersion": {"Major": 2, "Minor": 1},
        "Owner": "hcs-sandbox",
        "ShouldTerminateOnLastHandleClosed": False,
        "VirtualMachine": {
            "ComputeTopology": {
                "Memory": {"SizeInMB": spec.memory_mb},  # type: ignore[attr-defined]
                "Processor": {"Count": spec.cpus},  # type: ignore[attr-defined]
            },
            "Devices": devices,
            "GuestState": {"GuestStateFilePath": str(files.guest_state)},
            "GuestConnection": {},
        },
    }
    return _Blueprint(
        document=document,
        scratch=ScratchDisk(str(files.scratch_vhdx), "create", 1024**3),
        guest_state=str(files.guest_state),
        grants=(str(files.scratch_vhdx), str(files.guest_state)),
        network=network,
        endpoint=endpoint,
    )


@pytest.fixture(autouse=True)
def _planner_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use the real planner when it exists; otherwise a minimal stand-in plan."""
    import importlib.util

    if importlib.util.find_spec("hcs_sandbox.sandbox.planner") is None:
        monkeypatch.setattr("hcs_sandbox.sandbox.sandbox._blueprint", _test_blueprint)


class Inspector:
    """What exists right now: systems, files, endpoints, records (a fixture)."""

    def __init__(self, state: Path) -> None:
        self.state = state

    def systems(self) -> list[dict[str, object]]:
        return owned_systems()

    def files(self) -> list[str]:
        return files_under(self.state)

    def endpoints(self) -> list[str]:
        return endpoints()

    def records(self) -> list[str]:
        return records(self.state)

    def assert_nothing_left(self) -> None:
        assert_nothing_left(self.state)


@pytest.fixture
def world(state_dir: Path) -> Inspector:
    return Inspector(state_dir)
