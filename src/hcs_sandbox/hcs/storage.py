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
import functools
import logging
import os
import weakref
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from hcs_sandbox import errors
from hcs_sandbox.hcs._call import HRESULT_FROM_WIN32, check, dumps, native
from hcs_sandbox.hcs._handle import ClosingContext, HandleGuard
from hcs_sandbox.native import handles as _handles
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
    "create_formatted_vhdx",
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
_T = TypeVar("_T")
Document = str | Mapping[str, Any]


def _check_win32(code: int, *, function: str, context: str) -> None:
    code &= 0xFFFFFFFF
    if code:
        raise errors.error_from_hresult(
            HRESULT_FROM_WIN32(code), function=function, context=context
        )


def _close_vhd_handle(handle: int | ctypes.c_void_p) -> None:
    """Close a virtual disk's handle; a failure of any kind is logged, not raised (as the
    shared handle close does: one rule for every caller).

    Given the ``c_void_p`` that holds the handle, it closes what that still holds and sets it
    to NULL as ``CloseHandle`` is called (:func:`~hcs_sandbox.native.handles.close_handle`):
    every clean-up that may close a new disk's handle closes it through the one ``c_void_p``
    the virtdisk call wrote it to, so whichever comes first closes it and the others find
    NULL (see :func:`_new_disk`)."""
    try:
        _handles.close_handle(handle)
    except Exception:
        _log.exception("CloseHandle on a virtual disk failed")


def _vhd_closed_error(path: str, function: str) -> errors.StorageError:
    """The error for a call on a virtual disk after it was closed."""
    return errors.StorageError(
        f"virtual disk {path} is closed",
        remedy="open it again with open_vhd()",
    )


def _finalize_vhd(guard: HandleGuard, path: str) -> None:
    """Safety net (weakref.finalize): release a handle the program forgot to close.  It holds
    the guard, never the :class:`Vhd`, and the guard closes natively once."""
    if not guard.closed:
        _log.debug("virtual disk %s was not closed; closing its handle", path)
        guard.close()


class Vhd(ClosingContext):
    """An open virtual disk ``HANDLE`` (closed with ``CloseHandle``); a context manager.

    The handle is owned through a :class:`~hcs_sandbox.hcs._handle.HandleGuard`, as a
    ``ComputeSystem``'s is: every call that uses it (``AttachVirtualDisk``,
    ``DetachVirtualDisk``, ``HcsFormatWritableLayerVhd``, ``HcsSetupBaseOSLayer``,
    ``HcsGetLayerVhdMountPath``) counts as in flight, and :meth:`close` refuses new calls at
    once but runs ``CloseHandle`` only when the last call returned."""

    def __init__(self, handle: int | ctypes.c_void_p, path: str) -> None:
        """``handle``: the open handle, or the ``c_void_p`` a virtdisk call wrote it to.  The
        handle is closed through that ``c_void_p`` (a new one for an int): a clean-up that
        closes what it still holds (:func:`_new_disk`'s, after a Ctrl+C while this object was
        being made or returned) and this object's close are then one close, never two."""
        self.path = path
        held = handle if isinstance(handle, ctypes.c_void_p) else ctypes.c_void_p(handle or None)
        self._guard = HandleGuard(
            held,
            _close_vhd_handle,
            f"virtual disk {path}",
            closed_error=functools.partial(_vhd_closed_error, path),
        )
        self._finalizer = weakref.finalize(self, _finalize_vhd, self._guard, path)

    @property
    def handle(self) -> int:
        """The raw handle (not guarded: a call with it may race :meth:`close`; the
        binding's own calls go through :meth:`_call`)."""
        if self._guard.closed:
            raise self._guard.closed_error("Vhd.handle")
        return self._guard.handle

    @property
    def closed(self) -> bool:
        return self._guard.closed

    def _call(self, function: str, use: Callable[[int], _T]) -> _T:
        """``use(handle)`` as a call in flight on this disk (raises once it is closed)."""
        return self._guard.call(function, use)

    def attach(self, flags: int = ATTACH_VIRTUAL_DISK_FLAG_NONE) -> None:
        """``AttachVirtualDisk(handle, NULL, flags, 0, &params{version 1}, NULL)``."""
        params = ATTACH_VIRTUAL_DISK_PARAMETERS()
        params.Version = ATTACH_VIRTUAL_DISK_VERSION_1
        attach = native("virtdisk", "AttachVirtualDisk")
        rc = self._call(
            "AttachVirtualDisk",
            lambda handle: attach(handle, None, flags, 0, ctypes.byref(params), None),
        )
        _check_win32(int(rc), function="AttachVirtualDisk", context=f"attaching {self.path}")

    def detach(self) -> None:
        """``DetachVirtualDisk(handle, DETACH_VIRTUAL_DISK_FLAG_NONE, 0)``."""
        detach = native("virtdisk", "DetachVirtualDisk")
        rc = self._call(
            "DetachVirtualDisk",
            lambda handle: detach(handle, DETACH_VIRTUAL_DISK_FLAG_NONE, 0),
        )
        _check_win32(int(rc), function="DetachVirtualDisk", context=f"detaching {self.path}")

    def close(self) -> None:
        """``CloseHandle`` (idempotent; deferred while a call that uses the disk runs)."""
        if self._guard.closed:
            return
        self._guard.close()
        self._finalizer.detach()  # last (review RV61 F1: see ComputeSystem.close)

    def __repr__(self) -> str:
        return f"<Vhd {self.path!r}{' closed' if self.closed else ''}>"


def _new_disk(
    function: str,
    call: Callable[[], int],
    out: ctypes.c_void_p,
    p: str,
    *,
    doing: str,
    take: Callable[[ctypes.c_void_p, str], _T],
) -> _T:
    """``call()`` (``CreateVirtualDisk`` or ``OpenVirtualDisk``, which writes the new handle to
    ``out``), its check, and ``take(out, p)``, which gives the handle its owner (a
    :class:`Vhd`) or uses and closes it, all in one ``try``.

    A Ctrl+C is raised where CPython next runs the pending handler: at the next Python
    call (its ``RESUME``), after a C call, at a backward jump, so anywhere from the moment the
    native call returns (on Windows the call itself is not interrupted).  Before this, the
    handle crossed a frame (returned to the caller) with no owner and a handler that ran at
    the caller's next call leaked it (reviews RV45, RV49 F4, RV50 F3).  Here it never leaves
    ``out`` while it has no owner: after a failure or a Ctrl+C anywhere in this ``try`` the
    clean-up closes what ``out`` still holds.  ``take``'s owner or close takes it from ``out``
    too (:func:`_close_vhd_handle`, :class:`Vhd`), so the handle is closed once.  After a
    failed call (``rc`` non-zero) ``out`` holds no handle and is never closed; ``rc`` is None
    only when the call did not return, or a Ctrl+C came as it returned: then ``out`` is closed
    if the call wrote a handle to it."""
    rc: int | None = None
    try:
        rc = int(call())
        _check_win32(rc, function=function, context=f"{doing} {p}")
        return take(out, p)
    except BaseException:
        if not rc:  # made (or a Ctrl+C as the call returned): not after a failed call
            _close_vhd_handle(out)  # what out still holds; NULL once it was closed
        raise


def _close_new_disk(out: ctypes.c_void_p, p: str) -> None:
    """:func:`create_vhdx`'s use of the new disk's handle: close it."""
    _close_vhd_handle(out)


def _format_new_disk(out: ctypes.c_void_p, p: str) -> None:
    """:func:`create_formatted_vhdx`'s use of the new disk's handle: format, then close it
    whether the format succeeded or not (a failed close is logged, never raised over the
    format's error)."""
    try:
        _storage("HcsFormatWritableLayerVhd", out.value or 0, doing=f"formatting {p}")
    finally:
        _close_vhd_handle(out)


def _create_virtual_disk(
    path: PathLike,
    size_bytes: int,
    parent: PathLike | None,
    block_size: int,
    take: Callable[[ctypes.c_void_p, str], _T],
) -> _T:
    """``CreateVirtualDisk`` (VHDX, version-2 parameters), then ``take(out, path)`` with the
    ``c_void_p`` holding the new handle (:func:`_new_disk`)."""
    p = os.fspath(path)
    if parent is not None and size_bytes != 0:
        # CREATE_VIRTUAL_DISK_PARAMETERS.Version2.MaximumSize: "If a ParentPath is specified,
        # this value must be zero." (a differencing disk has its parent's size).
        raise errors.SpecError(
            f"cannot create {p}: a differencing disk has its parent's size, so size_bytes "
            f"must be 0, not {size_bytes}",
            field="size_bytes",
            value=size_bytes,
            allowed="0 for a differencing disk (virtdisk: MaximumSize must be zero with a parent)",
        )
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

    def call() -> int:
        return int(
            native("virtdisk", "CreateVirtualDisk")(
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
        )

    return _new_disk("CreateVirtualDisk", call, out, p, doing="creating", take=take)


def create_vhdx_handle(
    path: PathLike,
    size_bytes: int,
    *,
    parent: PathLike | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> Vhd:
    """``CreateVirtualDisk`` (VHDX, version-2 parameters); returns the open disk.

    With ``parent`` the new disk is a differencing disk of it: it has the parent's size, and
    ``size_bytes`` must be 0 (virtdisk refuses any other MaximumSize with a ParentPath).
    """
    return _create_virtual_disk(path, size_bytes, parent, block_size, Vhd)


def create_vhdx(
    path: PathLike,
    size_bytes: int,
    *,
    parent: PathLike | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> None:
    """Create a VHDX (or a differencing VHDX of ``parent``, ``size_bytes`` 0) and close it.

    The handle never leaves the call's clean-up (:func:`_new_disk`), so no call can be in
    flight on it: it is closed at once, without the :class:`Vhd` wrapper's guard and
    finalizer."""
    _create_virtual_disk(path, size_bytes, parent, block_size, _close_new_disk)


def create_formatted_vhdx(
    path: PathLike, size_bytes: int, *, block_size: int = DEFAULT_BLOCK_SIZE
) -> None:
    """A writable-layer VHDX: ``CreateVirtualDisk`` (VHDX, version-2 parameters) →
    ``HcsFormatWritableLayerVhd`` on the handle it returned → ``CloseHandle``, as hcsshim's
    ``computestorage/helpers.go`` ``SetupContainerBaseLayer`` makes one.

    The same native calls, arguments and errors as ``with create_vhdx_handle(path, size) as
    vhd: format_writable_layer_vhd(vhd)``.  The handle never leaves the call's clean-up
    (:func:`_new_disk`) and the format has returned before it is closed (no call can be in
    flight on it), so it goes without the :class:`Vhd` wrapper's guard and finalizer, as
    :func:`create_vhdx`'s does; it is closed whether the format succeeded or not, and a
    failed close is logged."""
    _create_virtual_disk(path, size_bytes, None, block_size, _format_new_disk)


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

    def call() -> int:
        return int(
            native("virtdisk", "OpenVirtualDisk")(
                ctypes.byref(storage_type),
                p,
                access,
                flags,
                ctypes.byref(params),
                ctypes.byref(out),
            )
        )

    return _new_disk("OpenVirtualDisk", call, out, p, doing="opening", take=Vhd)


# ---------------------------------------------------------------------------------------
# computestorage.dll
# ---------------------------------------------------------------------------------------


def _storage(function: str, *args: object, doing: str) -> None:
    hr = native("computestorage", function)(*args)
    check(int(hr), function=function, context=doing)


def format_writable_layer_vhd(vhd: Vhd) -> None:
    """``HcsFormatWritableLayerVhd(vhdHandle)``: format the disk NTFS for a writable layer."""
    vhd._call(
        "HcsFormatWritableLayerVhd",
        lambda handle: _storage(
            "HcsFormatWritableLayerVhd", handle, doing=f"formatting {vhd.path}"
        ),
    )


def setup_base_os_layer(layer_path: PathLike, vhd: Vhd | None, options: Document) -> None:
    """``HcsSetupBaseOSLayer(layerPath, vhdHandle, options)`` (``OsLayerOptions``; the handle
    is NULL for ``{"Type": "Container"}``, per hcsshim ``SetupContainerBaseLayer``).  For
    ``{"Type": "Vm"}`` the disk must be attached (``vhd.attach()`` before, ``vhd.detach()``
    after): hcsshim ``SetupUtilityVMBaseLayer``, "the base vhdx must be attached when calling
    `SetupBaseOSLayer`"."""
    p = os.fspath(layer_path)
    document = dumps(options)

    def setup(handle: int | None) -> None:
        _storage("HcsSetupBaseOSLayer", p, handle, document, doing=f"setting up base OS layer {p}")

    if vhd is None:
        setup(None)
    else:
        vhd._call("HcsSetupBaseOSLayer", setup)


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
    call = native("computestorage", "HcsGetLayerVhdMountPath")
    hr = vhd._call("HcsGetLayerVhdMountPath", lambda handle: call(handle, ctypes.byref(out)))
    text = take_hcs_string(out)
    check(int(hr), function="HcsGetLayerVhdMountPath", context=f"mounting {vhd.path}")
    if not text:
        raise errors.StorageError(
            f"HcsGetLayerVhdMountPath returned no mount path for {vhd.path}",
            remedy="check that the disk is formatted and attached",
        )
    return text
