"""hcs_sandbox.hcs: the Host Compute Service layer (operations, events, RAII handles).

Import the submodules you need; importing this package loads no DLL and starts nothing::

    from hcs_sandbox.hcs.system import ComputeSystem, enumerate_compute_systems
    from hcs_sandbox.hcs.process import Process
    from hcs_sandbox.hcs import service, storage, network

Every failure is an :mod:`hcs_sandbox.errors` exception, built by ``error_from_hresult``.
"""

from __future__ import annotations

__all__ = ["events", "network", "operation", "process", "service", "storage", "system"]
