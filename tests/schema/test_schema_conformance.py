"""Every modelled field exists, under the same JSON name, in Microsoft's/hcsshim's schema."""

from __future__ import annotations

import enum

import pytest
from schema_test_data import hns_types, shim_types, swagger

import hcs_sandbox.schema.enums as enums_module
from hcs_sandbox.schema import SchemaModel, known_fields, model_types

HCS_MODELS = [c for c in model_types().values() if c.NAMESPACE == "hcs"]
HCN_MODELS = [c for c in model_types().values() if c.NAMESPACE == "hcn"]

# Types that neither HCS_Schema-Windows_11_SDK_21H2.json nor hcs-schema.json define.
# All four appear only in Windows Sandbox's own document (MouriNaruto/MouriDocs docs/4).
TYPE_ALLOWLIST = {"Licensing", "KernelIntegration", "RunInSilo", "LaunchOptions"}

# (type, field) pairs found in neither schema file.  Each has a reason:
FIELD_ALLOWLIST: dict[tuple[str, str], str] = {
    # Windows Sandbox's document only (undocumented, effect UNCONFIRMED):
    ("VirtualMachine_Memory", "EnablePrivateCompressionStore"): "WSB dump",
    ("VirtualMachine_Memory", "SharedMemoryMB"): "WSB dump",
    ("VirtualMachine_Memory", "SharedMemoryAccessSids"): "WSB dump",
    ("VirtualMachine_Memory", "EnableEpf"): "WSB dump",
    ("VirtualMachine_Processor", "SynchronizeHostFeatures"): "WSB dump",
    ("VirtualMachine_Processor", "EnableSchedulerAssist"): "WSB dump",
    ("VirtualMachine_Processor", "DefaultVpCpuPriority"): "WSB dump",
    ("VirtualMachine_Processor", "EnableProcessorIdling"): "WSB dump",
    ("Devices", "Licensing"): "WSB dump",
    ("Devices", "KernelIntegration"): "WSB dump",
    ("VirtualMachine", "RunInSilo"): "WSB dump",
    ("VirtualMachine", "LaunchOptions"): "WSB dump",
    ("Licensing", "ContainerID"): "WSB dump",
    ("Licensing", "PackageFamilyNames"): "WSB dump",
    ("RunInSilo", "SiloBaseOsPath"): "WSB dump",
    ("RunInSilo", "NotifySiloJobCreated"): "WSB dump",
    ("LaunchOptions", "Type"): "WSB dump",
    # Listed by SchemaReference.md (2021 revision, NewInVersion 2.5) but absent from the
    # 21H2 SDK OpenAPI file and from hcsshim's schema2:
    ("VirtualMachine_Processor", "EnablePerfmonArchPmu"): "SchemaReference.md 2.5",
    ("VirtualMachine_Processor", "EnablePageShattering"): "SchemaReference.md 2.5",
    ("VirtualMachine_Processor", "DisableSpeculationControls"): "SchemaReference.md 2.5",
    ("VirtualMachine_Processor", "ProcessorFeatureSet"): "SchemaReference.md 2.5",
    # hcsshim computestorage/storage.go (not in internal/hcs/schema2):
    ("LayerData", "FilterType"): "hcsshim computestorage",
}

# Enum values SchemaReference.md lists that the 21H2 OpenAPI file's enum lacks.
ENUM_VALUE_ALLOWLIST = {("CacheMode", "Unspecified"), ("OsType", "Unknown")}
# Our enum class name → OpenAPI definition name, where they differ.
ENUM_NAME_MAP = {"SystemPropertyType": "System_PropertyType"}


def _props(name: str) -> set[str]:
    return set((swagger().get(name) or {}).get("properties") or {})


def _schema_fields(name: str) -> set[str]:
    return _props(name) | set(shim_types().get(name) or {})


@pytest.mark.parametrize("model", HCS_MODELS, ids=lambda c: c.SCHEMA_NAME)
def test_hcs_type_exists(model: type[SchemaModel]) -> None:
    name = model.SCHEMA_NAME
    known = name in swagger() or name in shim_types()
    assert known or name in TYPE_ALLOWLIST, f"{name} is in neither schema file"
    assert not (known and name in TYPE_ALLOWLIST), f"{name} is allow-listed but known"


@pytest.mark.parametrize("model", HCS_MODELS, ids=lambda c: c.SCHEMA_NAME)
def test_hcs_fields_exist_under_same_json_name(model: type[SchemaModel]) -> None:
    name = model.SCHEMA_NAME
    known = _schema_fields(name)
    for info in model.schema_fields():
        key = (name, info.json_name)
        if info.json_name in known:
            assert key not in FIELD_ALLOWLIST, f"{key} is allow-listed but known: remove it"
        else:
            assert key in FIELD_ALLOWLIST, f"{name}.{info.json_name} is in neither schema file"


@pytest.mark.parametrize("model", HCS_MODELS, ids=lambda c: c.SCHEMA_NAME)
def test_documented_flag_matches_the_openapi_file(model: type[SchemaModel]) -> None:
    """A field in Microsoft's OpenAPI file is documented; one only hcsshim knows is not."""
    name = model.SCHEMA_NAME
    official = _props(name)
    for info in model.schema_fields():
        if info.json_name in official:
            assert info.documented, f"{name}.{info.json_name} is in Microsoft's schema"
        elif FIELD_ALLOWLIST.get((name, info.json_name), "").startswith("SchemaReference"):
            assert info.documented
        else:
            assert not info.documented, f"{name}.{info.json_name} is not in Microsoft's schema"
            assert info.source, f"{name}.{info.json_name} must name its source"
            assert info.since is None


def test_allowlist_has_no_stale_entries() -> None:
    modelled = known_fields("hcs")
    for type_name, field in FIELD_ALLOWLIST:
        assert field in modelled.get(type_name, set()), (type_name, field)


@pytest.mark.parametrize("model", HCN_MODELS, ids=lambda c: c.SCHEMA_NAME)
def test_hcn_fields_exist_in_hns_schema(model: type[SchemaModel]) -> None:
    documented = set(hns_types()[model.SCHEMA_NAME])
    for info in model.schema_fields():
        if info.documented:
            assert info.json_name in documented, f"{model.SCHEMA_NAME}.{info.json_name}"
        else:
            assert info.json_name not in documented
            assert info.source
            assert "hcsshim" in info.source


# Enums with no counterpart in the OpenAPI file: HCN ones (HNS_Schema.md) and hcsshim's.
ENUMS_WITHOUT_OPENAPI = {
    "MemoryBackingType",
    "NetworkType",
    "IpamType",
    "EndpointPolicyType",
    "NetworkPolicyType",
    "AclAction",
    "AclDirection",
    "AclRuleType",
}


def _str_enums() -> list[type[enum.Enum]]:
    out = []
    for value in vars(enums_module).values():
        if (
            isinstance(value, type)
            and issubclass(value, enum.Enum)
            and issubclass(value, str)
            and not value.__name__.startswith("_")
            and value.__name__ not in ENUMS_WITHOUT_OPENAPI
        ):
            out.append(value)
    return out


@pytest.mark.parametrize("enum_cls", _str_enums(), ids=lambda c: c.__name__)
def test_enum_values_match_openapi(enum_cls: type[enum.Enum]) -> None:
    name = ENUM_NAME_MAP.get(enum_cls.__name__, enum_cls.__name__)
    definition = swagger().get(name)
    assert definition is not None, f"{name}: not in the OpenAPI file"
    assert "enum" in definition, f"{name}: not an enum in the OpenAPI file"
    official = set(definition["enum"])
    for member in enum_cls:
        assert member.value in official or (name, member.value) in ENUM_VALUE_ALLOWLIST, (
            f"{name}.{member.value}"
        )


def test_every_model_names_its_source() -> None:
    for model in model_types().values():
        assert model.SOURCE, model.__name__
        assert model.__doc__, model.__name__
        assert (
            "SchemaReference.md" in model.__doc__
            or "HNS_Schema.md" in model.__doc__
            or "hcsshim" in model.__doc__
            or "Windows Sandbox" in model.__doc__
        ), model.__name__
