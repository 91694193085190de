"""start and stop take the record they hold when nothing was written since (``Store.reread``),
and see every change another object or process made meanwhile."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec
from hcs_sandbox.sandbox.store import Store

if TYPE_CHECKING:
    from conftest import Inspector


def _count_gets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = Store.get

    def get(self: Store, name_or_id: str, **kwargs: object) -> object:
        calls.append(name_or_id)
        return real(self, name_or_id, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "get", get)
    return calls


def test_start_stop_remove_read_no_record_when_nothing_changed(
    world: Inspector, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (The first Store of a new database opens it again at its next use: the switch to WAL
    # changed its data_version.  So the second sandbox.)
    Sandbox.create(SandboxSpec(name="first")).remove()
    sb = Sandbox.create(SandboxSpec(name="quiet"))
    gets = _count_gets(monkeypatch)
    sb.start()
    sb.stop(timeout=5)
    assert gets == []
    assert sb.record.state == "stopped"
    sb.remove()
    assert gets == []
    world.assert_nothing_left()


def _mark_removing(store_dir: Path, record_id: str, other_process: bool) -> None:
    db = str(store_dir / "state.db")
    if other_process:
        script = (
            "import sys\n"
            "from hcs_sandbox.sandbox.store import Store\n"
            "Store(sys.argv[1]).update(sys.argv[2], state='removing')\n"
        )
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        subprocess.run([sys.executable, "-c", script, db, record_id], check=True, env=env)
    else:
        Store(db).update(record_id, state="removing")  # this process's shared connection


@pytest.mark.parametrize("other_process", [False, True])
def test_stop_sees_a_record_changed_meanwhile(
    world: Inspector, state_dir: Path, other_process: bool
) -> None:
    sb = Sandbox.create(SandboxSpec(name="busy"))
    sb.start()
    _mark_removing(state_dir, sb.id, other_process)
    # Another object or process is removing it: stop refuses (with the record it holds,
    # ``running``, it would shut the system down and overwrite ``removing``).
    with pytest.raises(errors.SandboxStateError, match="removing"):
        sb.stop(timeout=5)
    assert Sandbox.get(sb.id).record.state == "removing"
    assert sb.record.state == "removing"
    sb.remove(force=True)
    world.assert_nothing_left()


@pytest.mark.parametrize("other_process", [False, True])
def test_start_sees_a_record_changed_meanwhile(
    world: Inspector, state_dir: Path, other_process: bool
) -> None:
    sb = Sandbox.create(SandboxSpec(name="taken"))
    _mark_removing(state_dir, sb.id, other_process)
    with pytest.raises(errors.SandboxStateError, match="removing"):
        sb.start()
    assert sb.record.state == "removing"
    assert [s["State"] for s in world.systems()] == ["Created"]  # not started
    sb.remove(force=True)
    world.assert_nothing_left()


def test_a_second_object_started_it(world: Inspector) -> None:
    a = Sandbox.create(SandboxSpec(name="shared"))
    b = Sandbox.get("shared")
    b.start()
    a.stop(timeout=5)  # a's record said created: it sees b's start
    assert a.record.state == "stopped"
    assert Sandbox.get("shared").record.state == "stopped"
    b.close()
    a.remove()
    world.assert_nothing_left()
