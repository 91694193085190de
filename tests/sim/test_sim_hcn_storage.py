"""HCN networks/endpoints, virtdisk, computestorage, grants."""

from __future__ import annotations

import ctypes
import json
import uuid
from pathlib import Path

import pytest
from simapi import Api, guid, vm_doc

from hcs_sandbox.sim import hresults as H
from hcs_sandbox.sim.exports import (
    CREATE_VIRTUAL_DISK_PARAMETERS_V1,
    CREATE_VIRTUAL_DISK_PARAMETERS_V2,
    VIRTUAL_STORAGE_TYPE,
)

NAT = {
    "Name": "sbx-nat",
    "Type": "NAT",
    "MacPool": {
        "Ranges": [{"StartMacAddress": "00-15-5D-52-C0-00", "EndMacAddress": "00-15-5D-52-CF-FF"}]
    },
    "Ipams": [
        {
            "Type": "Static",
            "Subnets": [
                {
                    "IpAddressPrefix": "192.168.100.0/24",
                    "Routes": [{"NextHop": "192.168.100.1", "DestinationPrefix": "0.0.0.0/0"}],
                }
            ],
        }
    ],
    "SchemaVersion": {"Major": 2, "Minor": 0},
}


def hcn(api: Api, name: str, *args: object) -> tuple[int, str | None]:
    error = ctypes.c_void_p()
    hr = getattr(api, name)(*args, ctypes.byref(error)) & 0xFFFFFFFF
    return hr, api.take(error, "CoTaskMemFree")


def query(api: Api, name: str, handle: int) -> dict[str, object]:
    props = ctypes.c_void_p()
    hr, err = hcn(
        api, name, handle, '{"SchemaVersion":{"Major":2,"Minor":0},"Flags":0}', ctypes.byref(props)
    )
    assert hr == 0, err
    return dict(json.loads(api.take(props, "CoTaskMemFree") or ""))


def test_network_endpoint_lifecycle(api: Api) -> None:
    net = ctypes.c_void_p()
    hr, err = hcn(api, "HcnCreateNetwork", ctypes.byref(guid()), json.dumps(NAT), ctypes.byref(net))
    assert (hr, err) == (0, None)
    props = query(api, "HcnQueryNetworkProperties", net.value or 0)
    net_id = str(props["ID"])
    assert uuid.UUID(net_id)
    hr, err = hcn(
        api,
        "HcnCreateNetwork",
        ctypes.byref(guid(net_id)),
        json.dumps(NAT),
        ctypes.byref(ctypes.c_void_p()),
    )
    assert hr == H.HCN_E_NETWORK_ALREADY_EXISTS
    assert json.loads(err or "")["ErrorCode"] == H.HCN_E_NETWORK_ALREADY_EXISTS

    ep = ctypes.c_void_p()
    body = json.dumps(
        {"Name": "ep1", "HostComputeNetwork": net_id, "SchemaVersion": {"Major": 2, "Minor": 0}}
    )
    hr, err = hcn(api, "HcnCreateEndpoint", net.value, ctypes.byref(guid()), body, ctypes.byref(ep))
    assert hr == 0, err
    endpoint = query(api, "HcnQueryEndpointProperties", ep.value or 0)
    assert endpoint["IpConfigurations"] == [{"IpAddress": "192.168.100.2", "PrefixLength": 24}]
    # HNS assigns the MAC from the network's MacPool: the pool's first free address.
    assert endpoint["MacAddress"] == "00-15-5D-52-C0-00"
    listing = ctypes.c_void_p()
    filt = json.dumps(
        {"SchemaVersion": {"Major": 2, "Minor": 0}, "Filter": json.dumps({"Name": "ep1"})}
    )
    assert hcn(api, "HcnEnumerateEndpoints", filt, ctypes.byref(listing))[0] == 0
    assert json.loads(api.take(listing, "CoTaskMemFree") or "") == [endpoint["ID"]]
    assert api.HcnCloseEndpoint(ep.value) == 0

    # A running system that uses the endpoint keeps it from being deleted.
    doc = vm_doc(
        Devices={
            "NetworkAdapters": {
                "nic": {"EndpointId": endpoint["ID"], "MacAddress": endpoint["MacAddress"]}
            }
        }
    )
    system = api.running("net-vm", doc)
    hr, err = hcn(api, "HcnDeleteEndpoint", ctypes.byref(guid(str(endpoint["ID"]))))
    assert hr == H.HCN_E_ENDPOINT_ALREADY_ATTACHED
    hr, err = hcn(api, "HcnDeleteNetwork", ctypes.byref(guid(net_id)))
    assert hr == H.HCN_E_ENTITY_HAS_REFERENCES
    api.call("HcsTerminateComputeSystem", system, None)
    api.close(system)
    assert hcn(api, "HcnDeleteEndpoint", ctypes.byref(guid(str(endpoint["ID"]))))[0] == 0
    assert (
        hcn(api, "HcnDeleteEndpoint", ctypes.byref(guid(str(endpoint["ID"]))))[0]
        == H.HCN_E_ENDPOINT_NOT_FOUND
    )
    assert hcn(api, "HcnDeleteNetwork", ctypes.byref(guid(net_id)))[0] == 0
    assert api.HcnCloseNetwork(net.value) == 0
    hr, err = hcn(
        api, "HcnOpenNetwork", ctypes.byref(guid(net_id)), ctypes.byref(ctypes.c_void_p())
    )
    assert hr == H.HCN_E_NETWORK_NOT_FOUND
    assert net_id in json.loads(err or "")["Error"]


def _endpoint(api: Api, net: int, net_id: str, **extra: object) -> tuple[int, str | None, str]:
    """HcnCreateEndpoint on ``net``: (hresult, error record, MacAddress or "")."""
    ep = ctypes.c_void_p()
    body = json.dumps(
        {"HostComputeNetwork": net_id, "SchemaVersion": {"Major": 2, "Minor": 0}, **extra}
    )
    hr, err = hcn(api, "HcnCreateEndpoint", net, ctypes.byref(guid()), body, ctypes.byref(ep))
    if hr != 0:
        return hr, err, ""
    mac = str(query(api, "HcnQueryEndpointProperties", ep.value or 0)["MacAddress"])
    assert api.HcnCloseEndpoint(ep.value) == 0
    return hr, err, mac


def test_endpoint_macs_come_from_the_pool_uniquely(api: Api) -> None:
    """Endpoints created without a MAC each get a distinct one from the network's MacPool
    (ranges inclusive); a deleted endpoint's MAC is free again; an exhausted pool fails the
    create with an HCN error record (HRESULT UNCONFIRMED: HCNHResult.md has no pool code)."""
    small = dict(NAT)
    small["MacPool"] = {
        "Ranges": [
            {"StartMacAddress": "00-15-5D-AA-00-FE", "EndMacAddress": "00-15-5D-AA-00-FF"},
            {"StartMacAddress": "00-15-5d-aa-01-10", "EndMacAddress": "00-15-5d-aa-01-10"},
        ]
    }
    net_guid = str(uuid.uuid4())
    net = ctypes.c_void_p()
    hr, err = hcn(
        api, "HcnCreateNetwork", ctypes.byref(guid(net_guid)), json.dumps(small), ctypes.byref(net)
    )
    assert (hr, err) == (0, None)
    macs = [_endpoint(api, net.value or 0, net_guid)[2] for _ in range(3)]
    assert macs == ["00-15-5D-AA-00-FE", "00-15-5D-AA-00-FF", "00-15-5D-AA-01-10"]
    hr, err, _ = _endpoint(api, net.value or 0, net_guid)
    assert hr == H.HCN_E_INVALID_ENDPOINT
    record = json.loads(err or "")
    assert record["ErrorCode"] == H.HCN_E_INVALID_ENDPOINT
    assert "MacPool" in record["Error"]
    assert "no free MAC" in record["Error"]
    # Free the middle one: the next endpoint gets exactly that MAC back.
    ids = json.loads(_enumerate(api) or "[]")
    middle = next(i for i in ids if _mac_of(api, i) == "00-15-5D-AA-00-FF")
    assert hcn(api, "HcnDeleteEndpoint", ctypes.byref(guid(middle)))[0] == 0
    assert _endpoint(api, net.value or 0, net_guid)[2] == "00-15-5D-AA-00-FF"
    # An explicit MAC is taken as given (HNS documents no duplicate check; the simulator
    # does not invent one), even outside the pool.
    hr, err, mac = _endpoint(api, net.value or 0, net_guid, MacAddress="00-15-5D-AA-00-FE")
    assert (hr, err, mac) == (0, None, "00-15-5D-AA-00-FE")
    for endpoint_id in json.loads(_enumerate(api) or "[]"):
        assert hcn(api, "HcnDeleteEndpoint", ctypes.byref(guid(endpoint_id)))[0] == 0
    assert hcn(api, "HcnDeleteNetwork", ctypes.byref(guid(net_guid)))[0] == 0
    assert api.HcnCloseNetwork(net.value) == 0


def _enumerate(api: Api) -> str | None:
    listing = ctypes.c_void_p()
    assert hcn(api, "HcnEnumerateEndpoints", None, ctypes.byref(listing))[0] == 0
    return api.take(listing, "CoTaskMemFree")


def _mac_of(api: Api, endpoint_id: str) -> str:
    ep = ctypes.c_void_p()
    assert hcn(api, "HcnOpenEndpoint", ctypes.byref(guid(endpoint_id)), ctypes.byref(ep))[0] == 0
    mac = str(query(api, "HcnQueryEndpointProperties", ep.value or 0)["MacAddress"])
    assert api.HcnCloseEndpoint(ep.value) == 0
    return mac


def test_hcn_invalid_json_error_record(api: Api) -> None:
    hr, err = hcn(
        api,
        "HcnCreateNetwork",
        ctypes.byref(guid()),
        '{"Nmae":"x"}',
        ctypes.byref(ctypes.c_void_p()),
    )
    assert hr == H.HCN_E_INVALID_JSON
    assert "Nmae: unknown field" in json.loads(err or "")["Error"]


ACCESS_ALL = 0x003F0000  # VIRTUAL_DISK_ACCESS_ALL (virtdisk.h)


def create_vhd(
    api: Api,
    path: Path,
    parent: str | None = None,
    *,
    size: int | None = None,
    block: int = 1 << 20,
    sector: int = 0,
    source: str | None = None,
    device: int | None = 0,
    access: int = 0,
    flags: int = 0,
) -> tuple[int, int]:
    """CreateVirtualDisk with version-2 parameters (a differencing disk: MaximumSize 0, as
    CREATE_VIRTUAL_DISK_PARAMETERS requires, unless ``size`` says otherwise); ``device``
    None passes a NULL VirtualStorageType."""
    params = CREATE_VIRTUAL_DISK_PARAMETERS_V2(
        Version=2,
        MaximumSize=(0 if parent else 1 << 30) if size is None else size,
        BlockSizeInBytes=block,
        SectorSizeInBytes=sector,
        ParentPath=parent,
        SourcePath=source,
    )
    handle = ctypes.c_void_p()
    storage = None if device is None else VIRTUAL_STORAGE_TYPE(DeviceId=device)
    error = api.CreateVirtualDisk(
        None if storage is None else ctypes.byref(storage),
        str(path),
        access,
        None,
        flags,
        0,
        ctypes.byref(params),
        None,
        ctypes.byref(handle),
    )
    return error, handle.value or 0


def test_virtdisk_and_storage(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "base.vhdx"
    error, handle = create_vhd(api, path)
    assert error == 0
    assert api.HcsFormatWritableLayerVhd(handle) == 0
    assert api.CloseHandle(handle) == 1
    assert json.loads(path.read_text())["Formatted"] is True
    assert create_vhd(api, path)[0] == H.ERROR_FILE_EXISTS
    error, child = create_vhd(api, tmp_path / "diff.vhdx", parent=str(path))
    assert error == 0
    assert json.loads((tmp_path / "diff.vhdx").read_text())["MaximumSize"] == 1 << 30
    assert api.CloseHandle(child) == 1
    opened = ctypes.c_void_p()
    storage = ctypes.byref(VIRTUAL_STORAGE_TYPE())  # all zero: infer from the file
    missing = str(tmp_path / "missing.vhdx")
    assert (
        api.OpenVirtualDisk(storage, missing, ACCESS_ALL, 0, None, ctypes.byref(opened))
        == H.ERROR_FILE_NOT_FOUND
    )
    # No parameters: version 1 rules, the access mask says what the handle may do.
    assert api.OpenVirtualDisk(storage, str(path), ACCESS_ALL, 0, None, ctypes.byref(opened)) == 0
    mount = ctypes.c_void_p()
    assert (
        api.HcsGetLayerVhdMountPath(opened.value, ctypes.byref(mount)) & 0xFFFFFFFF
        == H.E_INVALIDARG
    )
    assert api.AttachVirtualDisk(opened.value, None, 0, 0, None, None) == 0
    assert api.HcsGetLayerVhdMountPath(opened.value, ctypes.byref(mount)) == 0
    assert (api.take(mount) or "").startswith("\\\\?\\Volume{")
    assert api.DetachVirtualDisk(opened.value, 0, 0) == 0
    assert api.CloseHandle(opened.value) == 1
    assert api.HcsCreateEmptyRuntimeStateFile(str(tmp_path / "x.vmrs")) == 0
    assert (
        api.HcsCreateEmptyRuntimeStateFile(str(tmp_path / "x.vmrs")) & 0xFFFFFFFF
        == H.ERROR_FILE_EXISTS_HR
    )
    layer = {
        "SchemaVersion": {"Major": 2, "Minor": 1},
        "Layers": [{"Id": str(uuid.uuid4()), "Path": str(tmp_path)}],
    }
    assert api.HcsInitializeWritableLayer(str(tmp_path / "scratch"), json.dumps(layer), None) == 0
    assert (
        api.HcsInitializeWritableLayer(str(tmp_path / "s2"), '{"Layers":[{"Id":1}]}', None)
        & 0xFFFFFFFF
        == H.HCS_E_INVALID_JSON
    )


def test_disk_needs_grant_for_that_vm(api: Api, tmp_path: Path) -> None:
    disk = tmp_path / "scratch.vhdx"
    _error, handle = create_vhd(api, disk)
    api.CloseHandle(handle)
    doc = vm_doc(
        Devices={"Scsi": {"0": {"Attachments": {"0": {"Type": "VirtualDisk", "Path": str(disk)}}}}}
    )
    hr, system, result = api.create("granted", doc)
    assert hr == H.E_ACCESSDENIED
    assert "HcsGrantVmAccess" in (result or "")
    api.close(system)
    assert api.HcsGrantVmAccess("someone-else", str(disk)) == 0
    hr, system, _ = api.create("granted", doc)
    assert hr == H.E_ACCESSDENIED
    api.close(system)
    assert api.HcsGrantVmAccess("granted", str(disk)) == 0
    hr, system, result = api.create("granted", doc)
    assert hr == 0, result
    api.call("HcsTerminateComputeSystem", system, None)
    api.close(system)
    assert api.HcsRevokeVmAccess("granted", str(disk)) == 0
    hr, system, _ = api.create("granted", doc)
    assert hr == H.E_ACCESSDENIED
    api.close(system)


def test_create_virtual_disk_errors_keep_their_order(api: Api, tmp_path: Path) -> None:
    # Something at the path, then a missing folder, then a missing parent disk; the new
    # file's creation itself is the existence and folder check.
    existing = tmp_path / "exists.vhdx"
    existing.write_text("x")
    folder = tmp_path / "folder.vhdx"
    folder.mkdir()
    missing_parent = str(tmp_path / "no-parent.vhdx")
    assert create_vhd(api, existing)[0] == H.ERROR_FILE_EXISTS
    assert create_vhd(api, folder)[0] == H.ERROR_FILE_EXISTS
    assert create_vhd(api, existing, parent=missing_parent)[0] == H.ERROR_FILE_EXISTS
    assert create_vhd(api, tmp_path / "no" / "a.vhdx")[0] == H.ERROR_PATH_NOT_FOUND
    assert create_vhd(api, existing / "a.vhdx")[0] == H.ERROR_PATH_NOT_FOUND  # a file, not a folder
    no_folder = tmp_path / "no" / "b.vhdx"
    assert create_vhd(api, no_folder, parent=missing_parent)[0] == H.ERROR_PATH_NOT_FOUND
    assert create_vhd(api, tmp_path / "c.vhdx", parent=missing_parent)[0] == H.ERROR_FILE_NOT_FOUND
    assert not (tmp_path / "c.vhdx").exists()
    assert existing.read_text() == "x"


MIB = 1 << 20


def _with_parent(api: Api, tmp_path: Path, kwargs: dict[str, object]) -> None:
    """Make ``tmp_path/parent.vhdx`` and put its path where ``kwargs`` says "PARENT"."""
    parent = tmp_path / "parent.vhdx"
    error, handle = create_vhd(api, parent)
    assert error == 0
    api.CloseHandle(handle)
    for key in ("parent", "source"):
        if kwargs.get(key) == "PARENT":
            kwargs[key] = str(parent)


@pytest.mark.parametrize(
    ("why", "kwargs"),
    [
        # ns-virtdisk-create_virtual_disk_parameters.md, Version2.MaximumSize: "Must be a
        # multiple of 512. If a ParentPath is specified, this value must be zero."
        ("size not a multiple of 512", {"size": 1000}),
        ("differencing disk with a size", {"parent": "PARENT", "size": 20 << 30}),
        ("differencing disk with a size of 512", {"parent": "PARENT", "size": 512}),
        # Version2.ParentPath: "If this parameter is not NULL, SourcePath must be NULL."
        ("parent and source", {"parent": "PARENT", "source": "PARENT"}),
        # Version2.SourcePath size: 0, or at least the source's size (1 GiB here).
        ("smaller than the source", {"source": "PARENT", "size": 512 << 20}),
        # Version2.BlockSizeInBytes: "For VHDX this must be a multiple of 1 MB between 1 and
        # 256 MB."
        ("VHDX block not a multiple of 1 MiB", {"block": 12345}),
        ("VHDX block of 512 KiB", {"block": 512 * 1024}),
        ("VHDX block over 256 MiB", {"block": 257 * MIB}),
        # VHD 1 (VIRTUAL_STORAGE_TYPE_DEVICE_VHD = 2): 0, 512 KiB or 2 MiB; fixed: 0 only.
        ("VHD block of 1 MiB", {"block": MIB, "device": 2}),
        ("fixed VHD with a block size", {"block": 2 * MIB, "device": 2, "flags": 1}),
        # Version2.SectorSizeInBytes: VHDX 512 or 4096, VHD 1 512.
        ("VHDX sector 1024", {"sector": 1024}),
        ("VHD sector 4096", {"sector": 4096, "block": 0, "device": 2}),
        # nf-virtdisk-createvirtualdisk.md: [in] VirtualStorageType; with version-2
        # parameters "only the VIRTUAL_DISK_ACCESS_NONE (0) value may be specified".
        ("NULL VirtualStorageType", {"device": None}),
        ("access mask with version 2", {"access": 0x003F0000}),
    ],
)
def test_create_virtual_disk_refuses_documented_violations(
    api: Api, tmp_path: Path, why: str, kwargs: dict[str, object]
) -> None:
    _with_parent(api, tmp_path, kwargs)
    target = tmp_path / "new.vhdx"
    error, handle = create_vhd(api, target, **kwargs)  # type: ignore[arg-type]
    assert (error, handle) == (H.ERROR_INVALID_PARAMETER, 0), why
    assert not target.exists(), why


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # 1 GiB, 1 MiB blocks: what hcs.storage asks for
        {"parent": "PARENT"},  # differencing, MaximumSize 0 (go-winio CreateDiffVhd)
        {"parent": "PARENT", "block": 0},
        {"block": 0, "sector": 512},  # the defaults
        {"block": 256 * MIB, "sector": 4096},
        {"source": "PARENT", "size": 0},  # the source's size
        {"source": "PARENT", "size": 2 << 30},
        {"device": 3},  # VIRTUAL_STORAGE_TYPE_DEVICE_VHDX
        {"device": 2, "block": 512 * 1024, "sector": 512},  # VHD 1
        {"device": 2, "block": 0, "flags": 1},  # fixed VHD 1
    ],
)
def test_create_virtual_disk_accepts_documented_parameters(
    api: Api, tmp_path: Path, kwargs: dict[str, object]
) -> None:
    _with_parent(api, tmp_path, kwargs)
    target = tmp_path / "new.vhdx"
    error, handle = create_vhd(api, target, **kwargs)  # type: ignore[arg-type]
    assert error == 0, kwargs
    api.CloseHandle(handle)
    # a differencing disk has its parent's size; size 0 with a source: the source's size
    expected = kwargs.get("size") or 1 << 30
    assert json.loads(target.read_text())["MaximumSize"] == expected


def test_create_virtual_disk_version_1_rules(api: Api, tmp_path: Path) -> None:
    # Version1.BlockSizeInBytes: 0, 512 KiB or 2 MiB; Version1.SectorSizeInBytes: 512 (0 is
    # the header's default); MaximumSize a multiple of 512, zero with a ParentPath.
    parent = tmp_path / "parent.vhd"
    storage = VIRTUAL_STORAGE_TYPE(DeviceId=2)

    def v1(path: Path, **fields: object) -> int:
        params = CREATE_VIRTUAL_DISK_PARAMETERS_V1(Version=1, **fields)
        handle = ctypes.c_void_p()
        error = api.CreateVirtualDisk(
            ctypes.byref(storage), str(path), 0x003F0000, None, 0, 0,
            ctypes.byref(params), None, ctypes.byref(handle),
        )  # fmt: skip
        if handle.value:
            api.CloseHandle(handle.value)
        return int(error)

    assert v1(parent, MaximumSize=1 << 30) == 0  # any access mask with version 1
    bad = [
        {"MaximumSize": 1000},
        {"MaximumSize": 1 << 30, "BlockSizeInBytes": MIB},
        {"MaximumSize": 1 << 30, "SectorSizeInBytes": 4096},
        {"MaximumSize": 1 << 30, "ParentPath": str(parent)},
    ]
    for fields in bad:
        assert v1(tmp_path / "bad.vhd", **fields) == H.ERROR_INVALID_PARAMETER, fields
    assert v1(tmp_path / "child.vhd", ParentPath=str(parent)) == 0
    assert json.loads((tmp_path / "child.vhd").read_text())["ParentPath"] == str(parent)
