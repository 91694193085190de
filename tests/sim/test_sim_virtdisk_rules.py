"""virtdisk as Microsoft documents it (review RV22 findings 1-3): the parameters
OpenVirtualDisk and AttachVirtualDisk refuse, attachment as a property of the disk (not of the
handle that attached it), read-only and information-only handles, and HcsSetupBaseOSLayer
``Type: Vm`` on an attached disk only.  Sources are quoted in ``sim/core.py``."""

from __future__ import annotations

import ctypes
import json
from pathlib import Path

import pytest
from simapi import Api
from test_sim_hcn_storage import create_vhd

from hcs_sandbox.sim import hresults as H
from hcs_sandbox.sim.exports import GUID, VIRTUAL_STORAGE_TYPE

ACCESS_ATTACH_RO = 0x00010000  # VIRTUAL_DISK_ACCESS_* (virtdisk.h)
ACCESS_ATTACH_RW = 0x00020000
ACCESS_GET_INFO = 0x00080000
ACCESS_ALL = 0x003F0000
ATTACH_READ_ONLY = 0x1  # ATTACH_VIRTUAL_DISK_FLAG_*
ATTACH_PERMANENT = 0x4
E_INVALIDARG = H.E_INVALIDARG


class OpenParams(ctypes.Structure):
    """OPEN_VIRTUAL_DISK_PARAMETERS with its Version2/Version3 head (virtdisk.h)."""

    _fields_ = [
        ("Version", ctypes.c_int32),
        ("GetInfoOnly", ctypes.c_int32),
        ("ReadOnly", ctypes.c_int32),
        ("ResiliencyGuid", GUID),
        ("SnapshotId", GUID),
    ]


class AttachParams(ctypes.Structure):
    """ATTACH_VIRTUAL_DISK_PARAMETERS (Version, then an 8-aligned union of 16 bytes)."""

    _fields_ = [("Version", ctypes.c_int32), ("_pad", ctypes.c_int32), ("u", ctypes.c_uint64 * 2)]


@pytest.fixture
def disk(api: Api, tmp_path: Path) -> Path:
    path = tmp_path / "disk.vhdx"
    error, handle = create_vhd(api, path)
    assert error == 0
    assert api.CloseHandle(handle) == 1
    return path


def open_disk(
    api: Api,
    path: Path,
    *,
    access: int = 0,
    flags: int = 0,
    version: int | None = 2,
    read_only: bool = False,
    info_only: bool = False,
    storage: bool = True,
) -> tuple[int, int]:
    params = OpenParams(Version=version or 0, GetInfoOnly=info_only, ReadOnly=read_only)
    handle = ctypes.c_void_p()
    error = api.OpenVirtualDisk(
        ctypes.byref(VIRTUAL_STORAGE_TYPE()) if storage else None,
        str(path),
        access,
        flags,
        ctypes.byref(params) if version is not None else None,
        ctypes.byref(handle),
    )
    return error, handle.value or 0


def attach(api: Api, handle: int, flags: int = 0, version: int | None = 1) -> int:
    params = AttachParams(Version=version or 0)
    return int(
        api.AttachVirtualDisk(
            handle, None, flags, 0, ctypes.byref(params) if version is not None else None, None
        )
    )


def mount_path(api: Api, handle: int) -> int:
    out = ctypes.c_void_p()
    hr = api.HcsGetLayerVhdMountPath(handle, ctypes.byref(out)) & 0xFFFFFFFF
    api.take(out)
    return int(hr)


def test_open_refuses_what_the_reference_lists(api: Api, disk: Path) -> None:
    """nf-virtdisk-openvirtualdisk.md: ERROR_INVALID_PARAMETER (87) for a NULL
    VirtualStorageType, an access mask outside VIRTUAL_DISK_ACCESS_ALL, unknown flags, a
    parameters version other than 1/2 (3 exists since; 0 is "Not supported")."""
    assert open_disk(api, disk, storage=False) == (H.ERROR_INVALID_PARAMETER, 0)
    assert open_disk(api, disk, access=0xFFFFFFFF)[0] == H.ERROR_INVALID_PARAMETER
    assert open_disk(api, disk, access=ACCESS_ALL | 0x1)[0] == H.ERROR_INVALID_PARAMETER
    assert open_disk(api, disk, flags=0x80000000)[0] == H.ERROR_INVALID_PARAMETER
    assert open_disk(api, disk, flags=0x1000)[0] == H.ERROR_INVALID_PARAMETER
    assert open_disk(api, disk, version=0)[0] == H.ERROR_INVALID_PARAMETER
    assert open_disk(api, disk, version=99)[0] == H.ERROR_INVALID_PARAMETER
    for good in (
        open_disk(api, disk, version=3),
        open_disk(api, disk, flags=0x800 | 0x8),  # SUPPORT_ENCRYPTED_FILES | CACHED_IO
        open_disk(api, disk, version=None, access=ACCESS_ALL),
        open_disk(api, disk, version=1, access=ACCESS_ALL),
    ):
        assert good[0] == 0
        assert api.CloseHandle(good[1]) == 1


def test_attachment_belongs_to_the_disk(api: Api, disk: Path) -> None:
    """Attach twice fails (through the same handle or another); the mount path is asked
    through any handle; the disk stays attached while any handle is open and is detached when
    the last one closes (nf-virtdisk-detachvirtualdisk.md)."""
    _, h1 = open_disk(api, disk)
    _, h2 = open_disk(api, disk)
    assert mount_path(api, h2) == E_INVALIDARG  # not attached yet
    assert attach(api, h1) == 0
    assert attach(api, h1) == H.ERROR_VHD_INVALID_STATE
    assert attach(api, h2) == H.ERROR_VHD_INVALID_STATE
    assert mount_path(api, h2) == 0  # attached through h1, asked through h2
    assert api.CloseHandle(h1) == 1
    assert mount_path(api, h2) == 0  # h2 still open: still attached
    assert api.CloseHandle(h2) == 1
    _, h3 = open_disk(api, disk)
    assert mount_path(api, h3) == E_INVALIDARG  # the last handle closed: detached
    assert attach(api, h3) == 0
    assert api.CloseHandle(h3) == 1


def test_attach_refuses_unknown_flags_and_versions(api: Api, disk: Path) -> None:
    _, handle = open_disk(api, disk)
    assert attach(api, handle, flags=0x80000000) == H.ERROR_INVALID_PARAMETER
    assert attach(api, handle, flags=0x800) == H.ERROR_INVALID_PARAMETER
    assert attach(api, handle, version=0) == H.ERROR_INVALID_PARAMETER
    assert attach(api, handle, version=99) == H.ERROR_INVALID_PARAMETER
    assert attach(api, handle, version=2) == 0  # hcsshim attaches with version 2
    assert api.CloseHandle(handle) == 1


def test_detach_rules(api: Api, disk: Path) -> None:
    """Flags other than NONE: ERROR_INVALID_PARAMETER; not attached, or other handles open:
    a failure (ERROR_VHD_INVALID_STATE, code UNCONFIRMED)."""
    _, h1 = open_disk(api, disk)
    assert api.DetachVirtualDisk(h1, 0, 0) == H.ERROR_VHD_INVALID_STATE  # never attached
    assert attach(api, h1) == 0
    assert api.DetachVirtualDisk(h1, 1, 0) == H.ERROR_INVALID_PARAMETER
    _, h2 = open_disk(api, disk)
    assert api.DetachVirtualDisk(h1, 0, 0) == H.ERROR_VHD_INVALID_STATE  # h2 is open
    assert api.DetachVirtualDisk(h2, 0, 0) == H.ERROR_VHD_INVALID_STATE
    assert api.CloseHandle(h2) == 1
    assert api.DetachVirtualDisk(h1, 0, 0) == 0
    assert mount_path(api, h1) == E_INVALIDARG
    assert api.DetachVirtualDisk(h1, 0, 0) == H.ERROR_VHD_INVALID_STATE  # detached already
    assert api.CloseHandle(h1) == 1


def test_a_permanent_attach_outlives_its_handle(api: Api, disk: Path) -> None:
    _, handle = open_disk(api, disk)
    assert attach(api, handle, flags=ATTACH_PERMANENT) == 0
    assert api.CloseHandle(handle) == 1
    _, again = open_disk(api, disk)
    assert mount_path(api, again) == 0  # still attached for the host
    assert attach(api, again) == H.ERROR_VHD_INVALID_STATE
    assert api.DetachVirtualDisk(again, 0, 0) == 0
    assert mount_path(api, again) == E_INVALIDARG
    assert api.CloseHandle(again) == 1


def test_read_only_and_info_only_handles_cannot_write(api: Api, disk: Path) -> None:
    """Version2.ReadOnly / GetInfoOnly (ns-virtdisk-open_virtual_disk_parameters.md), or a
    version-1 mask without VIRTUAL_DISK_ACCESS_ATTACH_RW: no format, no read/write attach
    (nf-virtdisk-attachvirtualdisk.md); codes UNCONFIRMED."""
    _, ro = open_disk(api, disk, read_only=True)
    assert api.HcsFormatWritableLayerVhd(ro) & 0xFFFFFFFF == H.E_ACCESSDENIED
    assert attach(api, ro) == H.ERROR_ACCESS_DENIED
    assert attach(api, ro, flags=ATTACH_READ_ONLY) == 0
    assert api.CloseHandle(ro) == 1
    _, info = open_disk(api, disk, info_only=True)
    assert attach(api, info, flags=ATTACH_READ_ONLY) == H.ERROR_ACCESS_DENIED
    assert api.HcsFormatWritableLayerVhd(info) & 0xFFFFFFFF == H.E_ACCESSDENIED
    assert api.CloseHandle(info) == 1
    _, v1_info = open_disk(api, disk, version=1, access=ACCESS_GET_INFO)
    assert attach(api, v1_info, flags=ATTACH_READ_ONLY) == H.ERROR_ACCESS_DENIED
    assert api.HcsFormatWritableLayerVhd(v1_info) & 0xFFFFFFFF == H.E_ACCESSDENIED
    assert api.CloseHandle(v1_info) == 1
    _, v1_ro = open_disk(api, disk, version=1, access=ACCESS_ATTACH_RO | ACCESS_GET_INFO)
    assert attach(api, v1_ro) == H.ERROR_ACCESS_DENIED
    assert attach(api, v1_ro, flags=ATTACH_READ_ONLY) == 0
    # A writable handle to a disk attached read-only cannot format it either.
    _, rw = open_disk(api, disk)
    assert api.HcsFormatWritableLayerVhd(rw) & 0xFFFFFFFF == H.E_ACCESSDENIED
    assert api.CloseHandle(v1_ro) == 1
    assert api.CloseHandle(rw) == 1
    # The project's own calls: version 2, access NONE: format and read/write attach work.
    _, plain = open_disk(api, disk)
    assert api.HcsFormatWritableLayerVhd(plain) == 0
    assert json.loads(disk.read_text())["Formatted"] is True
    assert attach(api, plain) == 0
    assert api.CloseHandle(plain) == 1


def test_setup_base_os_layer_vm_needs_the_disk_attached(
    api: Api, disk: Path, tmp_path: Path
) -> None:
    """hcsshim computestorage/helpers.go SetupUtilityVMBaseLayer: "the base vhdx must be
    attached when calling `SetupBaseOSLayer`"."""
    options = json.dumps({"Type": "Vm"})
    layers = [tmp_path / f"uvm{i}" for i in range(3)]
    for layer in layers:
        layer.mkdir()
    _, handle = open_disk(api, disk)
    assert api.HcsSetupBaseOSLayer(str(layers[0]), handle, options) & 0xFFFFFFFF == E_INVALIDARG
    assert attach(api, handle, flags=ATTACH_READ_ONLY) == 0
    assert api.HcsSetupBaseOSLayer(str(layers[0]), handle, options) & 0xFFFFFFFF == H.E_ACCESSDENIED
    assert api.DetachVirtualDisk(handle, 0, 0) == 0
    assert attach(api, handle) == 0
    assert api.HcsSetupBaseOSLayer(str(layers[1]), handle, options) == 0
    assert api.DetachVirtualDisk(handle, 0, 0) == 0
    assert api.CloseHandle(handle) == 1
    # Attached through another handle of the same disk counts too.
    _, first = open_disk(api, disk)
    _, second = open_disk(api, disk)
    assert attach(api, first) == 0
    assert api.HcsSetupBaseOSLayer(str(layers[2]), second, options) == 0
    assert api.CloseHandle(first) == 1
    assert api.CloseHandle(second) == 1


def test_format_rewrites_the_disk_in_place_or_finds_it_gone(api: Api, tmp_path: Path) -> None:
    """HcsFormatWritableLayerVhd reads the disk file and rewrites it in place through one
    descriptor: the same file, every other field kept, nothing of the old content left after
    the new (cut to length); a file that is no longer a simulated disk, or is gone, is
    ERROR_FILE_NOT_FOUND as an HRESULT, and nothing is written.  Its VolumeId is new."""
    path = tmp_path / "a.vhdx"
    error, handle = create_vhd(api, path, size=1 << 30)
    assert error == 0
    before = json.loads(path.read_text())
    path.write_text(json.dumps(before) + " " * 4096)  # longer than what format writes
    inode = path.stat().st_ino
    assert api.HcsFormatWritableLayerVhd(handle) == 0
    assert path.stat().st_ino == inode
    after = json.loads(path.read_text())
    # A new volume: its guest files are none of the old ones' (test_sim_guest_disk.py).
    assert after.pop("VolumeId") != before.pop("VolumeId")
    assert after == {**before, "Formatted": True}
    assert not path.read_text().endswith(" ")  # cut to the new length
    path.write_text('{"NotADisk": 1}')
    assert api.HcsFormatWritableLayerVhd(handle) & 0xFFFFFFFF == H.ERROR_FILE_NOT_FOUND_HR
    assert path.read_text() == '{"NotADisk": 1}'
    path.unlink()
    assert api.HcsFormatWritableLayerVhd(handle) & 0xFFFFFFFF == H.ERROR_FILE_NOT_FOUND_HR
    assert not path.exists()
    assert api.CloseHandle(handle) == 1
