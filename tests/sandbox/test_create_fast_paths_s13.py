"""The create path's shortcuts of session 13 (s13-base) give what the longer code gave.

Pure speed changes: these tests pin that the values are the ones the code they replace
computes, and that a refused value still gets its own error.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.errors import SpecError
from hcs_sandbox.sandbox import planner, storage
from hcs_sandbox.sandbox.planner import HostFacts

_SID = "134ac1c6-9de2-465e-9f16-570f0066c8a5"


def _kwargs(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "sandbox_id": _SID,
        "system_id": _SID,
        "sandbox_dir": "/state/sandboxes/" + _SID,
        "base_path": "/pd/BaseImages/x",
        "supported_schema_versions": ((2, 1), (2, 5)),
        "path_style": "posix",
        "variant": "documented",
        "user_sid": "S-1-22-1-1000",
        "terminate_on_close": False,
    }
    values.update(changes)
    return values


def _through_init(**kwargs: Any) -> HostFacts:
    """What ``for_sandbox`` made before: ``HostFacts(**values)`` through ``__init__``."""
    ns = planner._uuid5_bytes(planner._PLACEHOLDER_NS_BYTES, kwargs["sandbox_id"])
    endpoint = kwargs.pop("endpoint_id", None) or planner._uuid5_text(ns, "endpoint")
    kwargs["supported_schema_versions"] = tuple(kwargs["supported_schema_versions"])
    return HostFacts(**kwargs, endpoint_id=endpoint, adapter_id=planner._uuid5_text(ns, "adapter"))


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"variant": "wsb-compat", "path_style": "windows", "sandbox_dir": "C:\\s\\" + _SID},
        {"terminate_on_close": True, "user_sid": None, "base_path": None},
        {"supported_schema_versions": [(2, 1)]},  # a list of tuples: the fast path too
        {"supported_schema_versions": [[2, 1], [2, 6]]},  # lists inside: through __init__
        {"endpoint_id": "e-1"},
    ],
)
def test_for_sandbox_makes_what_init_makes(changes: dict[str, Any]) -> None:
    got = HostFacts.for_sandbox(**_kwargs(**changes))
    expected = _through_init(**_kwargs(**changes))
    assert type(got) is HostFacts
    assert got == expected
    assert vars(got) == vars(expected)
    assert list(vars(got)) == list(vars(expected))  # the same fields, in the same order
    assert hash(got) == hash(expected)
    assert repr(got) == repr(expected)
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.variant = "documented"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "field_name"),
    [
        ({"variant": "other"}, "variant"),
        ({"path_style": "vms"}, "path_style"),
        ({"supported_schema_versions": ()}, "supported_schema_versions"),
    ],
)
def test_for_sandbox_refuses_what_init_refuses(changes: dict[str, Any], field_name: str) -> None:
    with pytest.raises(SpecError) as expected:
        _through_init(**_kwargs(**changes))
    with pytest.raises(SpecError) as got:
        HostFacts.for_sandbox(**_kwargs(**changes))
    assert str(got.value) == str(expected.value)
    assert got.value.field == expected.value.field == field_name


def test_for_sandbox_overrides_and_subclasses_go_through_init() -> None:
    with pytest.raises(SpecError):
        HostFacts.for_sandbox(**_kwargs(), scratch_size_bytes=0)
    assert HostFacts.for_sandbox(**_kwargs(), mac_address="00-15-5D-00-00-01").mac_address

    class Sub(HostFacts):
        seen: list[str] = []  # noqa: RUF012

        def __post_init__(self) -> None:
            Sub.seen.append(self.sandbox_id)
            super().__post_init__()

    assert type(Sub.for_sandbox(**_kwargs())) is Sub
    assert Sub.seen == [_SID]


def test_facts_defaults_cover_every_field() -> None:
    fields = dataclasses.fields(HostFacts)
    assert list(planner._FACTS_DEFAULTS) == [f.name for f in fields]
    # The fast path copies the defaults: a default_factory would be shared, not made.
    assert all(f.default_factory is dataclasses.MISSING for f in fields)
    # __post_init__'s scratch size check passes for the default the fast path keeps.
    assert HostFacts.__dataclass_fields__["scratch_size_bytes"].default > 0


@pytest.mark.parametrize(
    "text",
    [
        '[["/s/x/sandbox.vhdx","create",21474836480,null],"/s/x/a.vmgs",[],null,false,1.5,"\\u00e9"]',
        '{"a":{"b":[1,2,{"c":"d"}]},"e":-0.0,"f":true}',
        "[]",
        '"text"',
    ],
)
def test_parse_is_json_loads(text: str) -> None:
    assert planner._parse(text) == json.loads(text)
    assert repr(planner._parse(text)) == repr(json.loads(text))


@pytest.mark.parametrize("text", ["", "[1,", "[1] [2]", "{", "nan!", "\ufeff[]"])
def test_parse_refuses_as_json_loads_does(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as got:
        planner._parse(text)
    assert str(got.value) == str(expected.value)


def test_parse_takes_leading_or_trailing_space_as_json_loads_does() -> None:
    for text in (" [1]", "[1] ", "\n{}\n"):
        assert planner._parse(text) == json.loads(text)


def test_from_values_makes_what_init_makes() -> None:
    values: list[Any] = [
        {"Owner": "o"},
        ["/s/x/sandbox.vhdx", "create", 21474836480, None],
        "/s/x/sandbox.vmgs",
        ["/s/x/sandbox.vhdx"],
        {"n": 1},
        {"e": 2},
        ["w"],
        {"g": 3},
        True,
        [{"l": 4}],
        "ep",
        "nat",
        ["gpu"],
    ]
    got = planner.PlanDocuments._from_values(values, "{}")
    expected = planner.PlanDocuments(
        document={"Owner": "o"},
        scratch=planner.ScratchPlan("/s/x/sandbox.vhdx", "create", 21474836480, None),
        guest_state_file="/s/x/sandbox.vmgs",
        grants=("/s/x/sandbox.vhdx",),
        network_document={"n": 1},
        endpoint_document={"e": 2},
        warnings=("w",),
        gpu_request={"g": 3},
        terminate_on_last_handle_closed=True,
        guest_links=({"l": 4},),
        endpoint_id="ep",
        network="nat",
        document_json="{}",
        warning_fields=("gpu",),
    )
    for name in planner.PlanDocuments.__slots__:
        assert getattr(got, name) == getattr(expected, name), name
        assert type(getattr(got, name)) is type(getattr(expected, name)), name
    assert got == expected
    scratch = got.scratch
    assert scratch == expected.scratch
    assert type(scratch) is planner.ScratchPlan
    assert hash(scratch) == hash(expected.scratch)
    assert repr(scratch) == repr(expected.scratch)
    assert vars(scratch) == vars(expected.scratch)
    with pytest.raises(dataclasses.FrozenInstanceError):
        scratch.path = "elsewhere"  # type: ignore[misc]
    values[1] = None
    assert planner.PlanDocuments._from_values(values).scratch is None
    values[0] = None
    with pytest.raises(TypeError):
        planner.PlanDocuments._from_values(values)


def test_scratch_plan_has_no_post_init() -> None:
    # _scratch_plan skips __init__: nothing else may be done there.
    assert not hasattr(planner.ScratchPlan, "__post_init__")
    assert [f.name for f in dataclasses.fields(planner.ScratchPlan)] == [
        "path",
        "method",
        "size_bytes",
        "parent",
    ]


def _root_at(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(storage, "_program_data_text", lambda: str(tmp_path))
    return tmp_path.joinpath(*storage.BASE_IMAGES_SUBDIR)


@pytest.mark.parametrize("shape", ["missing", "file", "dangling link", "link loop", "below a file"])
def test_host_base_folders_not_a_folder_is_not_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shape: str
) -> None:
    # BaseImages is listed without a stat of it first: whatever is not a folder there is
    # still "not found" (the StorageError _is_dir's False gave), not the listing's OSError.
    root = _root_at(monkeypatch, tmp_path)
    root.parent.mkdir(parents=True)
    if shape == "file":
        root.write_bytes(b"x")
    elif shape == "dangling link":
        root.symlink_to(tmp_path / "nowhere")
    elif shape == "link loop":
        root.symlink_to(root)
    elif shape == "below a file":
        monkeypatch.setattr(
            storage, "_program_data_text", lambda: str(tmp_path / "Microsoft" / "f")
        )
        (tmp_path / "Microsoft" / "f").write_bytes(b"x")
    with pytest.raises(errors.StorageError, match="does not exist") as caught:
        storage.host_base_folders()
    assert caught.value.remedy == storage.WINDOWS_SANDBOX_REMEDY


def test_host_base_folders_bad_text_is_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "_program_data_text", lambda: "bad\0path")
    with pytest.raises(errors.StorageError, match="does not exist"):
        storage.host_base_folders()


@pytest.mark.parametrize("denied", [True, False])
def test_host_base_folders_other_listing_errors_are_one_storage_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, denied: bool
) -> None:
    # A folder that is there but cannot be listed: one StorageError that names the folder
    # and says why (the raw OSError was an "internal error" in doctor and create: RV53 #2).
    root = _root_at(monkeypatch, tmp_path)
    root.mkdir(parents=True)
    refused = (
        PermissionError(errno.EACCES, "Permission denied", str(root))
        if denied
        else OSError(errno.EIO, "Input/output error", str(root))
    )

    def scandir(path: str) -> Any:
        raise refused

    monkeypatch.setattr(storage.os, "scandir", scandir)
    with pytest.raises(errors.StorageError) as caught:
        storage.host_base_folders()
    assert caught.value.message == (
        f"cannot list the Windows Sandbox base images folder {root}: {refused.strerror}"
    )
    assert caught.value.__cause__ is refused
    remedy = caught.value.remedy or ""
    assert ("Run as administrator" in remedy) is denied


def test_a_base_images_folder_whose_stat_is_refused_too_is_one_storage_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Listing refused, and the stat _is_dir makes refused too (Windows: no right to list
    # the parent either): the same "cannot list" StorageError (it raised the stat's
    # PermissionError: review RV55 F1).
    root = _root_at(monkeypatch, tmp_path)
    root.mkdir(parents=True)

    def refuse(path: Any, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(storage.os, "scandir", refuse)
    monkeypatch.setattr(storage.os, "stat", refuse)
    with pytest.raises(errors.StorageError) as caught:
        storage.host_base_folders()
    assert caught.value.message == (
        f"cannot list the Windows Sandbox base images folder {root}: Permission denied"
    )
    assert "Run as administrator" in (caught.value.remedy or "")


@pytest.mark.parametrize(("winerror", "denied"), [(5, True), (32, False), (33, False)])
def test_only_access_denied_is_told_to_elevate(winerror: int, denied: bool) -> None:
    exc = PermissionError(errno.EACCES, "refused")
    exc.winerror = winerror  # type: ignore[attr-defined]  # (as CPython sets it on Windows)
    assert storage._access_denied(exc) is denied
    assert storage._access_denied(PermissionError(errno.EPERM, "not permitted")) is True
    assert storage._access_denied(OSError(errno.EIO, "Input/output error")) is False


def test_doctor_reports_an_unlistable_base_images_folder_with_its_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from hcs_sandbox.sandbox import doctor

    root = _root_at(monkeypatch, tmp_path)
    root.mkdir(parents=True)

    def scandir(path: str) -> Any:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(storage.os, "scandir", scandir)
    check = doctor._check_base_image()  # (it raised PermissionError: "internal error")
    assert check.status == doctor.WARN
    assert "cannot list the Windows Sandbox base images folder" in check.detail
    assert check.fix is not None
    assert "Run as administrator" in check.fix


def test_host_base_folders_lists_without_a_stat_of_the_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = _root_at(monkeypatch, tmp_path)
    (root / "g" / "BaseLayer" / "Files").mkdir(parents=True)
    stats: list[str] = []
    real_stat = os.stat

    def counting_stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        stats.append(os.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(storage.os, "stat", counting_stat)
    found = storage.host_base_folders()
    assert [c[2] for c in found] == [str(root / "g")]
    assert stats == [str(root / "g" / "BaseLayer" / "Files")]
