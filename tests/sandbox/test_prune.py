"""reconcile/prune: orphans of every kind, half-made records of dead creators."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hcs_sandbox.sandbox.maintenance import prune, reconcile
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec
from hcs_sandbox.sandbox.store import open_store

if TYPE_CHECKING:
    from conftest import Inspector


def test_clean_state_reports_nothing(world: Inspector) -> None:
    sb = Sandbox.create(SandboxSpec(name="keep"))
    report = reconcile()
    assert report.clean, report.to_dict()
    assert report.records == 1
    result = prune()
    assert result.count == 0
    assert world.records() == ["keep:created"]
    sb.remove()
    world.assert_nothing_left()


def test_system_without_record_is_terminated(world: Inspector) -> None:
    sb = Sandbox.create(SandboxSpec(name="orphan"))
    sb.start()
    system_id = sb.system_id
    with open_store(world.state) as store:
        store.delete(sb.id)
    sb.close()
    report = reconcile()
    assert [s.lower() for s in report.orphan_systems] == [system_id.lower()]
    assert prune(dry_run=True).systems == report.orphan_systems
    assert len(world.systems()) == 1  # dry run changed nothing
    result = prune()
    assert result.systems == report.orphan_systems
    assert world.systems() == []
    # its folder had no record either
    assert world.files() == []


def test_ephemeral_record_whose_system_is_gone(world: Inspector) -> None:
    sb = Sandbox.create(SandboxSpec(name="gone", network="nat"))
    sb.start()
    sb.kill()
    assert world.records() == ["gone:stopped"]
    report = reconcile()
    assert report.gone_ephemeral == [f"gone ({sb.id})"]
    result = prune()
    assert result.records == [f"gone ({sb.id})"]
    world.assert_nothing_left()


def test_one_record_that_cannot_be_removed_is_one_failure_and_the_others_go_on(
    world: Inspector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each record prune removes or stops is judged in its own try: an error of any kind
    in one (here an unexpected TypeError) is one failure line, not the whole prune's end
    (review RV58 F3: one damaged record made prune fail on the whole host)."""
    import hcs_sandbox.sandbox.sandbox as sandbox_module
    from hcs_sandbox.hcs.system import ComputeSystem

    first = Sandbox.create(SandboxSpec(name="bad"))
    second = Sandbox.create(SandboxSpec(name="good"))
    third = Sandbox.create(SandboxSpec(name="pers", persistence="persistent"))
    for sb in (first, second, third):
        sb.start()
    first.kill()
    second.kill()
    with ComputeSystem.open(third.system_id) as system:  # gone behind its back
        system.terminate()
        system.wait(5)
    third.close()
    real = sandbox_module.release_resources

    def release(store: Any, record: Any, **kwargs: Any) -> Any:
        if record.name == "bad":
            raise TypeError("one record's damage")
        return real(store, record, **kwargs)

    monkeypatch.setattr(sandbox_module, "release_resources", release)
    result = prune()
    assert result.failures == [f"bad ({first.id}): one record's damage"]
    assert result.records == [f"good ({second.id})"]
    assert result.marked_stopped == [f"pers ({third.id})"]
    assert world.records() == ["bad:removing", "pers:stopped"]
    monkeypatch.setattr(sandbox_module, "release_resources", real)
    # (Its owner is this live process: a later prune leaves it to it; rm finishes it.)
    Sandbox.get("bad").remove()
    Sandbox.get("pers").remove()
    world.assert_nothing_left()


def test_persistent_record_is_marked_stopped_not_removed(world: Inspector) -> None:
    sb = Sandbox.create(SandboxSpec(name="pers", persistence="persistent"))
    sb.start()
    # the system disappears behind our back (host reboot)
    from hcs_sandbox.hcs.system import ComputeSystem

    with ComputeSystem.open(sb.system_id) as system:
        system.terminate()
        system.wait(5)
    sb.close()
    result = prune()
    assert result.marked_stopped == [f"pers ({sb.id})"]
    assert world.records() == ["pers:stopped"]
    assert any(f.endswith("sandbox.vhdx") for f in world.files())
    Sandbox.get("pers").remove()
    world.assert_nothing_left()


def test_orphan_endpoint_and_folder(world: Inspector) -> None:
    sb = Sandbox.create(SandboxSpec(name="ep", network="nat"))
    with open_store(world.state) as store:
        store.update(sb.id, endpoint_ids=[], files=[])
    sb.kill()
    with open_store(world.state) as store:
        store.delete(sb.id)
    stray = world.state / "sandboxes" / "not-a-sandbox"
    stray.mkdir(parents=True)
    report = reconcile()
    assert len(report.orphan_endpoints) == 1
    assert str(stray) in report.orphan_files
    result = prune()
    assert result.failures == []
    world.assert_nothing_left()


def test_record_of_a_live_creator_is_left_alone(world: Inspector) -> None:
    with open_store(world.state) as store:
        store.reserve("busy", None, {}, state="creating")
    report = reconcile()
    assert report.in_progress
    assert not report.half_made
    prune()
    assert world.records() == ["busy:creating"]
    with open_store(world.state) as store:
        store.update(store.get("busy").id, owner_pid=2**22 + 12345)  # no such process
    result = prune()
    assert result.records
    assert world.records() == []


def _child(state: Path, sim_dir: str, step: str) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(
        f"""
        import os
        from hcs_sandbox.sandbox.sandbox import Sandbox
        from hcs_sandbox.sandbox.spec import SandboxSpec
        def progress(text):
            if text.startswith({step!r}):
                os._exit(9)   # killed mid-create: no rollback runs
        Sandbox.create(SandboxSpec(name="killed", network="nat"), progress=progress)
        os._exit(0)
        """
    )
    env = dict(os.environ)
    env["HCS_SANDBOX_STATE_DIR"] = str(state)
    env["HCS_SANDBOX_SIMULATOR"] = sim_dir
    env.pop("HCS_SANDBOX_SIM_FAULTS", None)
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "step",
    [
        "creating the sandbox folder",
        "creating the scratch disk",
        "granting the VM access",
        "preparing the NAT network",
        "creating the network endpoint",
        "creating the compute system",
        "created",
    ],
)
def test_process_killed_mid_create_is_pruned(step: str, sim: Any, world: Inspector) -> None:
    import importlib.util

    if importlib.util.find_spec("hcs_sandbox.sandbox.planner") is None:
        pytest.skip("needs the real planner in the child process")
    proc = _child(world.state, sim.state_dir, step)
    assert proc.returncode == 9, proc.stderr
    assert world.records() == ["killed:creating"]
    result = prune()
    assert result.failures == []
    assert result.records == [r for r in result.records if "killed" in r]
    world.assert_nothing_left()
