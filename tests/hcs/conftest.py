"""Fixtures for the hcs layer tests (all through the simulator; the root conftest points
the simulator at a fresh state directory per test and checks for leaks afterwards)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hcs_sandbox.hcs import operation
from hcs_sandbox.hcs.system import ComputeSystem

# A minimal VM document (Microsoft Tutorial.md "empty VM" shape, plus a guest connection so
# that processes and shutdown work: VirtualMachine.GuestConnection, SchemaReference.md 2.1).
BASE_DOCUMENT: dict[str, Any] = {
    "SchemaVersion": {"Major": 2, "Minor": 1},
    "Owner": "hcs-tests",
    "ShouldTerminateOnLastHandleClosed": True,
    "VirtualMachine": {
        "Chipset": {"Uefi": {}},
        "ComputeTopology": {"Memory": {"SizeInMB": 1024}, "Processor": {"Count": 2}},
        "GuestConnection": {},
    },
}


def vm_document(*, guest: bool = True, owner: str = "hcs-tests") -> dict[str, Any]:
    doc = copy.deepcopy(BASE_DOCUMENT)
    doc["Owner"] = owner
    if not guest:
        del doc["VirtualMachine"]["GuestConnection"]
    return doc


@pytest.fixture(name="vm_document")
def vm_document_fixture() -> Callable[..., dict[str, Any]]:
    """The :func:`vm_document` factory (test modules here are not a package)."""
    return vm_document


@pytest.fixture
def sim() -> Any:
    from hcs_sandbox.sim import get_simulator

    return get_simulator()


@pytest.fixture
def new_id() -> Callable[[], str]:
    return lambda: f"hcs-test-{uuid.uuid4()}"


@pytest.fixture
def make_system(new_id: Callable[[], str]) -> Iterator[Callable[..., ComputeSystem]]:
    """Create compute systems that are terminated and closed after the test."""
    made: list[ComputeSystem] = []

    def make(*, start: bool = False, guest: bool = True, **kw: Any) -> ComputeSystem:
        system = ComputeSystem.create(new_id(), vm_document(guest=guest), **kw)
        made.append(system)
        if start:
            system.start()
        return system

    yield make
    for system in made:
        if not system.closed:
            system.terminate_and_close(timeout=10)
    assert operation.wait_abandoned(10), "timed-out operations were never completed by HCS"
