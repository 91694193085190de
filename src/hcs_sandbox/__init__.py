"""hcs-sandbox: many lightweight, disposable Windows sandboxes through the Windows Host
Compute Service, from Python.

    from hcs_sandbox import Sandbox, SandboxSpec

    with Sandbox.run(SandboxSpec(memory_mb=2048)) as sb:
        print(sb.inspect()["state"])

Everything is exported lazily: ``import hcs_sandbox`` loads no DLL, opens no file and starts
no thread. ``hcs_sandbox.errors`` holds the exception tree (also reachable as
``hcs_sandbox.errors``).
"""

from __future__ import annotations

from hcs_sandbox._version import __version__

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~5 ms at start-up
if TYPE_CHECKING:
    from typing import Any

    from hcs_sandbox import errors
    from hcs_sandbox.errors import HcsSandboxError
    from hcs_sandbox.native.loader import use_simulator
    from hcs_sandbox.sandbox.maintenance import PruneReport, ReconcileReport, prune, reconcile
    from hcs_sandbox.sandbox.sandbox import ExecResult, ExitInfo, Sandbox, SandboxEvent
    from hcs_sandbox.sandbox.spec import BaseImage, MappedFolder, PortMapping, SandboxSpec
    from hcs_sandbox.sandbox.wsb import parse_wsb, read_wsb, to_wsb

__all__ = [
    "BaseImage",
    "ExecResult",
    "ExitInfo",
    "HcsSandboxError",
    "MappedFolder",
    "PortMapping",
    "PruneReport",
    "ReconcileReport",
    "Sandbox",
    "SandboxEvent",
    "SandboxSpec",
    "__version__",
    "errors",
    "parse_wsb",
    "prune",
    "read_wsb",
    "reconcile",
    "to_wsb",
    "use_simulator",
]

_SANDBOX_NAMES = frozenset(__all__) - {"errors", "HcsSandboxError", "__version__", "use_simulator"}


def __getattr__(name: str) -> Any:
    import importlib  # here, not at import: with ``warnings``, ~0.5 ms of every CLI start

    if name == "errors":
        value: Any = importlib.import_module("hcs_sandbox.errors")
    elif name == "HcsSandboxError":
        value = importlib.import_module("hcs_sandbox.errors").HcsSandboxError
    elif name == "use_simulator":
        value = importlib.import_module("hcs_sandbox.native.loader").use_simulator
    elif name in _SANDBOX_NAMES:
        value = getattr(importlib.import_module("hcs_sandbox.sandbox"), name)
    else:
        raise AttributeError(f"module 'hcs_sandbox' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
