"""The simulator as a native backend: ``resolve(dll, symbol)`` returns the address of a C
function pointer (a ctypes CFUNCTYPE thunk) with the prototype declared in
:mod:`hcs_sandbox.sim.exports`.  The binding calls it exactly as it calls the real DLLs.

Thunks are created once per process and kept alive for its lifetime; each dispatches to the
process's :class:`~hcs_sandbox.sim.core.Simulator` at call time.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any

from hcs_sandbox import sim as sim_package
from hcs_sandbox.native.loader import NativeUnavailable
from hcs_sandbox.sim import hresults as H
from hcs_sandbox.sim.exports import EXPORTS
from hcs_sandbox.sim.state import default_state_dir

__all__ = ["SimulatorBackend"]

_thunks: dict[tuple[str, str], Any] = {}
_thunks_lock = threading.Lock()

# HCN functions without a trailing ``PWSTR* ErrorRecord`` (HcnClose*.md,
# HcnRegisterServiceCallback.md, HcnUnregisterServiceCallback.md).
_HCN_NO_ERROR_RECORD = {
    "HcnCloseNetwork",
    "HcnCloseEndpoint",
    "HcnRegisterServiceCallback",
    "HcnUnregisterServiceCallback",
}

# Synchronous functions that use an HCN or virtual-disk handle, with the position of that
# handle among their arguments (HcnModify*.md, HcnQuery*Properties.md, HcnCreateEndpoint.md;
# virtdisk AttachVirtualDisk / DetachVirtualDisk; HcsFormatWritableLayerVhd.md,
# HcsGetLayerVhdMountPath.md, HcsSetupBaseOSLayer.md).  The call counts as in flight on that
# handle from entry (before its latency) to return; closing the handle meanwhile is a
# violation (Simulator.begin_use / _closing).
HANDLE_ARGS = {
    "HcnModifyNetwork": 0,
    "HcnQueryNetworkProperties": 0,
    "HcnCreateEndpoint": 0,
    "HcnModifyEndpoint": 0,
    "HcnQueryEndpointProperties": 0,
    "AttachVirtualDisk": 0,
    "DetachVirtualDisk": 0,
    "HcsFormatWritableLayerVhd": 0,
    "HcsGetLayerVhdMountPath": 0,
    "HcsSetupBaseOSLayer": 1,
}


def _dispatch(dll: str, name: str, restype: Any, args: tuple[Any, ...]) -> Any:
    position = HANDLE_ARGS.get(name)
    if position is None:
        return _dispatch_call(dll, name, restype, args)
    sim = sim_package.current_simulator() or sim_package.get_simulator()
    handle = args[position]
    sim.begin_use(handle, name)
    try:
        return _dispatch_call(dll, name, restype, args)
    finally:
        sim.end_use(handle, name)


def _dispatch_call(dll: str, name: str, restype: Any, args: tuple[Any, ...]) -> Any:
    from hcs_sandbox.sim.core import _Failure  # imported by the first call (sys.modules after)

    sim = sim_package.current_simulator() or sim_package.get_simulator()
    try:
        if dll == "computenetwork.dll":
            injected = sim.sync_fault(name)  # HCN calls are synchronous: count, delay, fault
            if injected is not None:
                raise _Failure(injected, f"{name}: injected fault")
        result = getattr(sim, name)(*args)
        if dll == "computenetwork.dll" and name not in _HCN_NO_ERROR_RECORD and args[-1]:
            args[-1][0] = None  # success: no ErrorRecord
    except _Failure as failure:
        if dll == "computenetwork.dll" and name not in _HCN_NO_ERROR_RECORD:
            result = sim.hcn_error(args[-1], failure, name)
        else:
            result = failure.hr
    except Exception as exc:  # a simulator bug must not unwind into C
        sim.violation(f"internal simulator error in {dll}!{name}: {exc!r}")
        result = H.E_FAIL
    if restype is ctypes.c_int32 and isinstance(result, int):
        return H.signed(result)
    if restype is None:
        return None
    return result


def _thunk(dll: str, name: str) -> Any:
    key = (dll, name)
    with _thunks_lock:
        thunk = _thunks.get(key)
        if thunk is None:
            restype, argtypes = EXPORTS[key]
            prototype = ctypes.CFUNCTYPE(restype, *argtypes)

            def call(*args: Any) -> Any:
                return _dispatch(dll, name, restype, args)

            thunk = prototype(call)
            _thunks[key] = thunk
        return thunk


class SimulatorBackend:
    """The backend ``hcs_sandbox.native.loader`` uses when the simulator is requested."""

    name = "simulator"
    simulated = True

    def __init__(self, state_dir: str | None = None) -> None:
        from hcs_sandbox.sim import get_simulator

        self.simulator = get_simulator()
        # Switch the state store only when the directory differs: a switch throws away the
        # store's lock-fd pool and its "ready" flags.
        target = state_dir or default_state_dir()
        if self.simulator.state_dir != target:
            self.simulator.set_state_dir(target)

    @property
    def identity(self) -> str:
        """``simulator:<state directory>``: two simulator directories are two hosts."""
        return "simulator:" + os.path.normcase(os.path.abspath(self.simulator.state_dir))

    def program_data_dir(self) -> str:
        """The simulated host's ``%ProgramData%`` (with a fake Windows Sandbox base image);
        the sandbox layer asks for it (sim/programdata.py)."""
        from hcs_sandbox.sim.programdata import ensure_program_data

        return str(ensure_program_data(self.simulator.state_dir))

    def resolve(self, dll: str, symbol: str) -> int:
        key = (dll.lower(), symbol)
        if key not in EXPORTS:
            known = {d for d, _ in EXPORTS}
            if key[0] not in known:
                raise NativeUnavailable(
                    f"HCS simulator: no DLL named {dll}",
                    remedy=f"the simulator provides {', '.join(sorted(known))}",
                )
            raise NativeUnavailable(f"HCS unavailable on this host: {dll} has no export {symbol}")
        if self.simulator.is_hidden(*key):
            raise NativeUnavailable(
                f"HCS unavailable on this host: {dll} has no export {symbol}",
                remedy="this Windows build is too old for this feature (simulated: the export "
                "was hidden with Simulator.hide_export)",
            )
        self.simulator.used = True
        address = ctypes.cast(_thunk(*key), ctypes.c_void_p).value
        assert address
        return address
