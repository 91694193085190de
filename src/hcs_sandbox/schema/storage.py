"""Documents for computestorage.dll (``HcsSetupBaseOSLayer``, ``HcsInitializeWritableLayer``…).

Sources: MicrosoftDocs/Virtualization-Documentation ``virtualization/api/hcs/SchemaReference.md``
(LayerData, Layer, OsLayerOptions, ExportLayerOptions; 2021 revision), hcsshim
``internal/hcs/schema2/layer.go`` and ``computestorage/storage.go``.
"""

# schema_field() returns dataclasses.field(default=None, ...): an immutable default.
# ruff: noqa: RUF009

from __future__ import annotations

from dataclasses import dataclass

from hcs_sandbox.schema._base import SchemaModel, schema_field
from hcs_sandbox.schema.compute import Version
from hcs_sandbox.schema.enums import CacheMode, OsLayerType, PathType

__all__ = ["ExportLayerOptions", "Layer", "LayerData", "OsLayerOptions"]


@dataclass(kw_only=True)
class Layer(SchemaModel):
    """SchemaReference.md#Layer."""

    SOURCE = "SchemaReference.md#Layer; hcsshim layer.go"

    Id: str | None = schema_field("Id")
    Path: str | None = schema_field("Path")
    PathType: PathType | str | None = schema_field("PathType", since=(2, 1))
    Cache: CacheMode | str | None = schema_field("Cache")


@dataclass(kw_only=True)
class LayerData(SchemaModel):
    """SchemaReference.md#LayerData: parent layers, immediate parent first (hcsshim order).

    ``FilterType`` ("WCIFS" | "UnionFS") is hcsshim's addition for HcsAttachOverlayFilter.
    """

    SOURCE = "SchemaReference.md#LayerData; hcsshim computestorage/storage.go"

    SchemaVersion: Version | None = schema_field("SchemaVersion", since=(2, 1))
    Layers: list[Layer] | None = schema_field("Layers", since=(2, 1))
    FilterType: str | None = schema_field(
        "FilterType", since=None, documented=False, source="hcsshim computestorage/storage.go"
    )


@dataclass(kw_only=True)
class OsLayerOptions(SchemaModel):
    """SchemaReference.md#OsLayerOptions (``HcsSetupBaseOSLayer`` / ``...Volume``)."""

    SOURCE = "SchemaReference.md#OsLayerOptions; hcsshim computestorage/setup.go"

    Type: OsLayerType | str | None = schema_field("Type", since=(2, 1))
    DisableCiCacheOptimization: bool | None = schema_field(
        "DisableCiCacheOptimization", since=(2, 1)
    )
    SkipUpdateBcdForBoot: bool | None = schema_field("SkipUpdateBcdForBoot", since=(2, 5))


@dataclass(kw_only=True)
class ExportLayerOptions(SchemaModel):
    """SchemaReference.md#ExportLayerOptions (``HcsExportLayer``)."""

    SOURCE = "SchemaReference.md#ExportLayerOptions"

    IsWritableLayer: bool | None = schema_field("IsWritableLayer", since=(2, 1))
