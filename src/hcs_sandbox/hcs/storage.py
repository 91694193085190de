"""Virtual disks (virtdisk.dll) and container layers (computestorage.dll).

virtdisk functions return a Win32 error code (``DWORD``, 0 = ``ERROR_SUCCESS``), mapped here
with ``HRESULT_FROM_WIN32`` before the error factory sees it (learn.microsoft.com
``virtdisk/nf-virtdisk-createvirtualdisk``: "If the function succeeds, the return value is
ERROR_SUCCESS"; hcsshim ``internal/interop`` for the mapping).  Parameters as go-winio
``vhd/vhd.go`` (vendored by hcsshim) fills them:

- ``CreateVhdx``: ``VIRTUAL_STORAGE_TYPE{VHDX, Microsoft}``, ``VIRTUAL_DISK_ACCESS_NONE`` (the
  only mask allowed with version-2 parameters, per the CreateVirtualDisk reference),
  ``CREATE_VIRTUAL_DISK_FLAG_NONE``, ``CREATE_VIRTUAL_DISK_PARAMETERS`` version 2 with
  ``MaximumSize`` and ``BlockSizeInBytes`` (hcsshim uses 1 MiB);
- differencing disk (``CreateDiffVhd``): version 2 with ``ParentPath`` and
  ``OpenFlags = OPEN_VIRTUAL_DISK_FLAG_CACHED_IO``;
- ``OpenVirtualDisk``: storage type all zero (infer from the file), version-2 parameters.

computestorage functions are synchronous and return an HRESULT (Microsoft
``virtualization/api/hcs/Reference/HcsFormatWritableLayerVhd.md``, ``HcsSetupBaseOSLayer.md``,
``HcsInitializeWritableLayer.md``, ``HcsAttachLayerStorageFilter.md``,
``HcsDetachLayerStorageFilter.md``, ``HcsImportLayer.md``, ``HcsExportLayer.md``,
``HcsDestroyLayer.md``, ``HcsGetLayerVhdMountPath.md``).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import weakref
from collections.abc import Mapping
from typing import Any

from hcs_sandbox import errors
from hcs_sandbox.hcs._call import HRESULT_FROM_WIN32, check, dumps, native
from hcs_sandbox.hcs._handle import ClosingContext
from hcs_sandbox.native.types import (
    ATTACH_VIRTUAL_DISK_FLAG_NONE,
    ATTACH_VIRTUAL_DISK_PARAMETERS,
    ATTACH_VIRTUAL_DISK_VERSION_1,
    CREATE_VIRTUAL_DISK_FLAG_NONE,
    CREATE_VIRTUAL_DISK_PARAMETERS,
    CREATE_VIRTUAL_DISK_VERSION_2,
    DETACH_VIRTUAL_DISK_FLAG_NONE,
    OPEN_VIRTUAL_DISK_FLAG_CACHED_IO,
    OPEN_VIRTUAL_DISK_FLAG_NONE,
    OPEN_VIRTUAL_DISK_PARAMETERS,
    OPEN_VIRTUAL_DISK_VERSION_2,
    VIRTUAL_DISK_ACCESS_NONE,
    VIRTUAL_STORAGE_TYPE,
)

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "Vhd",
    "attach_layer_storage_filter",
    "create_vhdx",
    "create_vhdx_handle",
    "destroy_layer",
    "detach_layer_storage_filter",
    "export_layer",
    "format_writable_layer_vhd",
    "get_layer_vhd_mount_path",
    "import_layer",
    "initialize_writable_layer",
    "open_vhd",
    "setup_base_os_layer",
]

_log = logging.getLogger("hcs_sandbox.hcs")

DEFAULT_BLOCK_SIZE = 1024 * 1024  # hcsshim computestorage/helpers.go: 1 MiB blocks
PathLike = str | os.PathLike[str]
Document = str | Mapping[str, Any]


def _check_win32(code: int, *, function: str, context: str) -> None:
    code &= 0xFFFFFFFF
    if code:
        raise errors.error_from_hresult(
            HRESULT_FROM_WIN32(code), function=function, context=context
        )


def _close_vhd_handle(handle: int) -> None:
    from hcs_sandbox.native.handles import close_handle

    try:
        close_handle(handle)
    except OSError:
        _log.exception("CloseHandle on a virtual disk failed")


class Vhd(ClosingContext):
    """An open virtual disk ``HANDLE`` (closed with ``CloseHandle``); a context manager."""

    def __init__(self, handle: int, path: str) -> None:
        self._handle = handle
        self.path = path
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _close_vhd_handle, handle)

    @property
    def handle(self) -> int:
        if not self._finalizer.alive:
            raise errors.StorageError(
                f"virtual disk {self.path} is closed",
                remedy="open it again with open_vhd()",
            )
        return self._handle

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def attach(self, flags: int = ATTACH_VIRTUAL_DISK_FLAG_NONE) -> None:
        """``AttachVirtualDisk(handle, NULL, flags, 0, &params{version 1}, NULL)``."""
        params = ATTACH_VIRTUAL_DISK_PARAMETERS()
        params.Version = ATTACH_VIRTUAL_DISK_VERSION_1
        rc = native("virtdisk", "AttachVirtualDisk")(
            self.handle, None, flags, 0, ctypes.byref(params), None
        )
        _check_win32(int(rc), function="AttachVirtualDisk", context=f"attaching {self.path}")

    def detach(self) -> None:
        """``DetachVirtualDisk(handle, DETACH_VIRTUAL_DISK_FLAG_NONE, 0)``."""
        rc = native("virtdisk", "DetachVirtualDisk")(self.handle, DETACH_VIRTUAL_DISK_FLAG_NONE, 0)
        _check_win32(int(rc), function="DetachVirtualDisk", context=f"detaching {self.path}")

    def close(self) -> None:
        """``CloseHandle`` (idempotent)."""
        self._finalizer()

    def __repr__(self) -> str:
        return f"<Vhd {self.path!r}{' closed' if self.closed else ''}>"


def create_vhdx_handle(
    path: PathLike,
    size_bytes: int,
    *,
    parent: PathLike | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> Vhd:
    """``CreateVirtualDisk`` (VHDX, version-2 parameters); returns the open disk.

    With ``parent`` the new disk is a differencing disk of it (``size_bytes`` may be 0).
    """
    p = os.fspath(path)
    if size_bytes < 0 or (parent is None and size_bytes == 0):
        raise errors.SpecError(
            f"cannot create {p}: size must be a positive number of bytes, not {size_bytes}",
            field="size_bytes",
            value=size_bytes,
            allowed="a size in bytes > 0 (or 0 for a differencing disk)",
        )
    if block_size < 0:
        raise errors.SpecError(
            f"cannot create {p}: invalid block size {block_size}",
            field="block_size",
            value=block_size,
            allowed="0 (virtdisk's default) or a size in bytes such as 1048576",
        )
    storage_type = VIRTUAL_STORAGE_TYPE.vhdx()
    params = CREATE_VIRTUAL_DISK_PARAMETERS()
    params.Version = CREATE_VIRTUAL_DISK_VERSION_2
    params.Version2.MaximumSize = size_bytes
    params.Version2.BlockSizeInBytes = block_size
    if parent is not None:
        # A str assigned to a c_wchar_p field stays alive as long as ``params`` (ctypes
        # keeps it in the structure's _objects).
        params.Version2.ParentPath = os.fspath(parent)
        params.Version2.OpenFlags = OPEN_VIRTUAL_DISK_FLAG_CACHED_IO
    out = ctypes.c_void_p(None)
    rc = native("virtdisk", "CreateVirtualDisk")(
        ctypes.byref(storage_type),
        p,
        VIRTUAL_DISK_ACCESS_NONE,
        None,
        CREATE_VIRTUAL_DISK_FLAG_NONE,
        0,
        ctypes.byref(params),
        None,
        ctypes.byref(out),
    )
    _check_win32(int(rc), function="CreateVirtualDisk", context=f"creating {p}")
    return Vhd(out.value or 0, p)


def create_vhdx(
    path: PathLike,
    size_bytes: int,
    *,
    parent: PathLike | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> None:
    """Create a VHDX (or a differencing VHDX of ``parent``) and close it."""
    create_vhdx_handle(path, size_bytes, parent=parent, block_size=block_size).close()


def open_vhd(
    path: PathLike,
    access: int = VIRTUAL_DISK_ACCESS_NONE,
    flags: int = OPEN_VIRTUAL_DISK_FLAG_NONE,
    *,
    read_only: bool = False,
) -> Vhd:
    """``OpenVirtualDisk`` with version-2 parameters (``access`` must then be NONE)."""
    p = os.fspath(path)
    storage_type = VIRTUAL_STORAGE_TYPE()  # all zero: infer from the file
    params = OPEN_VIRTUAL_DISK_PARAMETERS()
    params.Version = OPEN_VIRTUAL_DISK_VERSION_2
    params.Version2.ReadOnly = 1 if read_only else 0
    out = ctypes.c_void_p(None)
    rc = native("virtdisk", "OpenVirtualDisk")(
        ctypes.byref(storage_type), p, access, flags, ctypes.byref(params), ctypes.byref(out)
    )
    _check_win32(int(rc), function="OpenVirtualDisk", context=f"opening {p}")
    return Vhd(out.value or 0, p)


# ---------------------------------------------------------------------------------------
# computestorage.dll
# ---------------------------------------------------------------------------------------


def _storage(function: str, *args: object, doing: str) -> None:
    hr = native("computestorage", function)(*args)
    check(int(hr), function=function, context=doing)


def format_writable_layer_vhd(vhd: Vhd) -> None:
    """``HcsFormatWritableLayerVhd(vhdHandle)``: format the disk NTFS for a writable layer."""
    _storage("HcsFormatWritableLayerVhd", vhd.handle, doing=f"formatting {vhd.path}")


def setup_base_os_layer(layer_path: PathLike, vhd: Vhd | None, options: Document) -> None:
    """``HcsSetupBaseOSLayer(layerPath, vhdHandle, options)`` (``OsLayerOptions``; the handle
    is NULL for ``{"Type": "Container"}``, per hcsshim ``SetupContainerBaseLayer``)."""
    p = os.fspath(layer_path)
    _storage(
        "HcsSetupBaseOSLayer",
        p,
        vhd.handle if vhd is not None else None,
        dumps(options),
        doing=f"setting up base OS layer {p}",
    )


def initialize_writable_layer(
    writable_layer_path: PathLike, layer_data: Document, options: Document | None = None
) -> None:
    """``HcsInitializeWritableLayer(writableLayerPath, layerData, options)``."""
    p = os.fspath(writable_layer_path)
    _storage(
        "HcsInitializeWritableLayer",
        p,
        dumps(layer_data),
        dumps(options),
        doing=f"initializing writable layer {p}",
    )


def attach_layer_storage_filter(layer_path: PathLike, layer_data: Document) -> None:
    """``HcsAttachLayerStorageFilter(layerPath, layerData)``."""
    p = os.fspath(layer_path)
    _storage(
        "HcsAttachLayerStorageFilter",
        p,
        dumps(layer_data),
        doing=f"attaching the layer filter to {p}",
    )


def detach_layer_storage_filter(layer_path: PathLike) -> None:
    """``HcsDetachLayerStorageFilter(layerPath)``."""
    p = os.fspath(layer_path)
    _storage("HcsDetachLayerStorageFilter", p, doing=f"detaching the layer filter from {p}")


def import_layer(layer_path: PathLike, source_folder: PathLike, layer_data: Document) -> None:
    """``HcsImportLayer(layerPath, sourceFolderPath, layerData)``."""
    p = os.fspath(layer_path)
    _storage(
        "HcsImportLayer",
        p,
        os.fspath(source_folder),
        dumps(layer_data),
        doing=f"importing layer {p}",
    )


def export_layer(
    layer_path: PathLike,
    export_folder: PathLike,
    layer_data: Document,
    options: Document | None = None,
) -> None:
    """``HcsExportLayer(layerPath, exportFolderPath, layerData, options)``
    (``ExportLayerOptions`` such as ``{"IsWritableLayer": true}``)."""
    p = os.fspath(layer_path)
    _storage(
        "HcsExportLayer",
        p,
        os.fspath(export_folder),
        dumps(layer_data),
        dumps(options),
        doing=f"exporting layer {p}",
    )


def destroy_layer(layer_path: PathLike) -> None:
    """``HcsDestroyLayer(layerPath)``."""
    p = os.fspath(layer_path)
    _storage("HcsDestroyLayer", p, doing=f"destroying layer {p}")


def get_layer_vhd_mount_path(vhd: Vhd) -> str:
    """``HcsGetLayerVhdMountPath(vhdHandle, &mountPath)`` (string freed with LocalFree)."""
    from hcs_sandbox.native.strings import take_hcs_string

    out = ctypes.c_void_p(None)
    hr = native("computestorage", "HcsGetLayerVhdMountPath")(vhd.handle, ctypes.byref(out))
    text = take_hcs_string(out)
    check(int(hr), function="HcsGetLayerVhdMountPath", context=f"mounting {vhd.path}")
    if not text:
        raise errors.StorageError(
            f"HcsGetLayerVhdMountPath returned no mount path for {vhd.path}",
            remedy="check that the disk is formatted and attached",
        )
    return text
