"""``Frozen``: the base of the package's small immutable value classes.

What ``@dataclass(frozen=True)`` gives -- assignment and deletion refused, equality and hash
by value (same class only), a ``Name(field=value, ...)`` repr, copy and pickle -- without
importing ``dataclasses`` (with ``inspect``, ~5-10 ms of every process that imports a module
defining one: ``hcs-sandbox ls`` among them).

A subclass names its fields in ``_FIELDS`` (usually also its ``__slots__``), in the order
of its ``__init__`` parameters, and sets them in ``__init__`` with ``object.__setattr__``.
A field may be a property over other slots (the state store's ``Record.spec``, decoded on
first read): equality, hash, repr, copy and pickle read every field through ``getattr``, so
they run it (and raise what it raises).
Pure: importable from every layer (tests/test_layers.py).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~5 ms at start-up
if TYPE_CHECKING:
    from typing import ClassVar

__all__ = ["Frozen"]


class Frozen:
    """Immutable, compared and hashed by value (see the module docstring)."""

    __slots__ = ()
    _FIELDS: ClassVar[tuple[str, ...]] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._FIELDS)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(
            f"cannot assign to field {name!r} ({type(self).__name__} is immutable)"
        )

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} ({type(self).__name__} is immutable)")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Frozen)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())  # a TypeError for dict fields, as with the dataclass

    def __reduce__(self) -> tuple[type[Frozen], tuple[object, ...]]:
        return (type(self), self._values())  # copy.copy, copy.deepcopy and pickle

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._FIELDS)
        return f"{type(self).__name__}({fields})"
