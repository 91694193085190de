"""Review RV20 (the field kit): what ``doctor`` reports, and the inputs around it."""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import Result

from hcs_sandbox import Sandbox, SandboxSpec, errors
from hcs_sandbox.sandbox.spec import BaseImage

Cli = Callable[..., Result]

ROOT = Path(__file__).resolve().parents[2]


# --- F8: the docs example's ResultError matches its HRESULT --------------------------------


def test_field_kit_example_result_error_matches_its_hresult() -> None:
    """HCS puts the HRESULT in ResultError's ``Error`` as a signed 32-bit number."""
    text = (ROOT / "docs" / "field-kit.md").read_text(encoding="utf-8")
    pairs = re.findall(
        r"HRESULT: \w+ (0x[0-9A-Fa-f]{8})\n\s*ResultError: \{'Error': (-?\d+)", text
    )
    assert pairs, "the field-kit example lost its HRESULT/ResultError lines"
    for hresult, error in pairs:
        assert ctypes.c_int32(int(hresult, 16)).value == int(error), (hresult, error)


# --- F7: an image base without UtilityVM\SystemTemplate.vhdx is bad input -----------------


def _error_line(result: Result) -> str:
    assert result.code == 2, (result.code, result.err)
    lines = [line for line in result.err_lines if not line.startswith("warning: ")]
    assert len(lines) == 1, result.err
    assert lines[0].startswith("hcs-sandbox: error: "), lines[0]
    return lines[0].removeprefix("hcs-sandbox: error: ")


@pytest.mark.parametrize("template", ["missing", "folder"])
def test_image_base_without_system_template_is_bad_input(
    cli: Cli, tmp_path: Path, template: str
) -> None:
    image = tmp_path / "image"
    (image / "UtilityVM" / "Files").mkdir(parents=True)
    if template == "folder":
        (image / "UtilityVM" / "SystemTemplate.vhdx").mkdir()
    for verb in ("run", "create"):
        flags = ["-d"] if verb == "run" else []
        line = _error_line(cli(verb, *flags, "--base", f"image:{image}"))
        # the same shape as a missing UtilityVM\Files folder
        assert line.startswith(
            f"invalid --base 'image:{image}': base image folder {image} cannot be used: "
            "it has no UtilityVM\\SystemTemplate.vhdx file"
        ), line
    assert cli("ls", "-a", "-q").out.strip() == ""
    # The API: a SpecError on the base's path, before anything is made.
    spec = SandboxSpec(base=BaseImage("image", str(image)))
    with pytest.raises(errors.SpecError, match=r"UtilityVM\\SystemTemplate\.vhdx") as info:
        Sandbox.create(spec)
    assert info.value.field == "base.path"
    assert info.value.exit_code == 2
    (image / "UtilityVM" / "Files").rmdir()
    line = _error_line(cli("create", "--base", f"image:{image}"))
    assert line.startswith(
        f"invalid --base 'image:{image}': base image folder {image} cannot be used: "
        "it has no UtilityVM\\Files folder"
    ), line
