"""Strict documents: unknown fields, wrong types, missing parts, too-new fields."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from simapi import Api, vm_doc

from hcs_sandbox.sim import hresults as H
from hcs_sandbox.sim.validate import SchemaError, validate_hcn, validate_hcs


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            vm_doc(
                Devices={
                    "Scsi": {"x": {"Attachments": {"0": {"Type": "VirtualDisk", "Pathh": "a"}}}}
                }
            ),
            "VirtualMachine.Devices.Scsi.x.Attachments.0.Pathh: unknown field",
        ),
        (
            vm_doc(ComputeTopology={"Memory": {"SizeInMB": "1024"}}),
            "VirtualMachine.ComputeTopology.Memory.SizeInMB: expected an integer",
        ),
        ({"SchemaVersion": {"Major": 2, "Minor": 1}}, "exactly one of VirtualMachine"),
        ({"VirtualMachine": {}}, "SchemaVersion: required field missing"),
        (vm_doc(chipset={}), "did you mean 'Chipset'? names are case-sensitive"),
        (
            vm_doc(Chipset={"Uefi": {"Console": "ComPort9"}}),
            "'ComPort9' is not a valid SerialConsole",
        ),
        ("{not json", "configuration: not valid JSON"),
    ],
)
def test_rejections_name_the_place(api: Api, doc: Any, message: str) -> None:
    hr, handle, result = api.create("bad", doc)
    assert hr == H.HCS_E_INVALID_JSON
    error = json.loads(result or "")
    assert error["Error"] & 0xFFFFFFFF == H.HCS_E_INVALID_JSON
    assert message in error["ErrorMessage"]
    # The handle came back at once; nothing stands behind it.
    assert api.call("HcsStartComputeSystem", handle, None)[0] == H.HCS_E_SYSTEM_NOT_FOUND
    api.close(handle)


def test_field_newer_than_host_is_rejected(api: Api, sim: Any) -> None:
    doc = vm_doc(Services={"Heartbeat": {}})
    sim.set_supported_schema_versions([(2, 1), (2, 2), (2, 3), (2, 4)])
    hr, handle, result = api.create("old-host", doc)
    assert hr == H.HCS_E_INVALID_JSON
    assert "VirtualMachine.Services is new in schema 2.5" in (result or "")
    api.close(handle)
    sim.set_supported_schema_versions([(2, 5)])
    hr, handle, result = api.create("new-host", doc)
    assert hr == 0, result
    api.call("HcsTerminateComputeSystem", handle, None)
    api.close(handle)


def test_process_parameters_are_strict(api: Api) -> None:
    handle = api.running("pp")
    process = api.spawn(handle, "cmd /c echo", CreateStdoutPipe=True)
    assert process.hr == H.HCS_E_INVALID_JSON
    assert "CreateStdoutPipe: unknown field" in (process.doc or "")
    process.close()
    api.call("HcsTerminateComputeSystem", handle, None)
    api.close(handle)


def test_hcn_documents_are_strict() -> None:
    validate_hcn(
        {"Name": "n", "Type": "NAT", "SchemaVersion": {"Major": 2, "Minor": 0}},
        "HostComputeNetwork",
    )
    with pytest.raises(SchemaError, match=r"Ipams\.0\.Subnets\.0\.Prefix: unknown field"):
        validate_hcn({"Ipams": [{"Subnets": [{"Prefix": "x"}]}]}, "HostComputeNetwork")
    with pytest.raises(SchemaError, match="not a valid NetworkType"):
        validate_hcn({"Type": "Bridge"}, "HostComputeNetwork")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["VirtualMachine", "SchemaVersion", "Devices", "Major", "Minor", "x"]),
            inner,
            max_size=3,
        )
    ),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_validator_only_raises_schema_errors(value: Any) -> None:
    errors: list[SchemaError] = []
    try:
        validate_hcs(value, "ComputeSystem", (2, 6))
    except SchemaError as exc:
        errors.append(exc)
    assert all(e.why for e in errors)


def _fresh_check(value: Any, type_name: str, version: tuple[int, int] | None) -> str | None:
    """The error of a checker built for this call only (no kept plans), or None."""
    from hcs_sandbox.sim import validate

    types, aliases, enums = validate._hcs_schema()
    checker = validate._Checker(
        types, aliases, enums, version, validate._versions(), validate._REQUIRED
    )
    try:
        checker.check(value, type_name, "")
    except SchemaError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d,
        lambda d: d["VirtualMachine"].update(Bogus=1),
        lambda d: d["VirtualMachine"]["ComputeTopology"]["Memory"].update(SizeInMB="x"),
        lambda d: d["VirtualMachine"]["ComputeTopology"]["Memory"].update(SizeInMB=-1),
        lambda d: (
            d["VirtualMachine"].setdefault("Devices", {}).update(Scsi={"x": {"Attachments": {}}})
        ),
        lambda d: (
            d["VirtualMachine"]
            .setdefault("Devices", {})
            .update(Scsi={"0": {"Attachments": {"a": {}}}})
        ),
        lambda d: d.update(ShouldTerminateOnLastHandleClosed="yes"),
        lambda d: d["VirtualMachine"].update(Chipset={"Uefi": {"BootThis": {"DeviceType": "X"}}}),
        lambda d: d["VirtualMachine"].update(Chipset=[]),
    ],
)
@pytest.mark.parametrize("version", [(2, 1), (2, 6), None])
def test_kept_checker_plans_answer_as_a_fresh_checker(mutate: Any, version: Any) -> None:
    # validate_hcs keeps one checker (and its per-type plans) per host version: the same
    # document must get the same answer, and the same error, as from a checker made anew,
    # whichever versions were checked before.
    doc = vm_doc()
    mutate(doc)
    expected = _fresh_check(doc, "ComputeSystem", version)
    for _ in range(2):
        try:
            validate_hcs(doc, "ComputeSystem", version)
            got = None
        except SchemaError as exc:
            got = str(exc)
        if expected is None:  # the whole-document checks may still reject it
            continue
        assert got == expected
