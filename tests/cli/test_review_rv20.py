"""Review RV20 (the field kit): what ``doctor`` reports, and the inputs around it."""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import CliEnv, Result

from hcs_sandbox import Sandbox, SandboxSpec, errors
from hcs_sandbox.sandbox import doctor
from hcs_sandbox.sandbox.spec import BaseImage

Cli = Callable[..., Result]

ROOT = Path(__file__).resolve().parents[2]


# --- F8: the docs example's ResultError matches its HRESULT --------------------------------


def test_field_kit_example_result_error_matches_its_hresult() -> None:
    """HCS puts the HRESULT in ResultError's ``Error`` as a signed 32-bit number."""
    text = (ROOT / "docs" / "field-kit.md").read_text(encoding="utf-8")
    pairs = re.findall(r"HRESULT: \w+ (0x[0-9A-Fa-f]{8})\n\s*ResultError: \{'Error': (-?\d+)", text)
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


# --- F5: plan shows the variant run would use, and where it came from ----------------------


def _save_working(state: Path, variant: str) -> Path:
    report = doctor.DoctorReport(
        simulated=True,
        deep=[doctor.VariantResult(variant, "host", True, [doctor.Step("start", True, 0.1)])],
    )
    return doctor.save_report(report, state / doctor.REPORT_FILENAME)


def test_plan_defaults_to_the_variant_run_uses(cli: Cli, cli_env: CliEnv) -> None:
    first = cli("plan", "--name", "p")
    assert first.code == 0, first.err
    assert (
        "base host (documented variant, the default: no 'doctor --deep' report at "
        in (first.out.splitlines()[0])
    )
    path = _save_working(cli_env.state, "wsb-compat")
    human = cli("plan", "--name", "p")
    assert human.code == 0, human.err
    assert human.out.splitlines()[0].startswith(
        f"Plan for sandbox p: base host (wsb-compat variant, from the doctor report {path})"
    ), human.out.splitlines()[0]
    document = cli("plan", "--name", "p", "--json").json()
    assert document["base"]["variant"] == "wsb-compat"
    assert document["base"]["variant_from"] == f"from the doctor report {path}"
    assert "RunInSilo" in document["compute_system"]["VirtualMachine"]
    # run uses the same document
    assert cli("run", "-d", "--name", "w").code == 0
    (inspected,) = cli("inspect", "w", "--json").json()
    assert any("wsb-compat" in w for w in inspected["warnings"]), inspected["warnings"]
    assert cli("rm", "-f", "w").code == 0
    # --variant still wins, and says so
    forced = cli("plan", "--name", "p", "--variant", "documented")
    assert "base host (documented variant, from --variant)" in forced.out.splitlines()[0]


# --- F6: a misspelt HCS_SANDBOX_HOST_VARIANT is refused ------------------------------------


def test_misspelt_host_variant_is_refused(
    cli: Cli, cli_env: CliEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(doctor.ENV_VARIANT, "wsb_compat")
    expected = (
        "HCS_SANDBOX_HOST_VARIANT='wsb_compat' is not a host document variant "
        "(set it to documented or wsb-compat, or unset it)"
    )
    for argv in (("run", "-d", "--name", "v1"), ("create", "--name", "v1"), ("plan",)):
        assert _error_line(cli(*argv)) == expected
    assert cli("ls", "-a", "-q").out.strip() == ""
    with pytest.raises(errors.SpecError, match="wsb_compat") as info:
        doctor.preferred_variant()
    assert info.value.field == doctor.ENV_VARIANT
    # Case and spaces do not matter; an empty value means "not set".
    monkeypatch.setenv(doctor.ENV_VARIANT, " WSB-Compat ")
    assert doctor.preferred_variant() == "wsb-compat"
    monkeypatch.setenv(doctor.ENV_VARIANT, " ")
    assert doctor.preferred_variant() is None
