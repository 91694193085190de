"""The layering rule: native → hcs → sandbox → cli, each importing only from below.

``hcs_sandbox.errors``, ``hcs_sandbox._version``, ``hcs_sandbox._frozen``,
``hcs_sandbox._simenv`` (the reading of HCS_SANDBOX_SIMULATOR) and ``hcs_sandbox.schema`` are
pure and may be imported by every layer.  The simulator is a backend: only the loader reaches
it, and it may use the native layer's loader (for NativeUnavailable) and the pure modules.  The CLI
uses only the public API: the top-level package, ``hcs_sandbox.sandbox`` and the pure modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "hcs_sandbox"
PURE = {"errors", "_version", "_frozen", "_simenv", "schema"}

ALLOWED: dict[str, set[str]] = {
    "native": {"native", "sim"} | PURE,  # loader -> sim.backend, lazily, when asked for
    "hcs": {"native", "hcs"} | PURE,
    "sandbox": {"native", "hcs", "sandbox"} | PURE,
    "cli": {"cli", "sandbox", "<top>"} | PURE,
    "sim": {"sim", "native"} | PURE,
    "schema": {"schema", "errors"},
}


def _layer_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "hcs_sandbox":
        return "<external>"
    if len(parts) == 1:
        return "<top>"
    return parts[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    package = "hcs_sandbox." + ".".join(path.relative_to(SRC).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rstrip(".").split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            if module == "hcs_sandbox":
                # ``from hcs_sandbox import errors`` imports the submodule; ``import Sandbox``
                # from the top-level facade is the public API.
                for alias in node.names:
                    sub = SRC / alias.name
                    is_module = sub.is_dir() or sub.with_suffix(".py").is_file()
                    found.append(
                        (node.lineno, f"hcs_sandbox.{alias.name}" if is_module else module)
                    )
                continue
            found.append((node.lineno, module))
    return found


FILES = sorted(p for p in SRC.rglob("*.py") if p.relative_to(SRC).parts[0] in ALLOWED)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_layer_imports_only_from_below(path: Path) -> None:
    layer = path.relative_to(SRC).parts[0]
    bad = []
    for lineno, module in _imports(path):
        target = _layer_of(module)
        if target == "<external>":
            continue
        if target not in ALLOWED[layer]:
            bad.append(f"{path.relative_to(SRC)}:{lineno} imports {module}")
    assert not bad, "layering violated:\n" + "\n".join(bad)


def test_importing_the_package_loads_nothing_windows_only() -> None:
    import subprocess
    import sys

    code = (
        "import sys, hcs_sandbox, hcs_sandbox.native, hcs_sandbox.hcs, hcs_sandbox.sandbox;"
        "from hcs_sandbox.native import loader;"
        "assert loader._backend is None, 'a backend was chosen at import time';"
        "bad = [m for m in ('hcs_sandbox.sim.backend', 'msvcrt', '_winapi') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
