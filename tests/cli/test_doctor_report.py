"""The doctor's report: round trip, loading errors, the preferred variant, deep-run bookkeeping.

No HCS needed: the deep run is driven with a stand-in runner here; the real one is exercised
through the simulator in test_cli_doctor.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox import doctor
from hcs_sandbox.sandbox.doctor import Check, DoctorReport, Step, VariantResult


def _report(*, simulated: bool = True, working: str | None = "wsb-compat") -> DoctorReport:
    deep = [
        VariantResult(
            "documented",
            "host",
            False,
            [
                Step(
                    "create compute system",
                    False,
                    0.5,
                    "boom",
                    "HcsCreateComputeSystem",
                    "0x8037010D",
                    "HCS_E_INVALID_JSON",
                    {"ErrorMessage": "bad"},
                ),
            ],
        )
    ]
    if working:
        deep.append(VariantResult(working, "host", True, [Step("start", True, 1.0)]))
    return DoctorReport(
        simulated=simulated,
        checks=[
            Check("platform", "ok", "fine", data={"build": 1}),
            Check("disk", "warn", "low", "free"),
        ],
        deep=deep,
        host={"platform": "test"},
        created_at=123.0,
        tool_version="0.0",
    )


def test_round_trip(tmp_path: Path) -> None:
    report = _report()
    path = doctor.save_report(report, tmp_path / "sub" / "r.json")
    loaded = doctor.load_doctor_report(path)
    assert loaded.to_dict() == report.to_dict()
    assert loaded.working_variant == "wsb-compat"
    assert loaded.deep is not None
    assert loaded.deep[0].failed_step is not None
    assert loaded.deep[0].failed_step.hresult_name == "HCS_E_INVALID_JSON"
    assert json.loads(path.read_text())["working_variant"] == "wsb-compat"


def test_ok_and_unavailable() -> None:
    assert _report().ok
    assert not _report(working=None).ok
    failing = DoctorReport(simulated=False, checks=[Check("hcs", "fail", "HCS unavailable")])
    assert not failing.ok
    assert failing.hcs_unavailable
    assert "deep" not in failing.to_dict()


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read"), ("{not json", "not JSON"), ('{"a": 1}', "not an hcs-sandbox doctor")],
)
def test_load_errors_are_one_clear_spec_error(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(errors.SpecError, match=message) as info:
        doctor.load_doctor_report(path)
    assert "doctor --deep --report" in str(info.value)


def test_preferred_variant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(doctor.ENV_VARIANT, raising=False)
    path = tmp_path / "r.json"
    monkeypatch.setenv(doctor.ENV_DOCTOR_REPORT, str(path))
    assert doctor.preferred_variant(simulated=True) is None  # no report yet
    doctor.save_report(_report(), path)
    assert doctor.preferred_variant(simulated=True) == "wsb-compat"
    assert doctor.preferred_variant(simulated=False) is None  # made on the other backend
    doctor.save_report(_report(working=None), path)
    assert doctor.preferred_variant(simulated=True) is None
    path.write_text("garbage")
    assert doctor.preferred_variant(simulated=True) is None  # never raises
    monkeypatch.setenv(doctor.ENV_VARIANT, "WSB-compat")
    assert doctor.preferred_variant(simulated=True) == "wsb-compat"


def test_default_report_path_is_in_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(doctor.ENV_DOCTOR_REPORT, raising=False)
    monkeypatch.setenv("HCS_SANDBOX_STATE_DIR", str(tmp_path))
    assert doctor.default_report_path() == tmp_path / doctor.REPORT_FILENAME


def test_deep_run_tries_variants_until_one_boots() -> None:
    tried: list[str] = []

    def runner(variant: str, recorder: object, _state: object) -> None:
        tried.append(variant)
        rec = recorder  # a doctor._Recorder
        assert isinstance(rec, doctor._Recorder)
        rec.mark("create")
        rec.mark("start")
        if variant == "documented":
            raise errors.error_from_hresult(
                0x8037010D,
                function="HcsStartComputeSystem",
                result_document={"ErrorMessage": "The JSON document is invalid"},
            )
        with rec.step("pause"):
            pass

    messages: list[str] = []
    results = doctor.deep_run(runner=runner, progress=messages.append)
    assert tried == ["documented", "wsb-compat"]
    first, second = results
    assert not first.ok
    assert [s.name for s in first.steps] == ["create", "start"]
    failed = first.failed_step
    assert failed is not None
    assert failed.name == "start"
    assert failed.function == "HcsStartComputeSystem"
    assert failed.hresult == "0x8037010D"
    assert failed.hresult_name == "HCS_E_INVALID_JSON"
    assert failed.result_error == {"ErrorMessage": "The JSON document is invalid"}
    assert second.ok
    assert [s.name for s in second.steps] == ["create", "start", "pause"]
    assert messages[0] == "documented: create"


def test_deep_run_stops_at_the_first_working_variant() -> None:
    results = doctor.deep_run(runner=lambda v, r, s: None)
    assert [r.variant for r in results] == ["documented"]


def test_doctor_without_windows_or_simulator_exits_3(tmp_path: Path) -> None:
    if sys.platform == "win32":
        pytest.skip("this checks the non-Windows path")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HCS_SANDBOX_")}
    env["HCS_SANDBOX_STATE_DIR"] = str(tmp_path / "state")
    for extra in ([], ["--json"]):
        done = subprocess.run(
            [sys.executable, "-m", "hcs_sandbox", "doctor", *extra],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert done.returncode == 3, done.stderr
        assert "Traceback" not in done.stderr
        if extra:
            report = json.loads(done.stdout)
            assert report["simulated"] is False
            hcs = next(c for c in report["checks"] if c["name"] == "hcs")
            assert hcs["status"] == "fail"
            assert "HCS unavailable: not Windows" in hcs["detail"]
            assert "--simulator" in hcs["fix"]
        else:
            assert "HCS unavailable: not Windows" in done.stdout


def test_preferred_variant_follows_the_state_dir_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No cache: a report that appears, changes or disappears is seen by the next call.
    monkeypatch.delenv(doctor.ENV_VARIANT, raising=False)
    monkeypatch.delenv(doctor.ENV_DOCTOR_REPORT, raising=False)
    state = tmp_path / "state"
    state.mkdir()
    path = state / doctor.REPORT_FILENAME
    assert doctor.preferred_variant(state, simulated=True) is None
    doctor.save_report(_report(), path)
    assert doctor.preferred_variant(state, simulated=True) == "wsb-compat"
    assert doctor.preferred_variant(str(state) + "/", simulated=True) == "wsb-compat"
    doctor.save_report(_report(working="documented"), path)
    assert doctor.preferred_variant(state, simulated=True) == "documented"
    path.unlink()
    assert doctor.preferred_variant(state, simulated=True) is None
    path.mkdir()  # not a file
    assert doctor.preferred_variant(state, simulated=True) is None


@pytest.mark.parametrize("named", [None, "/r/report.json", "rel/r.json", "/r/dir/"], ids=str)
@pytest.mark.parametrize("state", [None, "/s", "/s/", "rel", "~/s", "/"], ids=str)
def test_report_path_text_is_str_of_default_report_path(
    named: str | None, state: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if named is None:
        monkeypatch.delenv(doctor.ENV_DOCTOR_REPORT, raising=False)
    else:
        monkeypatch.setenv(doctor.ENV_DOCTOR_REPORT, named)
    assert doctor._report_path_text(state) == str(doctor.default_report_path(state))
