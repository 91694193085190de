"""The binding's marshalling, checked against CFUNCTYPE thunks (tests/native/conftest.py)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import textwrap

import pytest
from native_fakes import FakeBackend

from hcs_sandbox import errors
from hcs_sandbox.native import api, handles, loader, prototypes, strings
from hcs_sandbox.native import types as nt
from hcs_sandbox.native.loader import NativeUnavailable

HCS_E_SYSTEM_NOT_FOUND = 0x8037010E
CC = "computecore.dll"


def _as_int32(value: int) -> int:
    return ctypes.c_int32(value).value


# -- HRESULTs ----------------------------------------------------------------------------


def test_failed_hresult_comes_back_negative_and_normalizes(fake_backend: FakeBackend) -> None:
    calls: list[tuple[int | None, int | None, str | None]] = []

    def start(system: int | None, op: int | None, options: str | None) -> int:
        calls.append((system, op, options))
        return _as_int32(HCS_E_SYSTEM_NOT_FOUND)

    fake_backend.add(
        CC,
        "HcsStartComputeSystem",
        ctypes.c_int32,
        (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_wchar_p),
        start,
    )
    hr = api.computecore.HcsStartComputeSystem(0x1234, 0x5678, None)
    assert isinstance(hr, int)
    assert hr < 0
    assert hr == 0x8037010E - (1 << 32) == -2143878898
    assert errors.normalize_hresult(hr) == HCS_E_SYSTEM_NOT_FOUND
    exc = errors.error_from_hresult(hr, function="HcsStartComputeSystem")
    assert isinstance(exc, errors.NotFoundError)
    assert exc.name == "HCS_E_SYSTEM_NOT_FOUND"
    assert calls == [(0x1234, 0x5678, None)]


def test_success_hresult_is_zero(fake_backend: FakeBackend) -> None:
    fake_backend.add(CC, "HcsCancelOperation", ctypes.c_int32, (ctypes.c_void_p,), lambda op: 0)
    assert api.computecore.HcsCancelOperation(1) == 0


def test_uint64_and_enum_returns(fake_backend: FakeBackend) -> None:
    fake_backend.add(
        CC, "HcsGetOperationId", ctypes.c_uint64, (ctypes.c_void_p,), lambda op: (1 << 64) - 1
    )
    fake_backend.add(CC, "HcsGetOperationType", ctypes.c_int32, (ctypes.c_void_p,), lambda op: -1)
    assert api.computecore.HcsGetOperationId(1) == nt.HCS_INVALID_OPERATION_ID
    assert api.computecore.HcsGetOperationType(1) == nt.HcsOperationType.NONE


# -- out-strings ---------------------------------------------------------------------------


def _add_service_properties(backend: FakeBackend, text: str | None) -> list[int]:
    allocated: list[int] = []

    def get_service_properties(query: str | None, result: int) -> int:
        assert query == '{"PropertyTypes":["Basic"]}'
        out = ctypes.cast(result, ctypes.POINTER(ctypes.c_void_p))
        if text is None:
            out[0] = None
        else:
            address = backend.alloc(text)
            allocated.append(address)
            out[0] = address
        return 0

    backend.add(
        CC,
        "HcsGetServiceProperties",
        ctypes.c_int32,
        (ctypes.c_wchar_p, ctypes.c_void_p),
        get_service_properties,
    )
    return allocated


def test_out_string_is_read_and_freed_exactly_once(fake_backend: FakeBackend) -> None:
    document = '{"Properties":[{"SupportedSchemaVersions":[{"Major":2,"Minor":5}]}]} ✓'
    allocated = _add_service_properties(fake_backend, document)
    result = ctypes.c_void_p()
    hr = api.computecore.HcsGetServiceProperties(
        '{"PropertyTypes":["Basic"]}', ctypes.byref(result)
    )
    assert hr == 0
    assert result.value == allocated[0]
    assert strings.take_hcs_string(result) == document
    assert fake_backend.freed == [("LocalFree", allocated[0])]
    assert result.value is None
    # A second take is a no-op, not a double free.
    assert strings.take_hcs_string(result) is None
    assert fake_backend.freed == [("LocalFree", allocated[0])]
    assert not fake_backend.live


def test_null_out_string_is_none_and_frees_nothing(fake_backend: FakeBackend) -> None:
    _add_service_properties(fake_backend, None)
    result = ctypes.c_void_p()
    api.computecore.HcsGetServiceProperties('{"PropertyTypes":["Basic"]}', ctypes.byref(result))
    assert strings.take_hcs_string(result) is None
    assert strings.take_string(None, "local") is None
    assert strings.take_string(0, "cotaskmem") is None
    assert fake_backend.freed == []


def test_hcn_strings_use_cotaskmemfree(fake_backend: FakeBackend) -> None:
    address = fake_backend.alloc('{"Error":"x"}')
    assert strings.take_hcn_string(ctypes.c_void_p(address)) == '{"Error":"x"}'
    assert fake_backend.freed == [("CoTaskMemFree", address)]


def test_raw_address_is_accepted(fake_backend: FakeBackend) -> None:
    address = fake_backend.alloc("C:\\mount\\")
    assert strings.take_string(address, "local") == "C:\\mount\\"
    assert fake_backend.freed == [("LocalFree", address)]


def test_string_is_freed_even_when_reading_fails(
    fake_backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = fake_backend.alloc("doc")

    def boom(ptr: object, size: int = -1) -> str:
        raise MemoryError("simulated read failure")

    monkeypatch.setattr(ctypes, "wstring_at", boom)
    ptr = ctypes.c_void_p(address)
    with pytest.raises(MemoryError):
        strings.take_hcs_string(ptr)
    assert fake_backend.freed == [("LocalFree", address)]
    assert ptr.value is None


def test_unknown_allocator_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown allocator"):
        strings.take_string(1, "heap")  # type: ignore[arg-type]


# -- name resolution -------------------------------------------------------------------


def test_missing_export_raises_native_unavailable_with_remedy(fake_backend: FakeBackend) -> None:
    with pytest.raises(NativeUnavailable) as info:
        _ = api.computecore.HcsWaitForComputeSystemExit
    assert "HcsWaitForComputeSystemExit" in str(info.value)
    assert info.value.remedy
    assert isinstance(info.value, OSError)


def test_backend_specific_lookup_error_becomes_native_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class KeyErrorBackend:
        name = "windows"
        simulated = False

        def resolve(self, dll: str, symbol: str) -> int:
            raise KeyError(symbol)

    monkeypatch.setattr(loader, "_backend", KeyErrorBackend())
    with pytest.raises(NativeUnavailable) as info:
        _ = api.computestorage.HcsFormatWritableLayerVhd
    message = str(info.value)
    assert "computestorage.dll" in message
    assert "HcsFormatWritableLayerVhd" in message
    assert info.value.remedy is not None
    assert "Windows 10 1809" in info.value.remedy


def test_unknown_name_is_attribute_error(fake_backend: FakeBackend) -> None:
    with pytest.raises(AttributeError, match="prototype table"):
        _ = api.computecore.HcsDoesNotExist
    assert fake_backend.resolved == []


def test_name_in_another_dll_is_attribute_error(fake_backend: FakeBackend) -> None:
    with pytest.raises(AttributeError, match=r"computestorage\.dll"):
        _ = api.computecore.HcsSetupBaseOSLayer
    assert "HcsStartComputeSystem" in dir(api.computecore)
    assert "HcsSetupBaseOSLayer" not in dir(api.computecore)


def test_function_helper(fake_backend: FakeBackend) -> None:
    fake_backend.add(CC, "HcsCancelOperation", ctypes.c_int32, (ctypes.c_void_p,), lambda op: 7)
    assert api.function("computecore.dll", "HcsCancelOperation")(None) == 7
    assert api.function("computecore", "HcsCancelOperation")(None) == 7
    with pytest.raises(AttributeError):
        api.function("nope.dll", "X")


def test_functions_are_cached_per_backend(
    fake_backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_backend.add(CC, "HcsCancelOperation", ctypes.c_int32, (ctypes.c_void_p,), lambda op: 1)
    first = api.computecore.HcsCancelOperation
    assert api.computecore.HcsCancelOperation is first
    assert fake_backend.resolved.count((CC, "HcsCancelOperation")) == 1

    other = FakeBackend()
    other.add(CC, "HcsCancelOperation", ctypes.c_int32, (ctypes.c_void_p,), lambda op: 2)
    monkeypatch.setattr(loader, "_backend", other)
    second = api.computecore.HcsCancelOperation
    assert second is not first
    assert second(None) == 2
    assert other.resolved == [(CC, "HcsCancelOperation")]


def test_backend_identity_helpers(fake_backend: FakeBackend) -> None:
    assert api.is_simulated() is True
    assert api.backend_name() == "fake"


def test_no_backend_off_windows_names_the_remedy(monkeypatch: pytest.MonkeyPatch) -> None:
    if sys.platform == "win32":
        pytest.skip("Windows always has a backend")
    monkeypatch.delenv(loader.ENV_SIMULATOR, raising=False)
    monkeypatch.setattr(loader, "_backend", None)
    monkeypatch.setattr(loader, "_forced_simulator", None)
    with pytest.raises(NativeUnavailable) as info:
        _ = api.computecore.HcsCreateOperation
    assert info.value.remedy is not None
    assert loader.ENV_SIMULATOR in info.value.remedy


# -- calling conventions, callbacks -----------------------------------------------------


def test_functype_matches_platform() -> None:
    expected = ctypes.WINFUNCTYPE if sys.platform == "win32" else ctypes.CFUNCTYPE  # type: ignore[attr-defined,unused-ignore]
    assert nt.FUNCTYPE is expected
    cdecl = 0x1  # _ctypes.FUNCFLAG_CDECL
    if sys.platform != "win32":
        assert nt.HCS_EVENT_CALLBACK._flags_ & cdecl


def test_callback_argument_reaches_c_and_back(fake_backend: FakeBackend) -> None:
    """HcsCreateOperation(context, callback): the thunk calls the completion back."""
    seen: list[tuple[int | None, int | None]] = []

    def create_operation(context: int | None, callback: int | None) -> int:
        assert callback
        completion = nt.HCS_OPERATION_COMPLETION(callback)
        completion(0xABC, context)
        return 0xABC

    fake_backend.add(
        CC,
        "HcsCreateOperation",
        ctypes.c_void_p,
        (ctypes.c_void_p, ctypes.c_void_p),
        create_operation,
    )
    cb = nt.HCS_OPERATION_COMPLETION(lambda op, ctx: seen.append((op, ctx)))
    assert api.computecore.HcsCreateOperation(42, cb) == 0xABC
    assert seen == [(0xABC, 42)]


def test_process_information_out_struct(fake_backend: FakeBackend) -> None:
    def wait(op: int | None, timeout: int, info: int, doc: int) -> int:
        assert timeout == nt.INFINITE
        pi = ctypes.cast(info, ctypes.POINTER(nt.HCS_PROCESS_INFORMATION)).contents
        pi.ProcessId = 4242
        pi.StdOutput = 7
        ctypes.cast(doc, ctypes.POINTER(ctypes.c_void_p))[0] = None
        return 0

    fake_backend.add(
        CC,
        "HcsWaitForOperationResultAndProcessInfo",
        ctypes.c_int32,
        (ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p, ctypes.c_void_p),
        wait,
    )
    info = nt.HCS_PROCESS_INFORMATION()
    doc = ctypes.c_void_p()
    hr = api.computecore.HcsWaitForOperationResultAndProcessInfo(
        1, nt.INFINITE, ctypes.byref(info), ctypes.byref(doc)
    )
    assert hr == 0
    assert info.ProcessId == 4242
    assert info.StdOutput == 7
    assert info.StdInput is None
    assert strings.take_hcs_string(doc) is None


def test_guid_argument_is_passed_by_reference(fake_backend: FakeBackend) -> None:
    seen: list[str] = []

    def delete_network(guid_ptr: int, error_record: int) -> int:
        guid = ctypes.cast(guid_ptr, ctypes.POINTER(nt.GUID)).contents
        seen.append(str(guid))
        ctypes.cast(error_record, ctypes.POINTER(ctypes.c_void_p))[0] = fake_backend.alloc("{}")
        return _as_int32(0x803B0001)

    fake_backend.add(
        "computenetwork.dll",
        "HcnDeleteNetwork",
        ctypes.c_int32,
        (ctypes.c_void_p, ctypes.c_void_p),
        delete_network,
    )
    guid = nt.GUID.from_string("{C08CB7B8-9B3C-408E-8E30-5E16A3AEB444}")
    record = ctypes.c_void_p()
    hr = api.computenetwork.HcnDeleteNetwork(ctypes.byref(guid), ctypes.byref(record))
    assert errors.hresult_name(hr) == "HCN_E_NETWORK_NOT_FOUND"
    assert seen == ["c08cb7b8-9b3c-408e-8e30-5e16a3aeb444"]
    assert strings.take_hcn_string(record) == "{}"
    assert fake_backend.freed[-1][0] == "CoTaskMemFree"


def test_virtdisk_returns_win32_error_not_hresult(fake_backend: FakeBackend) -> None:
    fake_backend.add(
        "virtdisk.dll",
        "DetachVirtualDisk",
        ctypes.c_uint32,
        (ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32),
        lambda handle, flags, provider: 2,  # ERROR_FILE_NOT_FOUND
    )
    assert api.virtdisk.DetachVirtualDisk(5, nt.DETACH_VIRTUAL_DISK_FLAG_NONE, 0) == 2


# -- handles -------------------------------------------------------------------------------


def test_close_handle_calls_kernel32(fake_backend: FakeBackend) -> None:
    handles.close_handle(0x44)
    assert fake_backend.closed_handles == [0x44]
    handles.close_handle(0)  # NULL is ignored
    with pytest.raises(OSError, match="CloseHandle"):
        handles.close_handle(0x44)  # the fake fails a second close


def test_close_handle_in_a_c_void_p_closes_what_it_holds_and_sets_it_to_null(
    fake_backend: FakeBackend,
) -> None:
    """Given the c_void_p that holds a handle, close_handle closes what it holds and sets it
    to NULL (before the call: a failed close leaves NULL too), so a second clean-up through
    the same c_void_p closes nothing (storage's virtual disks, review RV50 F3)."""
    import ctypes

    held = ctypes.c_void_p(0x45)
    handles.close_handle(held)
    assert held.value is None
    assert fake_backend.closed_handles == [0x45]
    handles.close_handle(held)  # NULL now: nothing is closed twice
    assert fake_backend.closed_handles == [0x45]
    again = ctypes.c_void_p(0x45)  # the fake fails a second close of the same value
    with pytest.raises(OSError, match="CloseHandle"):
        handles.close_handle(again)
    assert again.value is None


@pytest.mark.skipif(sys.platform == "win32", reason="simulator handles are descriptors")
def test_handle_to_fd_passes_simulator_descriptors_through() -> None:
    read_fd, write_fd = os.pipe()
    try:
        assert handles.handle_to_fd(write_fd, readable=False) == write_fd
        assert handles.handle_to_fd(read_fd, readable=True) == read_fd
        os.write(write_fd, b"x")
        assert os.read(read_fd, 1) == b"x"
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_handle_to_fd_rejects_null() -> None:
    with pytest.raises(ValueError, match="NULL process pipe handle"):
        handles.handle_to_fd(0, readable=True)


# -- import-time behaviour -----------------------------------------------------------------


def test_import_loads_nothing_and_chooses_no_backend() -> None:
    code = textwrap.dedent(
        """
        import sys, threading
        import hcs_sandbox.native
        import hcs_sandbox.native.api
        import hcs_sandbox.native.handles
        import hcs_sandbox.native.prototypes
        import hcs_sandbox.native.strings
        import hcs_sandbox.native.types
        from hcs_sandbox.native import loader
        assert loader._backend is None, loader._backend
        assert not any(m.startswith("hcs_sandbox.sim") for m in sys.modules), sorted(sys.modules)
        assert "msvcrt" not in sys.modules or sys.platform == "win32"
        assert threading.active_count() == 1
        for ns in (hcs_sandbox.native.api.computecore, hcs_sandbox.native.api.kernel32):
            assert ns._backend is None and not ns._functions
        print("ok")
        """
    )
    env = dict(os.environ, **{loader.ENV_SIMULATOR: "1"})
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_prototype_table_is_reachable_from_every_namespace() -> None:
    for proto in prototypes.PROTOTYPES:
        namespace = getattr(api, proto.dll.removesuffix(".dll"))
        assert namespace.prototype(proto.name) is proto


def test_missing_newer_export_on_windows_names_its_minimum_os(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class OldWindows:
        name = "windows"
        simulated = False

        def resolve(self, dll: str, symbol: str) -> int:
            raise NativeUnavailable(
                f"{dll} has no export {symbol}", remedy="generic", export=symbol
            )

    monkeypatch.setattr(loader, "_backend", OldWindows())
    with pytest.raises(NativeUnavailable) as info:
        _ = api.computecore.HcsWaitForProcessExit
    assert info.value.remedy is not None
    assert "Server 2022" in info.value.remedy
    assert "optional" in info.value.remedy


def test_dll_level_failure_keeps_the_loader_remedy(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoDll:
        name = "windows"
        simulated = False

        def resolve(self, dll: str, symbol: str) -> int:
            raise NativeUnavailable(f"{dll} could not be loaded", remedy=loader.DLL_REMEDIES[dll])

    monkeypatch.setattr(loader, "_backend", NoDll())
    with pytest.raises(NativeUnavailable) as info:
        _ = api.computenetwork.HcnOpenNetwork
    assert info.value.remedy == loader.DLL_REMEDIES["computenetwork.dll"]


def test_take_hcs_string_raw_address_uses_localfree(fake_backend: FakeBackend) -> None:
    address = fake_backend.alloc("doc")
    assert strings.take_hcs_string(address) == "doc"
    assert fake_backend.freed == [("LocalFree", address)]
    assert strings.take_hcs_string(0) is None
    assert strings.take_hcs_string(None) is None
    assert strings.take_hcs_string(ctypes.c_void_p(None)) is None
    assert fake_backend.freed == [("LocalFree", address)]


def test_cached_function_does_not_leak_into_another_dll(fake_backend: FakeBackend) -> None:
    """The lock-free fast path serves only names this namespace validated and built."""
    fake_backend.add(CC, "HcsCancelOperation", ctypes.c_int32, (ctypes.c_void_p,), lambda op: 1)
    assert api.computecore.HcsCancelOperation(None) == 1
    with pytest.raises(AttributeError, match=r"computecore\.dll"):
        _ = api.computestorage.HcsCancelOperation
    with pytest.raises(AttributeError):
        _ = api.computecore._private


def test_cached_functions_miss_when_no_backend_is_chosen(
    fake_backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_backend.add(CC, "HcsCancelOperation", ctypes.c_int32, (ctypes.c_void_p,), lambda op: 1)
    first = api.computecore.HcsCancelOperation
    monkeypatch.setattr(loader, "_backend", None)
    monkeypatch.setenv(loader.ENV_SIMULATOR, "1")
    again = api.computecore.HcsCancelOperation  # chooses the simulator: built anew
    assert again is not first
    assert loader._backend is not fake_backend


def test_close_handle_follows_a_new_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    # close_handle keeps CloseHandle with the backend it came from: a new backend object
    # (reset_backend / use_simulator) gets its own CloseHandle, never the previous one's.
    first, second = FakeBackend(), FakeBackend()
    monkeypatch.setattr(loader, "_forced_simulator", None)
    monkeypatch.setattr(loader, "_backend", first)
    handles.close_handle(0x10)
    handles.close_handle(0x11)
    monkeypatch.setattr(loader, "_backend", second)
    handles.close_handle(0x12)
    monkeypatch.setattr(loader, "_backend", first)
    handles.close_handle(0x13)
    assert first.closed_handles == [0x10, 0x11, 0x13]
    assert second.closed_handles == [0x12]
