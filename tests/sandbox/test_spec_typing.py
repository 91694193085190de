"""SandboxSpec's constructor as type checkers see it (QA agent F5): it takes any sequence of
ports and mapped folders (the docs pass lists), while the attributes stay tuples.

The constructor type checkers see is written out in spec.py under ``if TYPE_CHECKING``
(the dataclass makes the real one from the fields at run time); this compares the two, so
that a new field cannot be forgotten there.  ``mypy --strict`` on examples/typed_spec.py
(scripts/test) checks the documented calls themselves."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from hcs_sandbox.sandbox import spec as spec_module
from hcs_sandbox.sandbox.spec import MappedFolder, PortMapping, SandboxSpec

SPEC_PY = Path(spec_module.__file__)

#: Fields whose constructor parameter is wider than the attribute.
WIDER = {
    "ports": ("tuple[PortMapping, ...]", "Sequence[PortMapping]"),
    "mapped_folders": ("tuple[MappedFolder, ...]", "Sequence[MappedFolder]"),
}


def _typed_init() -> ast.FunctionDef:
    tree = ast.parse(SPEC_PY.read_text(encoding="utf-8"))
    cls = next(
        n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == SandboxSpec.__name__
    )
    for node in cls.body:
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        ):
            for inner in node.body:
                if isinstance(inner, ast.FunctionDef) and inner.name == "__init__":
                    return inner
    raise AssertionError("SandboxSpec has no __init__ for type checkers")


def test_the_typed_constructor_lists_every_field_in_order_with_its_default() -> None:
    init = _typed_init()
    params = init.args.args[1:]  # after self
    fields = dataclasses.fields(SandboxSpec)
    assert [p.arg for p in params] == [f.name for f in fields]
    assert not init.args.kwonlyargs
    assert len(init.args.defaults) == len(params)
    for field, param, default in zip(fields, params, init.args.defaults, strict=True):
        assert eval(ast.unparse(default), vars(spec_module)) == field.default, field.name
        annotation = ast.unparse(param.annotation) if param.annotation else None
        attribute, wider = WIDER.get(field.name, (field.type, field.type))
        assert field.type == attribute, field.name
        assert annotation == wider, field.name


def test_lists_are_stored_as_tuples_and_the_spec_stays_hashable(tmp_path: Path) -> None:
    spec = SandboxSpec(
        network="nat",
        ports=[PortMapping(8080, 80)],
        mapped_folders=[MappedFolder(str(tmp_path), "C:\\data")],
    )
    assert type(spec.ports) is tuple
    assert type(spec.mapped_folders) is tuple
    same = SandboxSpec(
        network="nat",
        ports=(PortMapping(8080, 80),),
        mapped_folders=(MappedFolder(str(tmp_path), "C:\\data"),),
    )
    assert spec == same
    assert hash(spec) == hash(same)
