"""``doctor`` on the simulator: host checks, the deep run, --report, and the planner hint."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

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
    if compat["ok"]:
        assert result.code == 0, result.out + result.err
        assert report["working_variant"] == "wsb-compat"
    else:
        # The simulator is strict and may refuse wsb-compat's undocumented fields: then the
        # report must say exactly which call refused it.
        assert result.code == 1, result.out + result.err
        assert report["working_variant"] is None
        failed = next(s for s in compat["steps"] if not s["ok"])
        assert failed["function"]
        assert failed["hresult"]
    assert cli_proc("ls", "-a", "-q").out.strip() == ""


def test_bad_report_path_is_one_line(cli: Cli, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = cli("doctor", "--report", str(blocker / "sub" / "r.json"))
    assert result.code != 0
    lines = result.err_lines
    assert len(lines) == 1, result.err
    assert "doctor report" in lines[0]
