"""The one builder of the VSMB share modify request (sandbox/files.py ``vsmb_request``): a
typed ``ModifySettingRequest`` whose JSON is the exact document the five hand-written dicts
sent before (files.py: map / unmap / transfer share; logon.py: the log share)."""

from __future__ import annotations

import json

import pytest

from hcs_sandbox.sandbox.files import VSMB_RESOURCE, vsmb_request
from hcs_sandbox.schema.enums import ModifyRequestType


def _wire(request: object) -> str:
    from hcs_sandbox.hcs._call import dumps

    assert isinstance(request, dict)
    text = dumps(request)
    assert text is not None
    return text


def test_add_read_only_share() -> None:
    assert _wire(vsmb_request(ModifyRequestType.ADD, "hcsmap-1", "/host/a", read_only=True)) == (
        '{"ResourcePath":"VirtualMachine/Devices/VirtualSmb/Shares","RequestType":"Add",'
        '"Settings":{"Name":"hcsmap-1","Path":"/host/a","Options":{"ReadOnly":true,'
        '"ShareRead":true,"CacheIo":true,"PseudoOplocks":true}}}'
    )


def test_add_read_write_share_has_empty_options() -> None:
    assert vsmb_request(ModifyRequestType.ADD, "hcs-transfer", "/host/t") == {
        "ResourcePath": VSMB_RESOURCE,
        "RequestType": "Add",
        "Settings": {"Name": "hcs-transfer", "Path": "/host/t", "Options": {}},
    }


def test_remove_names_the_share_only() -> None:
    request = vsmb_request(ModifyRequestType.REMOVE, "hcs-logs")
    assert json.loads(_wire(request)) == {
        "ResourcePath": VSMB_RESOURCE,
        "RequestType": "Remove",
        "Settings": {"Name": "hcs-logs"},
    }


def test_add_without_a_path_is_a_bug() -> None:
    with pytest.raises(ValueError, match="needs its path"):
        vsmb_request(ModifyRequestType.ADD, "x")
