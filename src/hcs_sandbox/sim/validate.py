"""Strict validation of the JSON documents the simulator receives.

HCS documents are checked against Microsoft's schema as merged in ``data/hcs-schema.json``
(MicrosoftDocs ``HCS_Schema-Windows_11_SDK_21H2.json`` plus the fields only hcsshim
``internal/hcs/schema2/*.go`` knows; types spelled as Go spells them).  Enum values come from the
OpenAPI file (``data/hcs-openapi-summary.json``).  Field versions ("NewInVersion") come from
MicrosoftDocs ``virtualization/api/hcs/SchemaReference.md`` (2.0-2.3) and its newer revision
(2.4-2.6, Virtualization-Documentation @77e0742a); see :data:`FIELD_VERSIONS`.  A field absent from
that table is 2.0/2.1 (every host that has computecore.dll supports 2.1) or an undated hcsshim
extra (:func:`undated_fields`), accepted at any version.

Windows also accepts a few fields that neither Microsoft's schema nor hcsshim names: the ones
in the document Windows Sandbox itself passes to ``HcsCreateComputeSystem`` (MouriNaruto/MouriDocs
``docs/4/ReadMe.md``).  Exactly those fields, with the
types the dump shows, are listed in ``data/wsb-dump-fields.json`` (:func:`wsb_dump_fields`) and
accepted from the schema version that document declares (2.4).  Every other unknown key is
still rejected.

HCN documents (HostComputeNetwork, HostComputeEndpoint, HostComputeQuery, modify requests) are
checked against :data:`HCN_TYPES`, written from hcsshim ``hcn/hcnnetwork.go``,
``hcn/hcnendpoint.go``, ``hcn/hcnpolicy.go`` and MicrosoftDocs
``virtualization/api/hcn/HNS_Schema.md``.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

__all__ = [
    "FIELD_VERSIONS",
    "HCN_TYPES",
    "SchemaError",
    "parse_document",
    "parse_hcs",
    "undated_fields",
    "validate_hcn",
    "validate_hcs",
    "wsb_dump_fields",
]

Version = tuple[int, int]


class SchemaError(ValueError):
    """A document was rejected; ``where`` is the dotted path, ``why`` the reason."""

    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"{where}: {why}" if where else why)
        self.where = where
        self.why = why


# "Type.Field" -> first schema version that has it (only fields newer than 2.1 are listed).
# 2.2 / 2.3: SchemaReference.md (MicrosoftDocs, Schema Version Map: 2.2 = 1903, 2.3 = 2004).
# 2.4 / 2.5 / 2.6: the newer SchemaReference.md (Virtualization-Documentation @77e0742a).
FIELD_VERSIONS: dict[str, Version] = {
    # 2.2
    "Chipset.LinuxKernelDirect": (2, 2),
    "Uefi.StopOnBootFailure": (2, 2),
    "VirtualMachine_Memory.BackingPageSize": (2, 2),
    "VirtualMachine_Memory.PinBackingPages": (2, 2),
    "VirtualMachine_Memory.ForbidSmallBackingPages": (2, 2),
    "VirtualMachine_Memory.EnableColdDiscardHint": (2, 2),
    "VirtualMachine_Processor.EnablePerfmonPmu": (2, 2),
    "VirtualMachine_Processor.EnablePerfmonPebs": (2, 2),
    "VirtualMachine_Processor.EnablePerfmonLbr": (2, 2),
    "VirtualMachine_Processor.EnablePerfmonIpt": (2, 2),
    "Devices.VirtioSerial": (2, 2),
    "Plan9Share.AllowedFiles": (2, 2),
    "VirtualPMemDevice.SizeBytes": (2, 2),
    "VirtualPMemDevice.Mappings": (2, 2),
    "SystemExitStatus.ExitType": (2, 2),
    "Device.Type": (2, 2),
    "Device.LocationPath": (2, 2),
    # 2.3
    "Uefi.ApplySecureBootTemplate": (2, 3),
    "VirtualMachine_Memory.LowMmioGapInMB": (2, 3),
    "VirtualMachine_Memory.HighMmioBaseInMB": (2, 3),
    "VirtualMachine_Memory.HighMmioGapInMB": (2, 3),
    "Devices.VirtualPci": (2, 3),
    "Attachment.SupportCompressedVolumes": (2, 3),
    "MappedDirectory.SupportCloudFiles": (2, 3),
    "VirtualSmbShareOptions.SupportCloudFiles": (2, 3),
    "CrashOptions.Type": (2, 3),
    "CrashReport.CrashParameters": (2, 3),
    "CrashReport.CrashLog": (2, 3),
    "IdleProcessorsRequest.IdleProcessorCount": (2, 3),
    # 2.4
    "Scsi.DisableInterruptBatching": (2, 4),
    "NetworkAdapter.InstanceId": (2, 4),
    "NetworkAdapter.ConnectionState": (2, 4),
    "VirtualMachine_Memory.DirectMapFaultClusterSizeShift": (2, 4),
    "VirtualMachine_Processor.Reservation": (2, 4),
    "VirtualMachine_Processor.MaximumFrequencyMHz": (2, 4),
    "VirtualPciFunction.AllowDirectTranslatedP2P": (2, 4),
    "VirtualSmbShareOptions.FilterEncryptionAttributes": (2, 4),
    "GuestConnection.UseHostTimeZone": (2, 4),
    "SystemExitStatus.Attribution": (2, 4),
    "CrashReport.CrashStackUnavailable": (2, 4),
    # 2.5
    "VirtualMachine.Version": (2, 5),
    "VirtualMachine.Services": (2, 5),
    "Chipset.EnableHibernation": (2, 5),
    "VirtualMachine_Processor.CpuGroup": (2, 5),
    "OsLayerOptions.SkipUpdateBcdForBoot": (2, 5),
    "System_PropertyQuery.Queries": (2, 5),
    # 2.6
    "Attachment.SupportEncryptedFiles": (2, 6),
    "Attachment.AlwaysAllowSparseFiles": (2, 6),
}

# Whole types introduced after 2.1 (the field that holds them is dated by the table above).
TYPE_VERSIONS: dict[str, Version] = {"ShutdownOptions": (2, 5), "CrashOptions": (2, 3)}

# Enum values hcsshim knows beyond the OpenAPI file (internal/hcs/schema2/*.go).
_EXTRA_ENUMS: dict[str, list[str]] = {
    "System_PropertyType": [
        "GuestMemory",
        "ICHeartbeatStatus",
        "ProcessorTopology",
        "CpuGroup",
        "SystemGUID",
    ],
    "PropertyType": [
        "Memory",
        "GuestMemory",
        "Statistics",
        "ProcessList",
        "TerminateOnLastHandleClosed",
        "SharedMemoryRegion",
        "GuestConnection",
        "ICHeartbeatStatus",
        "ProcessorTopology",
        "CpuGroup",
        "SystemGUID",
    ],
    "MemoryBackingType": ["Physical", "Virtual", "Hybrid"],
}

# Maps whose keys are integers in Microsoft's schema (SchemaReference: Map<uint32, ...>).
_INT_KEY_MAPS = {
    "Scsi.Attachments",
    "Devices.ComPorts",
    "VirtioSerial.Ports",
    "VirtualPMemController.Devices",
    "VirtualPMemDevice.Mappings",
}

# Fields a document cannot omit (the simulator's reading of the docs' samples).
_REQUIRED: dict[str, tuple[str, ...]] = {
    "ComputeSystem": ("SchemaVersion",),
    "Version": ("Major", "Minor"),
    "Attachment": ("Type", "Path"),
    "VirtualSmbShare": ("Name", "Path"),
    "Plan9Share": ("Name", "Path"),
    "NetworkAdapter": ("EndpointId",),
    "SaveOptions": ("SaveType",),
    "SignalProcessOptions": ("Signal",),
    "ProcessModifyRequest": ("Operation",),
    "Layer": ("Id", "Path"),
}

_INT_RANGES: dict[str, tuple[int, int]] = {
    "uint8": (0, 0xFF),
    "byte": (0, 0xFF),
    "uint16": (0, 0xFFFF),
    "uint32": (0, 0xFFFFFFFF),
    "uint64": (0, 0xFFFFFFFFFFFFFFFF),
    "int32": (-0x80000000, 0x7FFFFFFF),
    "int64": (-0x8000000000000000, 0x7FFFFFFFFFFFFFFF),
}
_ANY = {"interface{}", "json.RawMessage", "v1.Metrics", "http.Client", "any"}


def _data_text(name: str) -> str:
    """The text of ``data/<name>``: read next to this module when the package is a folder
    (``importlib.resources`` and what it imports cost ~5-8 ms of a simulated CLI start),
    else (a zip import...) through ``importlib.resources``."""
    import os

    try:
        with open(
            os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", name),
            encoding="utf-8",
        ) as f:
            return f.read()
    except OSError:
        from importlib import resources

        return resources.files("hcs_sandbox.sim").joinpath("data").joinpath(name).read_text("utf-8")


@lru_cache(maxsize=1)
def _wsb_dump() -> dict[str, Any]:
    table: dict[str, Any] = json.loads(_data_text("wsb-dump-fields.json"))
    return table


@lru_cache(maxsize=1)
def _openapi_summary() -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(_data_text("hcs-openapi-summary.json"))
    return summary


def _version_of(text: str) -> Version:
    major, minor = text.split(".")
    return int(major), int(minor)


@lru_cache(maxsize=1)
def wsb_dump_fields() -> dict[str, Version]:
    """``"Type.Field"`` -> schema version for each field known to Windows only from Windows
    Sandbox's own document (undocumented; ``data/wsb-dump-fields.json`` names the source)."""
    table = _wsb_dump()
    since = _version_of(table["since"])
    return {
        f"{type_name}.{field}": since
        for type_name, fields in table["fields"].items()
        for field in fields
    }


@lru_cache(maxsize=1)
def _versions() -> dict[str, Version]:
    return {**FIELD_VERSIONS, **wsb_dump_fields()}


@lru_cache(maxsize=1)
def _hcs_schema() -> tuple[dict[str, dict[str, str]], dict[str, str], dict[str, list[str]]]:
    schema = json.loads(_data_text("hcs-schema.json"))
    summary = _openapi_summary()
    enums: dict[str, list[str]] = {k: list(v) for k, v in summary["enums"].items()}
    for name, values in _EXTRA_ENUMS.items():
        enums[name] = sorted(set(enums.get(name, [])) | set(values))
    types: dict[str, dict[str, str]] = {k: dict(v) for k, v in schema["types"].items()}
    # Windows Sandbox's undocumented fields (see the module docstring): added field by field,
    # never replacing a field the public schema or hcsshim already types.
    wsb = _wsb_dump()
    for type_name, fields in wsb["types"].items():
        if type_name in types:
            raise RuntimeError(f"wsb-dump-fields.json: type {type_name} already exists")
        types[type_name] = dict(fields)
    for type_name, fields in wsb["fields"].items():
        known = types[type_name]
        for field, go_type in fields.items():
            if field in known:
                raise RuntimeError(f"wsb-dump-fields.json: {type_name}.{field} already exists")
            known[field] = go_type
    return types, schema["aliases"], enums


@lru_cache(maxsize=1)
def undated_fields() -> list[str]:
    """Fields only hcsshim knows (not in Microsoft's OpenAPI file): accepted, version unknown."""
    types, _aliases, _enums = _hcs_schema()
    documented: dict[str, list[str]] = _openapi_summary()["documented_fields"]
    dated = _versions()
    wsb_types = set(_wsb_dump()["types"])
    out = []
    for type_name, fields in types.items():
        if type_name in wsb_types:
            continue
        known = set(documented.get(type_name, []))
        for field in fields:
            if field not in known and f"{type_name}.{field}" not in dated:
                out.append(f"{type_name}.{field}")
    return sorted(out)


def parse_document(text: str | None, what: str) -> Any:
    """``json.loads`` with a :class:`SchemaError` naming ``what`` on failure."""
    if text is None or not text.strip():
        raise SchemaError(what, "document is empty")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SchemaError(what, f"not valid JSON ({exc})") from None


# (text, type, host's highest version) of documents that passed validate_hcs: validation is a
# pure function of them (the schema tables never change), so an identical text (a property
# query, start or shutdown options sent again and again) is only parsed.  Bounded.
_VALIDATED: dict[tuple[str, str, Version | None], None] = {}
_VALIDATED_MAX = 256


def parse_hcs(text: str | None, what: str, type_name: str, max_version: Version | None) -> Any:
    """:func:`parse_document`, then :func:`validate_hcs` (skipped for a text that already
    passed for the same type and version); raises :class:`SchemaError` as they do."""
    value = parse_document(text, what)
    assert text is not None  # parse_document rejects None
    key = (text, type_name, max_version)
    if key not in _VALIDATED:
        validate_hcs(value, type_name, max_version)
        if len(_VALIDATED) >= _VALIDATED_MAX:
            _VALIDATED.clear()
        _VALIDATED[key] = None
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# What _Checker.check does for a type (the first item of its plan).
_P_ANY, _P_ARRAY, _P_MAP, _P_INT, _P_FLOAT, _P_BOOL, _P_STRING, _P_ALIAS, _P_OBJECT, _P_UNKNOWN = (
    object() for _ in range(10)
)


class _Checker:
    def __init__(  # noqa: PLR0917
        self,
        types: dict[str, dict[str, str]],
        aliases: dict[str, str],
        enums: dict[str, list[str]],
        max_version: Version | None,
        versions: dict[str, Version],
        required: dict[str, tuple[str, ...]],
    ) -> None:
        self.types = types
        self.aliases = aliases
        self.enums = enums
        self.max_version = max_version
        self.versions = versions
        self.required = required
        self.plans: dict[str, tuple[Any, ...]] = {}  # go type -> what check() does (_plan)

    def _plan(self, go_type: str) -> tuple[Any, ...]:
        """What :meth:`check` does for ``go_type``, worked out once per checker (the type's
        name is classified in the same order as before: pointer, any, array, map, integer,
        number, bool, string, alias, object)."""
        plan = self.plans.get(go_type)
        if plan is not None:
            return plan
        name = go_type.lstrip("*")
        if name in _ANY:
            plan = (_P_ANY,)
        elif name.startswith("[]"):
            plan = (_P_ARRAY, name[2:])
        elif name.startswith("map["):
            plan = (_P_MAP, name[name.index("]") + 1 :])
        elif name in _INT_RANGES:
            plan = (_P_INT, name, *_INT_RANGES[name])
        elif name in {"float64", "float32"}:
            plan = (_P_FLOAT,)
        elif name == "bool":
            plan = (_P_BOOL,)
        elif name in {"string", "time.Time"}:
            plan = (_P_STRING,)
        elif name in self.aliases:
            plan = (_P_ALIAS, name, self.aliases[name], self.enums.get(name))
        elif (fields := self.types.get(name)) is None:
            plan = (_P_UNKNOWN, name)
        else:
            version = TYPE_VERSIONS.get(name)
            too_new = (
                version if version and self.max_version and version > self.max_version else None
            )
            members = {}
            for key, field_type in fields.items():
                field_version = self.versions.get(f"{name}.{key}")
                late = (
                    field_version
                    if field_version and self.max_version and field_version > self.max_version
                    else None
                )
                members[key] = (field_type, late, f"{name}.{key}")
            plan = (_P_OBJECT, name, too_new, members, self.required.get(name, ()), fields)
        self.plans[go_type] = plan
        return plan

    def check(self, value: Any, go_type: str, path: str, owner: str = "") -> None:
        plan = self.plans.get(go_type) or self._plan(go_type)
        kind = plan[0]
        if kind is _P_STRING:
            if not isinstance(value, str):
                raise SchemaError(path, f"expected a string, got {_json_type(value)}")
            return
        if kind is _P_OBJECT:
            _kind, name, too_new, members, required, fields = plan
            if not isinstance(value, dict):
                raise SchemaError(path, f"expected an object ({name}), got {_json_type(value)}")
            if too_new:
                raise SchemaError(path, self._too_new(name, too_new))
            for key, item in value.items():
                member = members.get(key)
                if member is None:
                    hint = self._hint(key, fields)
                    raise SchemaError(_join(path, key), f"unknown field{hint}")
                field_type, late, field_owner = member
                if late:
                    raise SchemaError(_join(path, key), self._too_new(field_owner, late))
                if item is None:
                    continue  # JSON null = omitted (Go's omitempty reading)
                self.check(item, field_type, f"{path}.{key}" if path else key, field_owner)
            for key in required:
                if value.get(key) is None:
                    raise SchemaError(_join(path, key), f"required field missing (in {name})")
            return
        if kind is _P_ANY:
            return
        if kind is _P_ARRAY:
            if not isinstance(value, list):
                raise SchemaError(path, f"expected an array, got {_json_type(value)}")
            for i, item in enumerate(value):
                self.check(item, plan[1], _join(path, str(i)))
            return
        if kind is _P_MAP:
            if not isinstance(value, dict):
                raise SchemaError(path, f"expected an object (map), got {_json_type(value)}")
            inner = plan[1]
            for key, item in value.items():
                if owner in _INT_KEY_MAPS and not re.fullmatch(r"[0-9]+", key):
                    raise SchemaError(_join(path, key), "map key must be a decimal integer")
                self.check(item, inner, _join(path, key))
            return
        if kind is _P_INT:
            _kind, name, low, high = plan
            if isinstance(value, bool) or not isinstance(value, int):
                raise SchemaError(path, f"expected an integer ({name}), got {_json_type(value)}")
            if not low <= value <= high:
                raise SchemaError(path, f"{value} is out of range for {name}")
            return
        if kind is _P_FLOAT:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SchemaError(path, f"expected a number, got {_json_type(value)}")
            return
        if kind is _P_BOOL:
            if not isinstance(value, bool):
                raise SchemaError(path, f"expected true or false, got {_json_type(value)}")
            return
        if kind is _P_ALIAS:
            _kind, name, target, allowed = plan
            self.check(value, target, path)
            if allowed and isinstance(value, str) and value not in allowed:
                raise SchemaError(
                    path, f"{value!r} is not a valid {name}; allowed: {', '.join(allowed)}"
                )
            return
        raise SchemaError(path, f"internal: unknown schema type {plan[1]}")

    def _too_new(self, name: str, version: Version) -> str:
        assert self.max_version is not None
        return (
            f"{name} is new in schema {version[0]}.{version[1]}, but this host supports schema "
            f"up to {self.max_version[0]}.{self.max_version[1]}"
        )

    @staticmethod
    def _hint(key: str, fields: dict[str, str]) -> str:
        lowered = {f.lower(): f for f in fields}
        if key.lower() in lowered:
            return f" (did you mean {lowered[key.lower()]!r}? names are case-sensitive)"
        import difflib  # only to name a misspelt field

        close = difflib.get_close_matches(key, list(fields), n=1)
        return f" (did you mean {close[0]!r}?)" if close else ""


@lru_cache(maxsize=16)
def _hcs_checker(max_version: Version | None) -> _Checker:
    """The checker of HCS documents for a host's highest schema version (its plans are kept:
    the schema tables never change)."""
    types, aliases, enums = _hcs_schema()
    return _Checker(types, aliases, enums, max_version, _versions(), _REQUIRED)


def validate_hcs(value: Any, type_name: str, max_version: Version | None, path: str = "") -> None:
    """Check ``value`` against HCS schema type ``type_name``; raise :class:`SchemaError`."""
    _hcs_checker(max_version).check(value, type_name, path)
    if type_name == "ComputeSystem":
        kinds = [
            k for k in ("VirtualMachine", "Container", "HostedSystem") if value.get(k) is not None
        ]
        if len(kinds) != 1:
            raise SchemaError(
                path or "ComputeSystem",
                "exactly one of VirtualMachine, Container or HostedSystem is required"
                + (f" (found {', '.join(kinds)})" if kinds else " (found none)"),
            )
        schema_version = value["SchemaVersion"]
        declared = (schema_version["Major"], schema_version["Minor"])
        if declared[0] != 2:
            raise SchemaError("SchemaVersion", f"major version {declared[0]} is not supported")
        if max_version and declared > max_version:
            raise SchemaError(
                "SchemaVersion",
                f"schema {declared[0]}.{declared[1]} is newer than this host supports "
                f"({max_version[0]}.{max_version[1]})",
            )


# ---- HCN (HNS schema) ---------------------------------------------------------------------
HCN_TYPES: dict[str, dict[str, str]] = {
    "SchemaVersion": {"Major": "uint32", "Minor": "uint32"},
    "HostComputeNetwork": {
        "ID": "string",
        "Name": "string",
        "Type": "NetworkType",
        "Owner": "string",
        "Policies": "[]NetworkPolicy",
        "MacPool": "MacPool",
        "Dns": "Dns",
        "Ipams": "[]Ipam",
        "Flags": "uint32",
        "Health": "interface{}",
        "SchemaVersion": "SchemaVersion",
    },
    "HostComputeEndpoint": {
        "ID": "string",
        "Name": "string",
        "HostComputeNetwork": "string",
        "HostComputeNamespace": "string",
        "Policies": "[]EndpointPolicy",
        "IpConfigurations": "[]IpConfig",
        "Dns": "Dns",
        "Routes": "[]Route",
        "MacAddress": "string",
        "Flags": "uint32",
        "Health": "interface{}",
        "SchemaVersion": "SchemaVersion",
    },
    "HostComputeQuery": {"SchemaVersion": "SchemaVersion", "Flags": "uint32", "Filter": "string"},
    "ModifySettingRequest": {
        "ResourceType": "string",
        "RequestType": "string",
        "Settings": "interface{}",
    },
    "NetworkPolicy": {"Type": "string", "Settings": "interface{}"},
    "EndpointPolicy": {"Type": "string", "Settings": "interface{}"},
    "MacPool": {"Ranges": "[]MacRange"},
    "MacRange": {"StartMacAddress": "string", "EndMacAddress": "string"},
    "Dns": {
        "Domain": "string",
        "Suffix": "string",
        "Search": "[]string",
        "ServerList": "[]string",
        "Options": "[]string",
    },
    "Ipam": {"Type": "string", "Subnets": "[]Subnet"},
    "Subnet": {
        "IpAddressPrefix": "string",
        "Policies": "[]interface{}",
        "Routes": "[]Route",
        "Flags": "uint32",
    },
    "Route": {"NextHop": "string", "DestinationPrefix": "string", "Metric": "uint16"},
    "IpConfig": {"IpAddress": "string", "PrefixLength": "uint8"},
}
_HCN_ENUMS: dict[str, list[str]] = {
    # hcsshim hcn/hcnnetwork.go NetworkType + HNS_Schema.md (Internal, Mirrored)
    "NetworkType": [
        "NAT",
        "ICS",
        "Transparent",
        "L2Bridge",
        "L2Tunnel",
        "Overlay",
        "Private",
        "Internal",
        "Mirrored",
    ],
}


def validate_hcn(value: Any, type_name: str, path: str = "") -> None:
    """Check an HCN document against :data:`HCN_TYPES`; raise :class:`SchemaError`."""
    aliases = {"NetworkType": "string"}
    checker = _Checker(HCN_TYPES, aliases, _HCN_ENUMS, None, {}, {})
    checker.check(value, type_name, path)
