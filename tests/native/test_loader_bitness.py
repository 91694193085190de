"""A 32-bit Python on Windows that cannot load an HCS DLL is told about its bitness first
(it sees SysWOW64, not System32: Microsoft, "File System Redirector")."""

from __future__ import annotations

import ctypes
import sys

import pytest

from hcs_sandbox.native import loader


def _fail(name: str, use_last_error: bool = False) -> None:
    raise OSError(126, f"could not load {name}")


@pytest.mark.parametrize("bits32", [True, False])
def test_the_remedy_for_a_dll_that_does_not_load(
    monkeypatch: pytest.MonkeyPatch, bits32: bool
) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(ctypes, "WinDLL", _fail, raising=False)
    monkeypatch.setattr(loader, "_is_32bit_process", lambda: bits32)
    with pytest.raises(loader.NativeUnavailable) as caught:
        loader.WindowsBackend().resolve("computecore.dll", "HcsCreateOperation")
    remedy = caught.value.remedy or ""
    feature = loader.DLL_REMEDIES["computecore.dll"]
    if bits32:
        assert remedy == f"{loader.BITNESS_REMEDY}; otherwise {feature}"
        assert "use a 64-bit Python" in remedy
    else:
        assert remedy == feature


def test_a_dll_of_every_windows_gets_no_bitness_remedy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "_is_32bit_process", lambda: True)
    assert loader._load_remedy("kernel32.dll") == loader.DLL_REMEDIES["kernel32.dll"]


def test_this_process_bitness_is_read_from_the_pointer_size() -> None:
    assert loader._is_32bit_process() is (ctypes.sizeof(ctypes.c_void_p) == 4)
