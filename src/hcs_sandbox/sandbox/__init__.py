"""hcs_sandbox.sandbox: sandboxes as objects (spec, planner, store, storage, network, Sandbox).

Names are exported lazily (module ``__getattr__``): importing this package loads nothing
else, so ``hcs-sandbox ls`` starts fast.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~5 ms at start-up
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:
    from hcs_sandbox.sandbox.maintenance import PruneReport, ReconcileReport, prune, reconcile
    from hcs_sandbox.sandbox.sandbox import ExecResult, ExitInfo, Sandbox, SandboxEvent
    from hcs_sandbox.sandbox.spec import BaseImage, MappedFolder, PortMapping, SandboxSpec
    from hcs_sandbox.sandbox.wsb import parse_wsb, read_wsb, to_wsb

__all__ = [
    "BaseImage",
    "ExecResult",
    "ExitInfo",
    "MappedFolder",
    "PortMapping",
    "PruneReport",
    "ReconcileReport",
    "Sandbox",
    "SandboxEvent",
    "SandboxSpec",
    "parse_wsb",
    "prune",
    "read_wsb",
    "reconcile",
    "to_wsb",
]

_WHERE: dict[str, str] = {
    "Sandbox": "sandbox",
    "ExitInfo": "sandbox",
    "ExecResult": "sandbox",
    "SandboxEvent": "sandbox",
    "SandboxSpec": "spec",
    "BaseImage": "spec",
    "MappedFolder": "spec",
    "PortMapping": "spec",
    "read_wsb": "wsb",
    "parse_wsb": "wsb",
    "to_wsb": "wsb",
    "reconcile": "maintenance",
    "prune": "maintenance",
    "ReconcileReport": "maintenance",
    "PruneReport": "maintenance",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'hcs_sandbox.sandbox' has no attribute {name!r}")
    import importlib  # here, not at import: with ``warnings``, ~0.5 ms of every CLI start

    value = getattr(importlib.import_module(f"hcs_sandbox.sandbox.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
