"""``Prototype`` is a plain class (no ``dataclasses`` at import) that behaves like the
frozen dataclass it was: constructor, defaults, fields, ``==``, hash, repr, immutability."""

from __future__ import annotations

import copy
import dataclasses
from ctypes import c_int32, c_void_p

import pytest

from hcs_sandbox.native.prototypes import PROTOTYPES, Prototype, lookup

FIELDS = (
    "dll",
    "name",
    "restype",
    "argtypes",
    "returns",
    "source",
    "min_os",
    "required",
    "use_last_error",
)


@dataclasses.dataclass(frozen=True)
class _Twin:
    dll: str
    name: str
    restype: object
    argtypes: tuple[object, ...]
    returns: str
    source: str
    min_os: str
    required: bool = True
    use_last_error: bool = False


def test_prototype_behaves_like_the_frozen_dataclass() -> None:
    args = ("k.dll", "F", c_int32, (c_void_p,), "hresult", "doc", "Win7")
    ours, twin = Prototype(*args), _Twin(*args)
    assert repr(ours) == repr(twin).replace("_Twin(", "Prototype(", 1)
    assert (ours.required, ours.use_last_error) == (True, False)
    assert ours == Prototype(*args)
    assert hash(ours) == hash(Prototype(*args))
    assert ours != Prototype(*args, required=False)
    assert ours != Prototype(*args, use_last_error=True)
    assert Prototype.__match_args__ == FIELDS == _Twin.__match_args__
    for name in FIELDS:
        assert getattr(ours, name) == getattr(twin, name)
        with pytest.raises(AttributeError):
            setattr(ours, name, None)
        with pytest.raises(AttributeError):
            delattr(ours, name)
    assert copy.copy(ours) == ours
    assert copy.deepcopy(ours) == ours
    assert Prototype(**dict(zip(FIELDS, (*args, False, True), strict=True))) == Prototype(
        *args, False, True
    )


def test_the_table_is_unchanged_in_kind() -> None:
    assert len({p.name for p in PROTOTYPES}) == len(PROTOTYPES)
    create = lookup("HcsCreateOperation")
    assert create is not None
    assert create.dll == "computecore.dll"
    assert create.returns == "handle"
    assert len(set(PROTOTYPES)) == len(PROTOTYPES)  # hashable, distinct
