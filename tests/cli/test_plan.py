"""``hcs-sandbox plan``: human and --json output, .wsb input, flags, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hcs_sandbox.cli.main import main

WSB_DIR = Path(__file__).resolve().parent.parent / "data" / "wsb"


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["plan", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_human_output_has_headings_documents_and_warnings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_main(
        capsys, "--name", "web", "--network", "nat", "-p", "8080:80", "--map", "C:\\src:C:\\w:rw"
    )
    assert code == 0, err
    for heading in (
        "== Compute system (HcsCreateComputeSystem) ==",
        "== Files ==",
        "== Shared NAT network (HcnCreateNetwork, made once) ==",
        "== Endpoint (HcnCreateEndpoint) ==",
        "== Mapped folders ==",
        "== Display ==",
        "== Warnings ==",
    ):
        assert heading in out
    assert '"Owner": "hcs-sandbox"' in out
    assert "map0: C:\\src -> C:\\w (READ-WRITE)" in out
    assert "- networking is on (nat)" in out
    assert "writable from the sandbox" in out


def test_json_output_is_one_document_with_warnings_also_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_main(capsys, "--json", "--network", "nat", "--cpus", "4")
    assert code == 0
    data = json.loads(out)
    assert data["compute_system"]["VirtualMachine"]["ComputeTopology"]["Processor"] == {"Count": 4}
    assert data["network"]["Name"] == "hcs-sandbox-nat"
    assert data["warnings"]
    for warning in data["warnings"]:
        assert f"warning: {warning}" in err


def test_wsb_input_with_flags_overriding(capsys: pytest.CaptureFixture[str]) -> None:
    wsb = WSB_DIR / "permissive.wsb"
    code, out, err = run_main(capsys, str(wsb), "--json", "--network", "none", "--memory", "6G")
    assert code == 0, err
    data = json.loads(out)
    assert data["spec"]["network"] == "none"  # the flag beats <Networking>Enable</Networking>
    assert data["compute_system"]["VirtualMachine"]["ComputeTopology"]["Memory"]["SizeInMB"] == 6144
    assert "NetworkAdapters" not in data["compute_system"]["VirtualMachine"]["Devices"]
    assert data["spec"]["printer"] is True
    assert any("printer" in w for w in data["warnings"])
    assert "printer" in err


def test_variant_and_bases(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "--json", "--variant", "wsb-compat")
    assert code == 0
    assert "RunInSilo" in json.loads(out)["compute_system"]["VirtualMachine"]
    code, out, _ = run_main(capsys, "--json", "--base", "vhdx:D:\\vms\\a.vhdx")
    assert code == 0
    assert json.loads(out)["scratch"]["method"] == "differencing"
    code, out, _ = run_main(capsys, "--base", "image:C:\\img", "--display", "desktop")
    assert code == 0
    assert "copy of C:\\img\\UtilityVM\\SystemTemplate.vhdx" in out
    assert "basic: \\\\.\\pipe\\hcs-sandbox-" in out


def test_a_differencing_scratch_has_the_parents_size(capsys: pytest.CaptureFixture[str]) -> None:
    # CREATE_VIRTUAL_DISK_PARAMETERS: MaximumSize "must be zero" with a ParentPath, so the
    # plan asks for no size of its own and says whose size the disk has.
    code, out, _ = run_main(capsys, "--json", "--base", "vhdx:D:\\vms\\a.vhdx")
    assert code == 0
    assert json.loads(out)["scratch"]["size_bytes"] == 0
    code, out, _ = run_main(capsys, "--base", "vhdx:D:\\vms\\a.vhdx")
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("scratch disk:"))
    assert "differencing disk over D:\\vms\\a.vhdx, of the parent's size;" in line
    code, out, _ = run_main(capsys)  # the host base: a new disk of the planned size
    assert code == 0
    assert "new 20 GiB dynamic VHDX" in out


def test_host_schema_gates_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "--json", "--host-schema", "2.1")
    assert code == 0
    assert json.loads(out)["schema_version"] == "2.1"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--memory", "lots"], "--memory"),
        (["--memory", "100"], "invalid --memory 100"),  # the flag, not the field (RV16)
        (["--map", "C:\\src"], "--map"),
        (["--map", "relative:C:\\x"], "invalid --map 'relative:C:\\x'"),  # the flag (RV18)
        (["--cpus", "0"], "cpus"),
        (["--base", "floppy:A:\\"], "--base"),
        (["--host-schema", "two"], "--host-schema"),
        (["--host-schema", "2.1", "--variant", "wsb-compat"], "2.4"),
        (["--network", "wifi"], "--network"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    try:
        code = main(["plan", *argv])
    except SystemExit as exc:  # argparse choices errors exit from the parser
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err
    assert "Traceback" not in err


def test_bad_wsb_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.wsb"
    bad.write_text("<Configuration><MemoryInMB>lots</MemoryInMB></Configuration>")
    code, out, err = run_main(capsys, str(bad))
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "bad.wsb" in err


def _subprocess(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HCS_SANDBOX_")}
    return subprocess.run(
        [sys.executable, "-m", "hcs_sandbox", "plan", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_subprocess_json_and_bad_input() -> None:
    ok = _subprocess("--json", "--name", "sub", "--map", "C:\\src:C:\\work")
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert data["guest_links"][0]["read_only"] is True
    assert data["ids"]["sandbox_id"] == data["host_facts"]["sandbox_id"]
    bad = _subprocess("--map", "nowhere")
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "Traceback" not in bad.stderr


def test_plan_output_is_the_same_every_time(capsys: pytest.CaptureFixture[str]) -> None:
    _, first, _ = run_main(capsys, "--json", "--name", "same", "--network", "nat")
    _, second, _ = run_main(capsys, "--json", "--name", "same", "--network", "nat")
    assert first == second


def test_help_flags_loosening_options() -> None:
    from hcs_sandbox.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "verb")
    help_text = sub.choices["plan"].format_help()  # type: ignore[attr-defined]
    assert "LOOSEN" in help_text
    assert "EXPERIMENTAL" in help_text
