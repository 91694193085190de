"""50 sandboxes at once from threads: unique names, no lost records, nothing leaked."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec

if TYPE_CHECKING:
    from conftest import Inspector


def _life(i: int) -> str:
    sb = Sandbox.create(SandboxSpec(name=f"par-{i}", network="nat" if i % 5 == 0 else "none"))
    sb.start()
    state = sb.state
    sb.remove(force=True)
    return state


def test_fifty_sandboxes_in_parallel(world: Inspector) -> None:
    with ThreadPoolExecutor(50) as pool:
        states = list(pool.map(_life, range(50)))
    assert states == ["running"] * 50
    world.assert_nothing_left()


def test_fifty_created_then_listed(world: Inspector) -> None:
    with ThreadPoolExecutor(25) as pool:
        boxes = list(pool.map(lambda i: Sandbox.create(SandboxSpec()), range(50)))
    names = {b.name for b in boxes}
    assert len(names) == 50  # generated names never collide
    assert {s.name for s in Sandbox.list()} == names
    with ThreadPoolExecutor(25) as pool:
        list(pool.map(lambda b: b.remove(force=True), boxes))
    world.assert_nothing_left()
