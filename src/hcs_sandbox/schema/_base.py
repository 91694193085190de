"""The machinery shared by every schema model: fields, (de)serialisation, version checks.

A model is a ``@dataclass(kw_only=True)`` subclass of :class:`SchemaModel` whose fields
are all optional (``None`` = unset = omitted from JSON) and declared with
:func:`schema_field`, which records the field's JSON name, the schema version that
introduced it ("NewInVersion" in Microsoft's SchemaReference.md / HNS_Schema.md) and
whether Microsoft documents it at all.

Field annotations are limited to a small, explicit vocabulary that the codec understands:

- ``str``, ``int``, ``bool``, ``float``;
- an enum class of this package, always written ``SomeEnum | str`` (an unknown string
  sent by a newer host is kept as it is instead of failing);
- a :class:`SchemaModel` subclass;
- ``list[T]`` and ``dict[str, T]`` of the above (JSON maps always have string keys,
  even for LUNs and COM port numbers: ``"0"``);
- ``Any`` for the schema's ``Any`` (opaque JSON; models inside it are still serialised).

Nothing here does I/O; the per-class codec tables are built lazily on first use.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, TypeVar

from hcs_sandbox.errors import SchemaError

__all__ = [
    "SCHEMA_VERSION_MAP",
    "FieldInfo",
    "SchemaModel",
    "VersionTuple",
    "fields_newer_than",
    "known_fields",
    "model_types",
    "required_schema_version",
    "schema_field",
    "set_fields",
    "undocumented_fields",
    "unknown_keys",
]

VersionTuple = tuple[int, int]

# SchemaReference.md "Schema Version Map" (MicrosoftDocs/Virtualization-Documentation
# virtualization/api/hcs/SchemaReference.md, 2021 revision).
SCHEMA_VERSION_MAP: dict[VersionTuple, str] = {
    (2, 0): "Windows 10 SDK, version 1809 (10.0.17763.0)",
    (2, 1): "Windows 10 SDK, version 1809 (10.0.17763.0)",
    (2, 2): "Windows 10 SDK, version 1903 (10.0.18362.1)",
    (2, 3): "Windows 10 SDK, version 2004 (10.0.19041.0)",
    (2, 4): "Windows Server 2022 (OS build 20348.169)",
    (2, 5): "Windows Server 2022 (OS build 20348.169)",
    (2, 6): "Windows 11 SDK, version 21H2 (10.0.22000.194)",
}

_META_KEY = "hcs_sandbox.schema"


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """What the schema knows about one field of a model.

    ``since`` is the schema version that introduced the field, or None when no source
    states it (undocumented fields).  ``documented`` is False for fields that Microsoft's
    SchemaReference.md / HNS_Schema.md do not list; ``source`` then names where the field
    was seen (an hcsshim file, Windows Sandbox's dumped document, ...).
    """

    attr: str
    json_name: str
    since: VersionTuple | None
    documented: bool
    source: str | None


@dataclasses.dataclass(frozen=True)
class _FieldSpec:
    json_name: str
    since: VersionTuple | None
    documented: bool
    source: str | None


def schema_field(
    json_name: str,
    *,
    since: VersionTuple | None = (2, 0),
    documented: bool = True,
    source: str | None = None,
) -> Any:
    """Declare a model field: its exact JSON name, the version that introduced it, provenance.

    Every field defaults to ``None`` (unset).  An undocumented field must name its
    ``source``.
    """
    if not documented and not source:
        raise ValueError(f"undocumented schema field {json_name!r} must name its source")
    spec = _FieldSpec(json_name, since, documented, source)
    return dataclasses.field(default=None, metadata={_META_KEY: spec})


# --------------------------------------------------------------------------------------
# Type descriptors (built lazily from the annotations)
# --------------------------------------------------------------------------------------

_SCALARS: dict[type, str] = {str: "string", int: "integer", bool: "boolean", float: "number"}


@dataclasses.dataclass(frozen=True)
class _Type:
    kind: str  # "scalar" | "enum" | "model" | "list" | "map" | "any"
    scalar: type | None = None
    enum_cls: type[enum.Enum] | None = None
    model: type[SchemaModel] | None = None
    item: _Type | None = None


@dataclasses.dataclass(frozen=True)
class _Field:
    info: FieldInfo
    type: _Type


def _describe(annotation: Any, where: str) -> _Type:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        enums = [a for a in args if isinstance(a, type) and issubclass(a, enum.Enum)]
        if enums and len(args) == 2 and str in args:
            return _Type("enum", enum_cls=enums[0])
        if len(args) == 1:
            return _describe(args[0], where)
        raise TypeError(f"{where}: unsupported union annotation {annotation!r}")
    if origin is list:
        (item,) = typing.get_args(annotation)
        return _Type("list", item=_describe(item, where))
    if origin is dict:
        key, item = typing.get_args(annotation)
        if key is not str:
            raise TypeError(f"{where}: map keys must be str (JSON object keys)")
        return _Type("map", item=_describe(item, where))
    if annotation is Any:
        return _Type("any")
    if isinstance(annotation, type):
        if issubclass(annotation, SchemaModel):
            return _Type("model", model=annotation)
        if issubclass(annotation, enum.Enum):
            return _Type("enum", enum_cls=annotation)
        if annotation in _SCALARS:
            return _Type("scalar", scalar=annotation)
    raise TypeError(f"{where}: unsupported annotation {annotation!r}")


_REGISTRY: dict[str, type[SchemaModel]] = {}
_TABLES: dict[type[SchemaModel], tuple[_Field, ...]] = {}


def _fields_of(cls: type[SchemaModel]) -> tuple[_Field, ...]:
    table = _TABLES.get(cls)
    if table is not None:
        return table
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} must be a dataclass")
    hints = typing.get_type_hints(cls)
    out: list[_Field] = []
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(_META_KEY)
        if not isinstance(spec, _FieldSpec):
            raise TypeError(f"{cls.__name__}.{f.name} must be declared with schema_field()")
        info = FieldInfo(f.name, spec.json_name, spec.since, spec.documented, spec.source)
        out.append(_Field(info, _describe(hints[f.name], f"{cls.__name__}.{f.name}")))
    table = tuple(out)
    _TABLES[cls] = table
    return table


#: Per class: ``(attr, json_name, since)`` of every field, in declaration order.  The hot
#: paths (:meth:`SchemaModel.to_dict`, :func:`_max_since`) walk these plain tuples instead
#: of the :class:`_Field` objects (one tuple unpack instead of two attribute reads each).
_FAST: dict[type[SchemaModel], tuple[tuple[str, str, VersionTuple | None], ...]] = {}

#: Exact types of the values that are their own JSON form (no model, enum or container
#: inside): ``type(v) in _PLAIN`` skips :func:`_encode` and the version walk's recursion.
#: Subclasses (``bool`` of ``int``, str-based enums) are not in it and take the full path.
_PLAIN = frozenset({str, int, float, bool})


def _fast_table(cls: type[SchemaModel]) -> tuple[tuple[str, str, VersionTuple | None], ...]:
    table = tuple((f.info.attr, f.info.json_name, f.info.since) for f in _fields_of(cls))
    _FAST[cls] = table
    return table


# --------------------------------------------------------------------------------------
# The base class
# --------------------------------------------------------------------------------------

M = TypeVar("M", bound="SchemaModel")


class SchemaModel:
    """Base of every HCS / HCN schema model.

    Class attributes:
    ``SCHEMA_NAME``: the type's name in Microsoft's schema (``"VirtualMachine_Memory"``);
    ``NAMESPACE``: ``"hcs"`` (SchemaReference.md) or ``"hcn"`` (HNS_Schema.md), whose
    version numbers the fields' ``since`` refer to;
    ``SOURCE``: where the type is defined (document section / hcsshim file).
    """

    SCHEMA_NAME: ClassVar[str] = ""
    NAMESPACE: ClassVar[str] = "hcs"
    SOURCE: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__name__.startswith("_"):
            return  # a private intermediate base (e.g. the HCN namespace marker)
        name = cls.__dict__.get("SCHEMA_NAME") or cls.__name__
        cls.SCHEMA_NAME = name
        key = f"{cls.NAMESPACE}:{name}"
        if key in _REGISTRY:
            raise TypeError(f"schema type {key} is defined twice")
        _REGISTRY[key] = cls

    # -- introspection -----------------------------------------------------------------

    @classmethod
    def schema_fields(cls) -> tuple[FieldInfo, ...]:
        """The fields of this model, in declaration order."""
        return tuple(f.info for f in _fields_of(cls))

    # -- serialisation -----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """This model as plain JSON-ready dicts; unset (None) fields are omitted."""
        out: dict[str, Any] = {}
        cls = type(self)
        table = _FAST.get(cls) or _fast_table(cls)
        for attr, json_name, _since in table:
            value = getattr(self, attr)
            if value is None:
                continue
            out[json_name] = value if type(value) in _PLAIN else _encode(value)
        return out

    def to_json(self, *, indent: int | None = None, sort_keys: bool = False) -> str:
        """``json.dumps(self.to_dict())``."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=sort_keys)

    @classmethod
    def from_dict(cls: type[M], data: object, *, lenient: bool = False) -> M:
        """Build a model from parsed JSON.

        Unknown keys are ignored and missing keys stay None.  A value of the wrong JSON
        type raises :class:`~hcs_sandbox.errors.SchemaError` naming its path, unless
        ``lenient`` is true, in which case such values are dropped (use it for documents
        HCS returns, where a newer host may change a type).  ``data`` itself must be a
        JSON object in both modes.
        """
        if not isinstance(data, Mapping):
            raise SchemaError(
                f"{cls.SCHEMA_NAME}: expected a JSON object, got {_json_kind(data)}",
                path="",
                remedy="pass the parsed JSON object (a dict)",
            )
        return _decode_model(cls, data, cls.SCHEMA_NAME, lenient)

    @classmethod
    def from_json(cls: type[M], text: str | bytes, *, lenient: bool = False) -> M:
        """Parse a JSON document into this model (see :meth:`from_dict`)."""
        try:
            data = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise SchemaError(
                f"{cls.SCHEMA_NAME}: the document is not valid JSON ({exc})", path=""
            ) from None
        return cls.from_dict(data, lenient=lenient)


# --------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, SchemaModel):
        return value.to_dict()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


# --------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


class _Drop(Exception):
    """Internal: a value of the wrong type in lenient mode."""


def _mismatch(path: str, expected: str, value: object, lenient: bool) -> _Drop:
    if lenient:
        return _Drop()
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    raise SchemaError(
        f"{path}: expected {expected}, got {_json_kind(value)} ({shown})",
        path=path,
        remedy="fix the document or the value that produced it",
    )


def _decode_model(cls: type[M], data: Mapping[Any, Any], path: str, lenient: bool) -> M:
    kwargs: dict[str, Any] = {}
    for f in _fields_of(cls):
        if f.info.json_name not in data:
            continue
        raw = data[f.info.json_name]
        if raw is None:
            continue
        try:
            kwargs[f.info.attr] = _decode(f.type, raw, f"{path}.{f.info.json_name}", lenient)
        except _Drop:
            continue
    return cls(**kwargs)


def _decode(t: _Type, raw: Any, path: str, lenient: bool) -> Any:
    if t.kind == "any":
        return raw
    if t.kind == "scalar":
        assert t.scalar is not None
        if t.scalar is bool:
            ok = isinstance(raw, bool)
        elif t.scalar is int:
            ok = isinstance(raw, int) and not isinstance(raw, bool)
        elif t.scalar is float:
            ok = isinstance(raw, int | float) and not isinstance(raw, bool)
            if ok:
                raw = float(raw)
        else:
            ok = isinstance(raw, str)
        if not ok:
            raise _mismatch(path, _SCALARS[t.scalar], raw, lenient)
        return raw
    if t.kind == "enum":
        assert t.enum_cls is not None
        base_is_int = issubclass(t.enum_cls, int)
        if base_is_int:
            if not isinstance(raw, int) or isinstance(raw, bool):
                raise _mismatch(path, "integer", raw, lenient)
        elif not isinstance(raw, str):
            raise _mismatch(path, f"a string ({t.enum_cls.__name__})", raw, lenient)
        try:
            return t.enum_cls(raw)
        except ValueError:
            return raw  # a value this version of the schema does not know: keep it
    if t.kind == "model":
        assert t.model is not None
        if not isinstance(raw, Mapping):
            raise _mismatch(path, f"an object ({t.model.SCHEMA_NAME})", raw, lenient)
        return _decode_model(t.model, raw, path, lenient)
    assert t.item is not None
    if t.kind == "list":
        if not isinstance(raw, list):
            raise _mismatch(path, "an array", raw, lenient)
        items: list[Any] = []
        for i, v in enumerate(raw):
            if v is None and t.item.kind != "any":
                continue
            try:
                items.append(_decode(t.item, v, f"{path}[{i}]", lenient))
            except _Drop:
                continue
        return items
    if not isinstance(raw, Mapping):
        raise _mismatch(path, "an object (map)", raw, lenient)
    entries: dict[str, Any] = {}
    for k, v in raw.items():
        if v is None and t.item.kind != "any":
            continue
        try:
            entries[str(k)] = _decode(t.item, v, f"{path}[{k}]", lenient)
        except _Drop:
            continue
    return entries


# --------------------------------------------------------------------------------------
# Walking a model: versions, provenance
# --------------------------------------------------------------------------------------


def set_fields(model: SchemaModel, prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """Every set field of ``model``, recursively, as ``(path, FieldInfo)``.

    Paths use JSON names joined by dots; map keys and list indexes are in brackets:
    ``VirtualMachine.Devices.Scsi[primary].Attachments[0].Path``.  Models found inside
    ``Any`` fields (for example ``ModifySettingRequest.Settings``) are walked too.
    """
    for f in _fields_of(type(model)):
        value = getattr(model, f.info.attr)
        if value is None:
            continue
        path = f"{prefix}.{f.info.json_name}" if prefix else f.info.json_name
        yield path, f.info
        yield from _walk_value(value, path)


def _walk_value(value: Any, path: str) -> Iterator[tuple[str, FieldInfo]]:
    if isinstance(value, SchemaModel):
        yield from set_fields(value, path)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _walk_value(v, f"{path}[{k}]")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _walk_value(v, f"{path}[{i}]")


def fields_newer_than(model: SchemaModel, version: VersionTuple) -> list[str]:
    """Paths of the set fields introduced after ``version`` (a host's highest schema).

    Fields whose version no source states are not listed here: see
    :func:`undocumented_fields`.  HCN models count in HCN schema versions.
    """
    limit = tuple(version)
    if _max_since(model, (-1, -1)) <= limit:
        return []  # the usual case, found without building every field's path
    return [
        path for path, info in set_fields(model) if info.since is not None and info.since > limit
    ]


def undocumented_fields(model: SchemaModel) -> list[str]:
    """Paths of the set fields Microsoft's schema reference does not document."""
    return [path for path, info in set_fields(model) if not info.documented]


def required_schema_version(model: SchemaModel) -> VersionTuple:
    """The lowest schema version that knows every set field with a known version.

    At least 2.0 (the first 2.x schema).  Undocumented fields are not counted.
    """
    return _max_since(model, (2, 0))


def _max_since(value: Any, best: VersionTuple) -> VersionTuple:
    """The highest ``since`` of the set fields in ``value`` (walked as :func:`set_fields`
    walks it, without building paths), or ``best`` when that is higher."""
    if isinstance(value, SchemaModel):
        cls = type(value)
        for attr, _json_name, since in _FAST.get(cls) or _fast_table(cls):
            item = getattr(value, attr)
            if item is None:
                continue
            if since is not None and since > best:
                best = since
            if type(item) not in _PLAIN and not isinstance(item, _LEAVES):
                best = _max_since(item, best)
    elif isinstance(value, Mapping):
        for item in value.values():
            best = _max_since(item, best)
    elif isinstance(value, list | tuple):
        for item in value:
            best = _max_since(item, best)
    return best


#: Values that hold no model (skipped by :func:`_max_since` without further checks).
_LEAVES = (str, int, float, enum.Enum)


# --------------------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------------------


def model_types() -> dict[str, type[SchemaModel]]:
    """Every model class, keyed ``"<namespace>:<SCHEMA_NAME>"`` (``"hcs:VirtualMachine"``)."""
    return dict(_REGISTRY)


def known_fields(namespace: str | None = None) -> dict[str, set[str]]:
    """Schema type name → the JSON field names this package models for it.

    Keys are the ``SCHEMA_NAME`` of each model (``"VirtualMachine_Memory"``), limited to
    one ``namespace`` (``"hcs"`` or ``"hcn"``) when given.
    """
    out: dict[str, set[str]] = {}
    for cls in _REGISTRY.values():
        if namespace is not None and namespace != cls.NAMESPACE:
            continue
        out.setdefault(cls.SCHEMA_NAME, set()).update(f.json_name for f in cls.schema_fields())
    return out


def unknown_keys(data: object, model: type[SchemaModel], prefix: str = "") -> list[str]:
    """Paths of the keys of a raw JSON document that ``model`` does not know.

    Use it to assert that a generated document only uses known schema fields, or to
    see what a host returned beyond the model.  Values of ``Any`` fields are not checked.
    """
    found: list[str] = []
    if not isinstance(data, Mapping):
        return found
    by_json = {f.info.json_name: f for f in _fields_of(model)}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        f = by_json.get(key)
        if f is None:
            found.append(path)
            continue
        found.extend(_unknown_in(f.type, value, path))
    return found


def _unknown_in(t: _Type, value: Any, path: str) -> list[str]:
    if t.kind == "model" and t.model is not None:
        return unknown_keys(value, t.model, path)
    if t.kind == "list" and t.item is not None and isinstance(value, list):
        out: list[str] = []
        for i, v in enumerate(value):
            out.extend(_unknown_in(t.item, v, f"{path}[{i}]"))
        return out
    if t.kind == "map" and t.item is not None and isinstance(value, Mapping):
        out = []
        for k, v in value.items():
            out.extend(_unknown_in(t.item, v, f"{path}[{k}]"))
        return out
    return []
