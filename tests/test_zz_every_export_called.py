"""Every function the binding declares is called by at least one test through the simulator.

This module runs last (pytest collects the test folders first, then these files in name
order) and only when the whole suite ran: it checks the calls the root conftest collected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SUITE = {"cli", "hcs", "native", "sandbox", "schema", "sim"}


def test_every_bound_function_is_called_through_the_simulator(
    request: pytest.FixtureRequest, simulated_calls: set[str]
) -> None:
    ran = {Path(str(item.path)).parent.name for item in request.session.items}
    if not ran >= SUITE:
        pytest.skip("checked only when the whole suite runs")
    from hcs_sandbox.native.prototypes import PROTOTYPES

    declared = {p.name for p in PROTOTYPES}
    never = sorted(declared - simulated_calls)
    assert not never, "bound but never called through the simulator: " + ", ".join(never)
