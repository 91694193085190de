"""``doctor`` on the simulator: host checks, the deep run, --report, and the planner hint."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import CliEnv, Result

from hcs_sandbox.sandbox import doctor

Cli = Callable[..., Result]


def test_doctor_on_the_simulator(cli: Cli) -> None:
    result = cli("doctor", "--json")
    assert result.code == 0, result.out + result.err
    report = result.json()
    assert report["simulated"] is True
    assert {c["name"] for c in report["checks"]} >= {"platform", "hcs", "disk"}
    hcs = next(c for c in report["checks"] if c["name"] == "hcs")
    assert hcs["status"] == "ok"
    assert hcs["data"]["schema_versions"]
    assert "deep" not in report
    human = cli("doctor")
    assert human.code == 0
    assert "[ok  ] hcs:" in human.out
    assert "note: simulated" in human.err


def test_doctor_deep_report(cli: Cli, cli_env: CliEnv, tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    result = cli("doctor", "--deep", "--report", str(path))
    assert result.code == 0, result.out + result.err
    assert "working variant: documented" in result.out
    saved = json.loads(path.read_text())
    assert saved["simulated"] is True
    assert saved["working_variant"] == "documented"
    steps = [s["name"] for s in saved["deep"][0]["steps"]]
    for expected in ("query properties", "pause", "resume", "terminate", "clean up"):
        assert expected in steps
    assert len(steps) > 8  # create's own steps are timed one by one
    assert all(s["ok"] for s in saved["deep"][0]["steps"])
    # the copy in the state dir is what create/run read back
    assert (cli_env.state / doctor.REPORT_FILENAME).is_file()
    assert doctor.preferred_variant() == "documented"
    # nothing left behind by the deep run
    assert cli("ls", "-a", "-q").out.strip() == ""


def test_doctor_deep_names_the_failing_call_and_tries_the_next_variant(
    cli_proc: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "r.json"
    result = cli_proc(
        "doctor",
        "--deep",
        "--report",
        str(path),
        extra_env={"HCS_SANDBOX_SIM_FAULTS": "HcsStartComputeSystem:1:0x80370105"},
    )
    assert "HcsStartComputeSystem" in result.out
    assert "HCS_E_INVALID_STATE" in result.out
    report = json.loads(path.read_text())
    assert [v["variant"] for v in report["deep"]] == ["documented", "wsb-compat"]
    documented, compat = report["deep"]
    failed = next(s for s in documented["steps"] if not s["ok"])
    assert failed["function"] == "HcsStartComputeSystem"
    assert failed["hresult"] == "0x80370105"
    assert failed["hresult_name"] == "HCS_E_INVALID_STATE"
    assert failed["error"]
    # the clean-up step still ran after the failure
    assert documented["steps"][-1]["name"] == "clean up"
    assert documented["steps"][-1]["ok"] is True
    # Windows accepts Windows Sandbox's own document (undocumented fields and all), and so
    # does the simulator (exactly the dump's fields: sim/data/wsb-dump-fields.json): the
    # second variant boots and becomes the working one.
    assert compat["ok"] is True, compat
    assert all(s["ok"] for s in compat["steps"])
    assert result.code == 0, result.out + result.err
    assert report["working_variant"] == "wsb-compat"
    assert "working variant: wsb-compat" in result.out
    assert cli_proc("ls", "-a", "-q").out.strip() == ""


def test_doctor_deep_boots_both_variants_on_the_simulator(cli_env: CliEnv) -> None:
    """Each host-base document variant, tried on its own, completes every deep step."""
    results = doctor.deep_run(state_dir=cli_env.state, variants=doctor.VARIANTS)
    assert [r.variant for r in results] == ["documented"]  # stops at the first that boots
    compat = doctor.deep_run(state_dir=cli_env.state, variants=("wsb-compat",))
    assert [(r.variant, r.ok) for r in compat] == [("wsb-compat", True)]
    assert all(s.ok for s in compat[0].steps)
    assert results[0].ok is True


def test_simulator_still_refuses_a_truly_unknown_key() -> None:
    """Accepting the Windows Sandbox dump's fields loosens nothing else."""
    from hcs_sandbox.sim.validate import SchemaError, validate_hcs, wsb_dump_fields

    assert "VirtualMachine.RunInSilo" in wsb_dump_fields()
    memory = {"SizeInMB": 1024, "EnablePrivateCompressionStore": True, "SharedMemoryMB": 2048}
    validate_hcs(memory, "VirtualMachine_Memory", (2, 4))
    with pytest.raises(SchemaError, match="EnableWarpDrive: unknown field"):
        validate_hcs({**memory, "EnableWarpDrive": True}, "VirtualMachine_Memory", (2, 4))
    with pytest.raises(SchemaError, match="Bogus: unknown field"):
        validate_hcs({"SiloBaseOsPath": "C:\\x", "Bogus": 1}, "WsbDump_RunInSilo", (2, 4))
    # Known to Windows from a schema-2.4 document: not accepted by a host below 2.4.
    with pytest.raises(SchemaError, match=r"new in schema 2\.4"):
        validate_hcs(memory, "VirtualMachine_Memory", (2, 3))
    # Types as the dump shows them.
    with pytest.raises(SchemaError, match="expected true or false"):
        validate_hcs({"EnableEpf": "yes"}, "VirtualMachine_Memory", (2, 4))


def test_bad_report_path_is_one_line(cli: Cli, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = cli("doctor", "--report", str(blocker / "sub" / "r.json"))
    assert result.code != 0
    lines = result.err_lines
    assert len(lines) == 1, result.err
    assert "doctor report" in lines[0]
