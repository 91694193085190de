"""hcs_sandbox.native: the ctypes binding of HCS, HCN and virtdisk.

- :mod:`~hcs_sandbox.native.types`: ctypes aliases, structures, callback types, constants;
- :mod:`~hcs_sandbox.native.prototypes`: the one table of every native function used;
- :mod:`~hcs_sandbox.native.api`: lazy per-DLL namespaces (``api.computecore.HcsXxx``);
- :mod:`~hcs_sandbox.native.strings`: reading and freeing HCS/HCN out-strings;
- :mod:`~hcs_sandbox.native.handles`: process stdio handles → file descriptors;
- :mod:`~hcs_sandbox.native.loader`: the backend (Windows DLLs or the simulator).

Importing this package loads no DLL and chooses no backend (docs/architecture.md).
"""

from __future__ import annotations

from hcs_sandbox.native import api
from hcs_sandbox.native.api import backend_name, is_simulated
from hcs_sandbox.native.handles import close_handle, handle_to_fd
from hcs_sandbox.native.loader import (
    ENV_SIMULATOR,
    Backend,
    NativeUnavailable,
    get_backend,
    reset_backend,
    simulator_requested,
    use_simulator,
)
from hcs_sandbox.native.prototypes import PROTOTYPES, Prototype
from hcs_sandbox.native.strings import take_hcn_string, take_hcs_string, take_string

__all__ = [
    "ENV_SIMULATOR",
    "PROTOTYPES",
    "Backend",
    "NativeUnavailable",
    "Prototype",
    "api",
    "backend_name",
    "close_handle",
    "get_backend",
    "handle_to_fd",
    "is_simulated",
    "reset_backend",
    "simulator_requested",
    "take_hcn_string",
    "take_hcs_string",
    "take_string",
    "use_simulator",
]
