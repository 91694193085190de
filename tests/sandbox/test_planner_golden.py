"""Golden plans: each base kind and each option, compared exactly with tests/data/golden/.

Rewrite the goldens after an intended change with ``HCS_SANDBOX_REWRITE_GOLDEN=1`` and
review the diff.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hcs_sandbox.sandbox.planner import HostFacts, plan
from hcs_sandbox.sandbox.spec import BaseImage, MappedFolder, PortMapping, SandboxSpec

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "golden"
REWRITE = os.environ.get("HCS_SANDBOX_REWRITE_GOLDEN") == "1"

IMAGE = BaseImage(kind="image", path="C:\\images\\ltsc2022")
VHDX = BaseImage(kind="vhdx", path="D:\\vms\\win11.vhdx")


def _facts(spec: SandboxSpec, **kw: Any) -> HostFacts:
    return HostFacts.for_planning(spec, **kw)


CASES: dict[str, Callable[[], tuple[SandboxSpec, HostFacts]]] = {}


def case(name: str, spec: SandboxSpec, **facts: Any) -> None:
    CASES[name] = lambda: (spec, _facts(spec, **facts))


case("host-documented", SandboxSpec(name="host-doc"))
case("host-wsb-compat", SandboxSpec(name="host-wsb"), variant="wsb-compat")
case("host-schema-2.1", SandboxSpec(name="host-21"), supported_schema_versions=[(2, 1)])
case("image", SandboxSpec(name="image", base=IMAGE))
case("vhdx", SandboxSpec(name="vhdx", base=VHDX))
case(
    "network-nat-ports",
    SandboxSpec(
        name="nat",
        network="nat",
        ports=(PortMapping(8080, 80), PortMapping(5353, 53, "udp")),
    ),
)
case(
    "network-internet-only",
    SandboxSpec(name="inet", network="internet-only", ports=(PortMapping(8443, 443),)),
)
case(
    "mapped-folders",
    SandboxSpec(
        name="maps",
        mapped_folders=(
            MappedFolder("C:\\src", "C:\\work"),
            MappedFolder("D:\\out", "C:\\Users\\WDAGUtilityAccount\\Desktop\\out", False),
        ),
    ),
)
case("desktop", SandboxSpec(name="desk", display="desktop"))
case(
    "devices",
    SandboxSpec(
        name="devices",
        display="desktop",
        gpu=True,
        clipboard=True,
        audio_input=True,
        video_input=True,
        printer=True,
        protected_client=True,
    ),
)
case("devices-headless", SandboxSpec(name="devheadless", clipboard=True, printer=True))
case("memory-cpus", SandboxSpec(name="sized", memory_mb=8191, cpus=8))
case("persistent", SandboxSpec(name="keep", persistence="persistent"))
case(
    "persistent-terminate",
    SandboxSpec(name="keep2", persistence="persistent"),
    terminate_on_close=True,
)
case("ephemeral-terminate", SandboxSpec(name="tied"), terminate_on_close=True)
case(
    "logon-command",
    SandboxSpec(
        name="logon",
        logon_command="cmd /c echo hello > C:\\hello.txt",
        environment={"STAGE": "test"},
    ),
)
case(
    "vhdx-everything",
    SandboxSpec(
        name="vhdxall",
        base=VHDX,
        network="nat",
        ports=(PortMapping(3389, 3389),),
        mapped_folders=(MappedFolder("C:\\data", "C:\\data", False),),
        display="desktop",
        memory_mb=2048,
        cpus=1,
    ),
)
case(
    "simulator-posix",
    SandboxSpec(
        name="posix",
        base=BaseImage(kind="image", path="/var/lib/images/ltsc2022"),
        mapped_folders=(MappedFolder("/srv/data", "C:\\data"),),
    ),
    path_style="posix",
    sandbox_dir="/var/lib/hcs-sandbox/sandboxes/4f9c3a3e-1111-4222-8333-444455556666",
)


def _render(name: str) -> str:
    spec, facts = CASES[name]()
    return json.dumps(plan(spec, facts).to_dict(), indent=2, sort_keys=True) + "\n"


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    path = GOLDEN / f"{name}.json"
    text = _render(name)
    if REWRITE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden {path}: run with HCS_SANDBOX_REWRITE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), (
        f"plan {name} differs from {path.name}; if intended, rewrite with "
        "HCS_SANDBOX_REWRITE_GOLDEN=1 and review the diff"
    )


def test_no_stray_goldens() -> None:
    names = {p.stem for p in GOLDEN.glob("*.json")}
    assert names == set(CASES)


def test_plan_is_deterministic() -> None:
    for name in CASES:
        assert _render(name) == _render(name)
