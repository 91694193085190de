"""The compute systems hcs-sandbox owns: the ``Owner`` it gives them, and one enumeration.

A small module on purpose: ``hcs-sandbox ls`` needs only this (one
``HcsEnumerateComputeSystems`` to check live records), not the object model
(:mod:`hcs_sandbox.sandbox.sandbox`) nor :mod:`hcs_sandbox.sandbox.maintenance` with their
imports (``dataclasses``, ``logging``, ``pathlib``, ``typing``: tens of milliseconds of
every start).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~5 ms at start-up
if TYPE_CHECKING:
    from typing import Any

__all__ = ["OWNER", "host_identity", "owned_systems"]

#: The ``Owner`` of every compute system, HCN network and endpoint hcs-sandbox makes
#: (``ComputeSystem.Owner``: SchemaReference.md; ``HostComputeNetwork.Owner``: HNS_Schema).
OWNER = "hcs-sandbox"


def host_identity() -> str:
    """The HCS host this process talks to (:func:`hcs_sandbox.hcs.service.host_identity`):
    what a record's ``extra.hcs_host`` is compared with."""
    from hcs_sandbox.hcs.service import host_identity as identity

    return identity()


def owned_systems() -> dict[str, dict[str, Any]]:
    """Compute systems whose Owner is hcs-sandbox, by lower-case id: ONE
    ``HcsEnumerateComputeSystems`` with the query ``{"Owners": ["hcs-sandbox"]}``
    (SystemQuery: SchemaReference.md).  A system listed without an Owner is kept (the
    query already filtered on it)."""
    from hcs_sandbox.hcs.system import enumerate_compute_systems

    found: dict[str, dict[str, Any]] = {}
    for props in enumerate_compute_systems({"Owners": [OWNER]}):
        system_id = str(props.get("Id") or props.get("ID") or "")
        owner = props.get("Owner")
        if system_id and (owner is None or owner == OWNER):
            found[system_id.lower()] = props
    return found
