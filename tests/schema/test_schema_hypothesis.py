"""Property tests: parsing never fails with anything but SchemaError; models round-trip."""

from __future__ import annotations

import enum
import functools
import typing
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hcs_sandbox.errors import SchemaError
from hcs_sandbox.schema import (
    ComputeSystem,
    HostComputeEndpoint,
    HostComputeNetwork,
    ModifySettingRequest,
    ProcessParameters,
    Properties,
    SchemaModel,
    ServiceProperties,
    model_types,
)

MODELS = sorted(model_types().values(), key=lambda c: f"{c.NAMESPACE}:{c.SCHEMA_NAME}")

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
# Values that compare equal to themselves after a JSON round trip (no NaN, no infinities).
# The top-level value is never null (null = unset); nested nulls are fine.
clean_json_values = st.recursive(
    st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner | st.none(), max_size=4)
        | st.dictionaries(st.text(max_size=8), inner | st.none(), max_size=4)
    ),
    max_leaves=20,
)


def _keyed_objects(model: type[SchemaModel]) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects using the model's own keys (so the decoder goes deep) plus noise."""
    keys = [f.json_name for f in model.schema_fields()] or ["x"]
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=5), json_values, max_size=6)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_from_dict_raises_only_schema_error(data: st.DataObject) -> None:
    model = data.draw(st.sampled_from(MODELS))
    raw = data.draw(json_values | _keyed_objects(model))
    try:
        parsed = model.from_dict(raw)
    except SchemaError as exc:
        error: SchemaError | None = exc
    else:
        error = None
    if error is not None:
        assert error.path is not None
        return
    # Whatever parsed must serialise again, and re-parse to the same model.
    assert model.from_dict(parsed.to_dict()) == parsed


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_lenient_from_dict_never_fails_on_objects(data: st.DataObject) -> None:
    model = data.draw(st.sampled_from(MODELS))
    raw = data.draw(_keyed_objects(model))
    parsed = model.from_dict(raw, lenient=True)
    assert model.from_dict(parsed.to_dict()) == parsed


@settings(max_examples=100)
@given(st.text(max_size=40) | st.binary(max_size=20))
def test_from_json_raises_only_schema_error(text: str | bytes) -> None:
    for model in (Properties, ServiceProperties, ComputeSystem):
        try:
            model.from_json(text)
        except SchemaError:
            pass


# ---------------------------------------------------------------- valid models round-trip


def _strategy_for(annotation: Any, depth: int) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is not None and origin not in (list, dict):  # a union
        enums = [a for a in args if isinstance(a, type) and issubclass(a, enum.Enum)]
        if enums:
            return st.sampled_from(list(enums[0])) | st.text(max_size=6)
        return _strategy_for(args[0], depth)
    if origin is list:
        return st.lists(_strategy_for(args[0], depth), max_size=3)
    if origin is dict:
        return st.dictionaries(st.text(max_size=6), _strategy_for(args[1], depth), max_size=3)
    if annotation is Any:
        return clean_json_values
    if isinstance(annotation, type) and issubclass(annotation, SchemaModel):
        return model_strategy(annotation, depth + 1)
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.integers(min_value=-(2**63), max_value=2**64 - 1)
    if annotation is str:
        return st.text(max_size=12)
    raise AssertionError(f"no strategy for {annotation!r}")


@functools.cache
def model_strategy(model: type[SchemaModel], depth: int = 0) -> st.SearchStrategy[SchemaModel]:
    hints = typing.get_type_hints(model)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    if depth < 4:
        for info in model.schema_fields():
            fields[info.attr] = st.none() | _strategy_for(hints[info.attr], depth)
    return st.builds(model, **fields)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_built_models_round_trip(data: st.DataObject) -> None:
    model_cls = data.draw(
        st.sampled_from(
            [ComputeSystem, Properties, HostComputeNetwork, HostComputeEndpoint, ProcessParameters]
        )
        | st.sampled_from(MODELS)
    )
    model = data.draw(model_strategy(model_cls))
    doc = model.to_dict()
    assert model_cls.from_dict(doc) == model
    assert model_cls.from_json(model.to_json()) == model


@settings(max_examples=40, deadline=None)
@given(settings_value=clean_json_values)
def test_any_fields_pass_json_through(settings_value: Any) -> None:
    request = ModifySettingRequest(ResourcePath="x", Settings=settings_value)
    doc = request.to_dict()
    assert doc["Settings"] == settings_value
    assert ModifySettingRequest.from_json(request.to_json()).Settings == settings_value
