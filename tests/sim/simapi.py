"""Helpers for calling the simulator's exports directly through ctypes (tests/sim)."""

from __future__ import annotations

import ctypes
import json
import os
import uuid
from typing import Any

from hcs_sandbox.native.loader import get_backend
from hcs_sandbox.sim.exports import EXPORTS, GUID, HCS_PROCESS_INFORMATION

CC = "computecore.dll"
INFINITE = 0xFFFFFFFF
DLL_OF = {name: dll for dll, name in EXPORTS}


def vm_doc(**vm: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "SchemaVersion": {"Major": 2, "Minor": 1},
        "Owner": "tests",
        "VirtualMachine": {"ComputeTopology": {"Memory": {"SizeInMB": 1024}}, **vm},
    }
    return doc


class Api:
    """Call ``api.HcsXxx(...)`` for any export; helpers wrap the common sequences."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}
        self.backend = get_backend()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in DLL_OF:
            raise AttributeError(name)
        fn = self._cache.get(name)
        if fn is None:
            dll = DLL_OF[name]
            restype, argtypes = EXPORTS[(dll, name)]
            fn = ctypes.CFUNCTYPE(restype, *argtypes)(self.backend.resolve(dll, name))
            self._cache[name] = fn
        return fn

    def take(self, pointer: ctypes.c_void_p, free: str = "LocalFree") -> str | None:
        if not pointer.value:
            return None
        text = ctypes.wstring_at(pointer.value)
        getattr(self, free)(pointer.value)
        return text

    def wait(self, op: int, timeout: int = 10_000) -> tuple[int, str | None]:
        result = ctypes.c_void_p()
        hr = self.HcsWaitForOperationResult(op, timeout, ctypes.byref(result)) & 0xFFFFFFFF
        return hr, self.take(result)

    def call(self, name: str, *args: Any, timeout: int = 10_000) -> tuple[int, str | None]:
        """Run an async export with a fresh operation; return (hr, result document)."""
        op = self.HcsCreateOperation(None, None)
        try:
            hr = getattr(self, name)(*args[:1], op, *args[1:]) & 0xFFFFFFFF
            if hr:
                return hr, None
            return self.wait(op, timeout)
        finally:
            self.HcsCloseOperation(op)

    def create(self, system_id: str, doc: dict[str, Any] | str) -> tuple[int, int, str | None]:
        handle = ctypes.c_void_p()
        op = self.HcsCreateOperation(None, None)
        text = doc if isinstance(doc, str) else json.dumps(doc)
        hr = self.HcsCreateComputeSystem(system_id, text, op, None, ctypes.byref(handle))
        assert hr == 0, hex(hr & 0xFFFFFFFF)
        hr, result = self.wait(op)
        self.HcsCloseOperation(op)
        return hr, handle.value or 0, result

    def running(self, system_id: str, doc: dict[str, Any] | None = None) -> int:
        hr, handle, result = self.create(system_id, doc or vm_doc(GuestConnection={}))
        assert hr == 0, result
        hr, result = self.call("HcsStartComputeSystem", handle, None)
        assert hr == 0, result
        return handle

    def state(self, handle: int) -> str:
        hr, result = self.call("HcsGetComputeSystemProperties", handle, None)
        assert hr == 0, result
        assert result is not None
        return str(json.loads(result)["State"])

    def close(self, handle: int) -> None:
        self.HcsCloseComputeSystem(handle)

    def spawn(self, system: int, command: str, **params: Any) -> Process:
        parameters = {
            "CommandLine": command,
            "CreateStdInPipe": True,
            "CreateStdOutPipe": True,
            "CreateStdErrPipe": True,
            **params,
        }
        process = ctypes.c_void_p()
        op = self.HcsCreateOperation(None, None)
        hr = self.HcsCreateProcess(system, json.dumps(parameters), op, None, ctypes.byref(process))
        assert hr == 0, hex(hr & 0xFFFFFFFF)
        info = HCS_PROCESS_INFORMATION()
        result = ctypes.c_void_p()
        hr = self.HcsWaitForOperationResultAndProcessInfo(
            op, 10_000, ctypes.byref(info), ctypes.byref(result)
        )
        doc = self.take(result)
        self.HcsCloseOperation(op)
        return Process(self, process.value or 0, hr & 0xFFFFFFFF, doc, info)


class Process:
    def __init__(
        self, api: Api, handle: int, hr: int, doc: str | None, info: HCS_PROCESS_INFORMATION
    ) -> None:
        self.api, self.handle, self.hr, self.doc = api, handle, hr, doc
        self.pid = info.ProcessId
        self.stdin: int | None = info.StdInput
        self.stdout: int | None = info.StdOutput
        self.stderr: int | None = info.StdError

    def communicate(self, data: bytes = b"") -> tuple[bytes, bytes]:
        if self.stdin is not None:
            if data:
                os.write(self.stdin, data)
            os.close(self.stdin)
            self.stdin = None
        out = _read_all(self.stdout)
        err = _read_all(self.stderr)
        self.stdout = self.stderr = None
        return out, err

    def status(self) -> dict[str, Any]:
        hr, doc = self.api.call("HcsGetProcessProperties", self.handle, None)
        assert hr == 0, doc
        assert doc is not None
        return dict(json.loads(doc))

    def wait_exit(self, timeout: float = 10.0) -> int:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status()
            if status["Exited"]:
                return int(status["ExitCode"])
            time.sleep(0.02)
        raise AssertionError("process did not exit")

    def close(self) -> None:
        for fd in (self.stdin, self.stdout, self.stderr):
            if fd is not None:
                os.close(fd)
        self.stdin = self.stdout = self.stderr = None
        self.api.HcsCloseProcess(self.handle)


def _read_all(fd: int | None) -> bytes:
    if fd is None:
        return b""
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def guid(value: str | None = None) -> GUID:
    raw = uuid.UUID(value) if value else uuid.UUID(int=0)
    g = GUID()
    ctypes.memmove(ctypes.byref(g), raw.bytes_le, 16)
    return g
