"""Cross-check of two independent readings of Microsoft's C signatures.

``hcs_sandbox.native.prototypes`` (the binding) and ``hcs_sandbox.sim.exports`` (the
simulator's own declarations) were written separately from the same sources.  Every export
the project needs must exist on both sides with the same ABI: the same return class and size
(signedness too, since HRESULTs are read as signed), and for each argument the same class and
size (pointer vs integer vs struct-by-value).  Argument signedness is not compared: a 32-bit
flag passed as ``c_int32`` or ``c_uint32`` is the same register.

The structures both sides build or read are compared field by field (offset and size).
"""

from __future__ import annotations

import ctypes
from typing import Any

import pytest

from hcs_sandbox.native import prototypes
from hcs_sandbox.native import types as nt

sim_exports = pytest.importorskip("hcs_sandbox.sim.exports")


def _abi(ctype: Any) -> tuple[str, int, bool | None]:
    """``(class, size, signed)`` of a ctypes type as the x64 calling convention sees it."""
    if ctype is None:
        return ("void", 0, None)
    if not isinstance(ctype, type):
        raise TypeError(f"not a ctypes type: {ctype!r}")
    pointer_like = (ctypes.c_void_p, ctypes.c_wchar_p, ctypes.c_char_p)
    if issubclass(ctype, pointer_like) or issubclass(ctype, (ctypes._Pointer, ctypes._CFuncPtr)):
        return ("ptr", ctypes.sizeof(ctypes.c_void_p), None)
    if issubclass(ctype, (ctypes.Structure, ctypes.Union)):
        return ("struct", ctypes.sizeof(ctype), None)
    size = ctypes.sizeof(ctype)
    return ("int", size, ctype(-1).value == -1)


def _declared(dll: str, name: str) -> tuple[Any, tuple[Any, ...]] | None:
    entry = sim_exports.EXPORTS.get((dll, name))
    if entry is None:
        return None
    restype, argtypes = entry
    return restype, tuple(argtypes)


@pytest.mark.parametrize("proto", prototypes.PROTOTYPES, ids=lambda p: f"{p.dll}!{p.name}")
def test_prototype_matches_simulator_declaration(proto: prototypes.Prototype) -> None:
    declared = _declared(proto.dll, proto.name)
    if declared is None:
        if proto.required:
            pytest.fail(f"the simulator does not declare {proto.dll}!{proto.name}")
        pytest.skip(f"optional export {proto.name} not simulated")
    restype, argtypes = declared
    assert _abi(proto.restype) == _abi(restype), f"{proto.name}: return type differs"
    assert len(proto.argtypes) == len(argtypes), f"{proto.name}: argument count differs"
    for index, (ours, theirs) in enumerate(zip(proto.argtypes, argtypes, strict=True)):
        assert _abi(ours)[:2] == _abi(theirs)[:2], (
            f"{proto.name} argument {index}: binding {ours!r} vs simulator {theirs!r}"
        )


def test_every_simulated_export_is_known_to_the_binding() -> None:
    unknown = [
        f"{dll}!{name}"
        for dll, name in sim_exports.EXPORTS
        if prototypes.lookup(name) is None or prototypes.lookup(name).dll != dll  # type: ignore[union-attr]
    ]
    assert not unknown, f"simulated exports missing from the prototype table: {unknown}"


def _layout(struct: type[ctypes.Structure]) -> list[tuple[int, int]]:
    return [
        (getattr(struct, name).offset, getattr(struct, name).size) for name, *_ in struct._fields_
    ]


@pytest.mark.parametrize(
    ("ours", "theirs_name"),
    [
        (nt.GUID, "GUID"),
        (nt.HCS_EVENT, "HCS_EVENT"),
        (nt.HCS_PROCESS_INFORMATION, "HCS_PROCESS_INFORMATION"),
        (nt.VIRTUAL_STORAGE_TYPE, "VIRTUAL_STORAGE_TYPE"),
    ],
)
def test_structure_layouts_match(ours: type[ctypes.Structure], theirs_name: str) -> None:
    theirs = getattr(sim_exports, theirs_name, None)
    if theirs is None:
        pytest.skip(f"the simulator declares no {theirs_name}")
    assert ctypes.sizeof(ours) == ctypes.sizeof(theirs)
    assert _layout(ours) == _layout(theirs)


def test_create_virtual_disk_parameters_version2_matches() -> None:
    theirs = getattr(sim_exports, "CREATE_VIRTUAL_DISK_PARAMETERS_V2", None)
    if theirs is None:
        pytest.skip("the simulator declares no CREATE_VIRTUAL_DISK_PARAMETERS_V2")
    union_offset = nt.CREATE_VIRTUAL_DISK_PARAMETERS.u.offset + nt._CreateVersions.Version2.offset
    for name, *_ in nt._CreateVersion2._fields_:
        field = getattr(nt._CreateVersion2, name)
        assert getattr(theirs, name).offset == union_offset + field.offset, name
        assert getattr(theirs, name).size == field.size, name
    assert theirs.Version.offset == nt.CREATE_VIRTUAL_DISK_PARAMETERS.Version.offset


def test_callback_types_match() -> None:
    for name in ("HCS_OPERATION_COMPLETION", "HCS_EVENT_CALLBACK"):
        theirs = getattr(sim_exports, name, None)
        if theirs is None:
            continue
        ours = getattr(nt, name)
        assert _abi(ours._restype_) == _abi(theirs._restype_), name
        assert [_abi(t)[:2] for t in ours._argtypes_] == [_abi(t)[:2] for t in theirs._argtypes_]


def test_every_prototype_resolves_in_the_simulator(tmp_path: Any) -> None:
    backend_module = pytest.importorskip("hcs_sandbox.sim.backend")
    backend = backend_module.SimulatorBackend(str(tmp_path))
    missing = []
    for proto in prototypes.PROTOTYPES:
        try:
            address = backend.resolve(proto.dll, proto.name)
        except Exception as exc:
            if proto.required:
                missing.append(f"{proto.dll}!{proto.name}: {exc}")
            continue
        assert address, proto.name
    assert not missing, missing
    close = getattr(backend, "close", None)
    if callable(close):
        close()


def test_operation_completion_gets_context_through_the_simulator(tmp_path: Any) -> None:
    """HcsCreateOperation(context, callback): an argument-order check the ABI test cannot do."""
    pytest.importorskip("hcs_sandbox.sim.backend")
    import threading

    from hcs_sandbox.native import api, loader, strings

    loader.use_simulator(tmp_path)
    try:
        seen: list[tuple[int | None, int | None]] = []
        done = threading.Event()

        def completed(op: int | None, context: int | None) -> None:
            seen.append((op, context))
            done.set()

        callback = nt.HCS_OPERATION_COMPLETION(completed)
        op = api.computecore.HcsCreateOperation(0x1234, callback)
        assert op
        try:
            assert api.computecore.HcsEnumerateComputeSystems(None, op) == 0
            assert done.wait(10), "the completion callback never ran"
            assert seen == [(op, 0x1234)]
            document = ctypes.c_void_p()
            assert api.computecore.HcsGetOperationResult(op, ctypes.byref(document)) == 0
            assert strings.take_hcs_string(document) is not None
        finally:
            api.computecore.HcsCloseOperation(op)
    finally:
        loader.reset_backend()
