"""Review RV20 (the field kit): what ``doctor`` reports, and the inputs around it."""

from __future__ import annotations

import ctypes
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_support import CliEnv, Result

from hcs_sandbox import Sandbox, SandboxSpec, errors
from hcs_sandbox.cli.doctor import render, summary
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


# --- F1: a clean-up failure after a good boot is its own failure ---------------------------

_CLEANUP_FAILS_ONCE = """
import os, sys
from hcs_sandbox import errors
from hcs_sandbox.sandbox import storage
real = storage.remove_path
failed = []
def remove_path(path):
    if os.fspath(path).endswith("sandbox.vhdx") and not failed:
        failed.append(path)
        raise errors.StorageError(
            f"could not delete {path}: [WinError 32] The process cannot access the file "
            "because it is being used by another process")
    return real(path)
storage.remove_path = remove_path
from hcs_sandbox.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def _doctor_with_failing_cleanup(cli_env: CliEnv, *argv: str) -> Result:
    done = subprocess.run(
        [sys.executable, "-c", _CLEANUP_FAILS_ONCE, "doctor", "--deep", *argv],
        env=cli_env.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def test_cleanup_failure_after_a_good_boot(cli: Cli, cli_proc: Cli, cli_env: CliEnv) -> None:
    human = _doctor_with_failing_cleanup(cli_env)
    assert human.code == 1, human.out + human.err
    out = human.out
    assert "variant documented: boots, but its clean-up failed" in out
    assert "variant wsb-compat" not in out  # the document booted: nothing else to try
    assert "working variant: documented" in out
    assert "[FAIL] clean up" in out
    fix = next(line for line in out.splitlines() if line.strip().startswith("fix: run"))
    assert "'hcs-sandbox prune --state-dir " in fix
    assert out.rstrip().endswith(
        "problems found: variant documented booted, but its clean-up failed; see the fixes above"
    )
    # The preference saved for create/run stays the documented variant.
    assert doctor.preferred_variant() == "documented"
    saved = json.loads((cli_env.state / doctor.REPORT_FILENAME).read_text())
    assert saved["ok"] is False
    assert saved["working_variant"] == "documented"
    assert [(v["variant"], v["ok"], v["cleanup_failed"]) for v in saved["deep"]] == [
        ("documented", True, True)
    ]
    # What is left is what prune finishes: the user runs the fix.
    assert "removing" in cli_proc("ls", "-a").out
    assert cli_proc("prune").code == 0
    assert cli_proc("ls", "-a", "-q").out.strip() == ""
    assert not any((cli_env.state / "sandboxes").iterdir())
    # --json says the same (ok false, exit 1)
    as_json = _doctor_with_failing_cleanup(cli_env, "--json")
    assert as_json.code == 1
    report = json.loads(as_json.out)
    assert report["ok"] is False
    assert report["working_variant"] == "documented"
    assert cli_proc("prune").code == 0


def _runner(fail_at: str, error: BaseException, *, cleanup_error: bool = False) -> Any:
    def run(variant: str, recorder: Any, _state: object) -> None:
        recorder.mark("create")
        for name in ("creating the scratch disk (create)", "creating the compute system"):
            recorder.mark(name)
            if name == fail_at and variant == "documented":
                raise error
        recorder.mark("start")
        if fail_at == "start" and variant == "documented":
            raise error
        with recorder.step("terminate"):
            pass

        def remove() -> None:
            if cleanup_error:
                raise errors.StorageError("could not delete sandbox.vhdx")

        recorder.clean_up(remove, fix="run 'hcs-sandbox prune'")

    return run


def test_variant_is_judged_by_its_document_steps() -> None:
    # A document step fails: the next variant is tried.
    bad_json = errors.error_from_hresult(0x8037010D, function="HcsCreateComputeSystem")
    tried = doctor.deep_run(runner=_runner("creating the compute system", bad_json))
    assert [(r.variant, r.ok, r.reached_document) for r in tried] == [
        ("documented", False, True),
        ("wsb-compat", True, True),
    ]
    # A step before the document fails: no variant is judged, none other is tried.
    disk = errors.error_from_hresult(0x80070070, function="HcsFormatWritableLayerVhd")
    stopped = doctor.deep_run(runner=_runner("creating the scratch disk (create)", disk))
    assert [(r.variant, r.ok, r.reached_document) for r in stopped] == [
        ("documented", False, False)
    ]
    report = doctor.DoctorReport(simulated=True, deep=stopped)
    assert not report.ok
    assert report.working_variant is None
    text = render(report)
    assert "variant documented: FAILED before the compute system was created" in text
    assert "no document variant was tried" in text
    # The clean-up fails after a good boot: the variant boots; the report is not ok.
    dirty = doctor.deep_run(runner=_runner("", disk, cleanup_error=True))
    assert [(r.variant, r.ok, r.cleanup_failed) for r in dirty] == [("documented", True, True)]
    report = doctor.DoctorReport(simulated=True, deep=dirty)
    assert report.working_variant == "documented"
    assert not report.ok
    assert report.to_dict()["ok"] is False
    loaded = doctor.DoctorReport.from_dict(report.to_dict())
    assert loaded.deep is not None
    assert loaded.deep[0].cleanup_failed
    assert not loaded.ok
    assert summary(report) == (
        "problems found: variant documented booted, but its clean-up failed; see the fixes above"
    )


# --- F4: a failed deep step prints its specific remedy; "see the fixes above" only then ----


def test_failed_step_prints_its_specific_remedy() -> None:
    denied = errors.error_from_hresult(0x80070005, function="HcsCreateComputeSystem")
    both = doctor.deep_run(
        runner=_runner("creating the compute system", denied), variants=("documented",)
    )
    step = both[0].failed_step
    assert step is not None
    assert step.fix == errors.ACCESS_REMEDY
    text = render(doctor.DoctorReport(simulated=True, deep=both))
    assert f"         fix: {errors.ACCESS_REMEDY}" in text
    assert text.endswith("problems found: no document variant booted; see the fixes above")
    # An error with no specific remedy: no fix line, and the summary does not point at one.
    unknown = errors.error_from_hresult(0x8037FFFF, function="HcsStartComputeSystem")
    assert errors.specific_remedy(unknown) is None
    failed = doctor.deep_run(runner=_runner("start", unknown), variants=("documented",))
    assert failed[0].failed_step is not None
    assert failed[0].failed_step.fix is None
    text = render(doctor.DoctorReport(simulated=True, deep=failed))
    assert "fix:" not in text
    assert "see the fixes above" not in text
    assert text.splitlines()[-1].startswith("problems found: no document variant booted")


def test_both_variants_failing_at_start_print_the_fix(cli_proc: Cli) -> None:
    """RV20's run: both variants fail at start; each failed step shows its fix."""
    result = cli_proc(
        "doctor",
        "--deep",
        extra_env={"HCS_SANDBOX_SIM_FAULTS": "HcsStartComputeSystem:1:0x80370105:2:result"},
    )
    assert result.code == 1, result.out + result.err
    fixes = [line for line in result.out.splitlines() if line.strip().startswith("fix: ")]
    assert len(fixes) == 2, result.out
    assert "no document variant booted on this host" in result.out
    assert result.out.rstrip().endswith("see the fixes above")
    assert cli_proc("ls", "-a", "-q").out.strip() == ""


@pytest.mark.parametrize(
    ("fault", "tried", "reached"),
    [
        ("HcsFormatWritableLayerVhd:1:0x80070070", ["documented"], [False]),
        ("HcsCreateEmptyGuestStateFile:1:0x80070070", ["documented"], [False]),
        (
            "HcsCreateComputeSystem:1:0x8037010D:1:result",
            ["documented", "wsb-compat"],
            [True, True],
        ),
        ("HcsStartComputeSystem:1:0x80370105", ["documented", "wsb-compat"], [True, True]),
    ],
)
def test_real_deep_run_judges_the_document_steps_only(
    cli_proc: Cli, fault: str, tried: list[str], reached: list[bool]
) -> None:
    result = cli_proc("doctor", "--deep", "--json", extra_env={"HCS_SANDBOX_SIM_FAULTS": fault})
    report = result.json()
    assert [v["variant"] for v in report["deep"]] == tried, result.out
    assert [v["reached_document"] for v in report["deep"]] == reached
    assert result.code == (0 if report["deep"][-1]["ok"] else 1)
    assert not any(v["cleanup_failed"] for v in report["deep"])
    assert cli_proc("ls", "-a", "-q").out.strip() == ""


# --- F2: doctor fails when the state directory cannot be used -------------------------------


def _check(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["name"] == name)


def test_state_dir_that_is_a_file_fails_the_doctor(cli: Cli, cli_env: CliEnv) -> None:
    cli_env.state.write_text("not a folder")
    create = cli("create")
    assert create.code == 1  # what every create meets
    assert "is not a directory" in create.err
    result = cli("doctor", "--json")
    assert result.code == 1, result.out + result.err
    check = _check(result.json(), "state_dir")
    assert check["status"] == "fail"
    assert f"the state directory {cli_env.state} exists but is not a directory" in check["detail"]
    assert check["fix"] == (
        "move that file away or choose another location with HCS_SANDBOX_STATE_DIR=PATH"
    )
    human = cli("doctor")
    assert "[FAIL] state_dir: " in human.out
    assert human.out.rstrip().endswith(
        "problems found: check failed: state_dir; see the fixes above"
    )


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to give a folder away"
)
def test_state_dir_of_another_user_fails_the_doctor(cli: Cli, cli_env: CliEnv) -> None:
    cli_env.state.mkdir(mode=0o700)
    os.chown(cli_env.state, 65534, -1)
    result = cli("doctor", "--json")
    assert result.code == 1
    check = _check(result.json(), "state_dir")
    assert check["status"] == "fail"
    assert "belongs to another user (uid 65534)" in check["detail"]
    assert (
        check["fix"] == "use your own directory with HCS_SANDBOX_STATE_DIR=PATH, or remove that one"
    )


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may open any folder"
)
def test_state_dir_without_access_fails_the_doctor(cli: Cli, cli_env: CliEnv) -> None:
    cli_env.state.mkdir(mode=0o700)
    cli_env.state.chmod(0)  # ours and closed to others: ensure_state_dir's fast path passes
    try:
        result = cli("doctor", "--json")
    finally:
        cli_env.state.chmod(0o700)
    assert result.code == 1
    check = _check(result.json(), "state_dir")
    assert check["status"] == "fail"
    assert "cannot be opened" in check["detail"]


def test_state_dir_check_passes_and_makes_the_folder(cli: Cli, cli_env: CliEnv) -> None:
    result = cli("doctor", "--json")
    assert result.code == 0
    check = _check(result.json(), "state_dir")
    assert check["status"] == "ok"
    assert check["data"]["state_dir"] == str(cli_env.state)
    assert cli_env.state.is_dir()


def test_unelevated_admin_warning_says_to_elevate(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 'Hyper-V Administrators' member who is not elevated can call HCS but cannot use a
    state directory (owner Administrators, BA+SY only: docs/windows-notes.md "Non-elevated
    callers"); --state-dir gets the same protection, so the fix is to elevate."""
    monkeypatch.setattr(doctor, "is_admin", lambda: False)
    check = doctor._check_admin(False)
    assert check.status == "warn"
    assert "Hyper-V Administrators" in check.detail
    assert "state directory" in check.detail
    assert check.fix is not None
    assert "elevated prompt" in check.fix
    assert check.fix != errors.ACCESS_REMEDY


# --- F3: a bad --report path is refused before the run; a late failure keeps the report ----


@pytest.mark.parametrize("kind", ["folder", "under-a-file", "no-such-root"])
def test_bad_report_path_is_refused_before_the_deep_run(
    cli: Cli, cli_env: CliEnv, tmp_path: Path, kind: str
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    path = {
        "folder": tmp_path,
        "under-a-file": blocker / "sub" / "r.json",
        "no-such-root": Path("/proc/no-such-dir/r.json"),
    }[kind]
    for argv in (("--deep",), ("--deep", "--json")):
        result = cli("doctor", *argv, "--report", str(path))
        assert result.code == 2, result.out + result.err
        assert result.err_lines == [
            line for line in result.err_lines if line.startswith("hcs-sandbox: error: ")
        ]
        assert len(result.err_lines) == 1, result.err
        assert f"cannot write the doctor report to {path}: " in result.err_lines[0]
        assert result.out.strip() in ("", "null")
    # no deep run happened: it would have saved its report in the state directory
    assert not (cli_env.state / doctor.REPORT_FILENAME).exists()
    assert not list(tmp_path.glob(".*.probe"))
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("kind", ["fifo", "empty"])
def test_report_path_that_is_not_a_file_is_refused(
    cli: Cli, cli_env: CliEnv, tmp_path: Path, kind: str
) -> None:
    """Review RV24: the report's rename replaced a FIFO or a device (``/dev/null`` as root)
    with a regular file, and an empty ``--report ''`` was skipped silently; both exit 2,
    and the FIFO stays a FIFO."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    path = str(fifo) if kind == "fifo" else ""
    result = cli("doctor", "--report", path)
    assert result.code == 2, result.out + result.err
    assert len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith(
        f"hcs-sandbox: error: cannot write the doctor report to {path}: "
    )
    assert ("not a regular file" if kind == "fifo" else "the path is empty") in result.err_lines[0]
    assert fifo.is_fifo()
    with pytest.raises(errors.StorageError, match="not a regular file"):
        doctor.save_report(doctor.diagnose(), fifo)  # even when the path changed after the check
    assert fifo.is_fifo()


@pytest.mark.parametrize("dangling", [False, True])
def test_report_path_that_is_a_symlink_is_refused(cli: Cli, tmp_path: Path, dangling: bool) -> None:
    """Review RV25: following the link let anyone who could make the report's name in a
    shared folder point it at any file, which an elevated run replaced (and the rename
    alone, before RV24's fix, replaced the link).  A link is refused (exit 2, one line),
    and neither it nor the file it names is touched."""
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "target.conf"
    if not dangling:
        target.write_text("keep\n")
        target.chmod(0o600)
    link = tmp_path / "doctor-report.json"
    link.symlink_to(target)
    result = cli("doctor", "--report", str(link))
    assert result.code == 2, result.out + result.err
    assert len(result.err_lines) == 1, result.err
    assert "it is a symbolic link" in result.err_lines[0]
    assert link.is_symlink()
    if dangling:
        assert not target.exists()
    else:
        assert target.read_text() == "keep\n"
        assert target.stat().st_mode & 0o777 == 0o600
    with pytest.raises(errors.StorageError, match="symbolic link"):
        doctor.save_report(doctor.diagnose(), link)  # even when made after the check
    assert link.is_symlink()


@pytest.mark.parametrize("named", [True, False])
def test_planner_copy_that_cannot_be_saved_says_which_and_how(
    cli: Cli, cli_env: CliEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, named: bool
) -> None:
    """Review RV26: with HCS_SANDBOX_DOCTOR_REPORT (or the state directory's copy) a
    symbolic link, the deep run's copy for create/run is not written (links are never
    followed), and the warning said "in the state directory" with --report's fix."""
    old = tmp_path / "shared-report.json"
    old.write_text("{}\n")
    if named:
        link = tmp_path / "mylink.json"
        monkeypatch.setenv(doctor.ENV_DOCTOR_REPORT, str(link))
    else:
        cli_env.state.mkdir(parents=True, exist_ok=True)
        link = cli_env.state / doctor.REPORT_FILENAME
    link.symlink_to(old)
    result = cli("doctor", "--deep")
    assert result.code == 0, result.out + result.err
    warnings = [line for line in result.err_lines if line.startswith("warning: ")]
    assert len(warnings) == 1, result.err
    assert warnings[0].startswith("warning: the report create and run read was not updated: ")
    assert "it is a symbolic link" in warnings[0]
    if named:
        assert f"set {doctor.ENV_DOCTOR_REPORT} to a regular file you can write" in warnings[0]
    else:
        assert f"make {link} a regular file you can write, or remove it" in warnings[0]
    assert "--report" not in warnings[0]
    assert old.read_text() == "{}\n"
    assert link.is_symlink()


def test_report_file_is_new_and_owner_only(cli: Cli, tmp_path: Path) -> None:
    """The report is written to a new file with an unpredictable name, then renamed: a
    link planted at the old predictable temporary name (.NAME.PID.tmp) is never written
    through, and the report is readable by its owner only."""
    path = tmp_path / "r.json"
    bait = tmp_path / "bait"
    bait.write_text("keep\n")
    (tmp_path / f".r.json.{os.getpid()}.tmp").symlink_to(bait)
    doctor.save_report(doctor.diagnose(), path)
    assert json.loads(path.read_text())["checks"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert bait.read_text() == "keep\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp") and not p.is_symlink()]


def test_report_that_still_cannot_be_written_is_printed_first(
    cli: Cli, cli_env: CliEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(doctor, "check_report_path", lambda path: None)  # passes, then fails
    human = cli("doctor", "--deep", "--report", str(tmp_path))
    assert human.code == 1
    assert "working variant: documented" in human.out
    assert human.out.rstrip().endswith("all good")
    errors_ = [line for line in human.err_lines if line.startswith("hcs-sandbox: error: ")]
    assert len(errors_) == 1
    assert f"could not write the doctor report to {tmp_path}" in errors_[0]
    assert human.err.rstrip().splitlines()[-1] == errors_[0]  # the last line
    saved = doctor.load_doctor_report(cli_env.state / doctor.REPORT_FILENAME)
    assert saved.working_variant == "documented"  # the state directory's copy is kept
    as_json = cli("doctor", "--deep", "--json", "--report", str(tmp_path))
    assert as_json.code == 1
    assert as_json.json()["working_variant"] == "documented"


def test_no_variant_booted_when_one_reached_its_compute_system() -> None:
    bad_json = errors.error_from_hresult(0x8037010D, function="HcsCreateComputeSystem")
    disk = errors.error_from_hresult(0x80070070, function="HcsFormatWritableLayerVhd")

    def run(variant: str, recorder: Any, _state: object) -> None:
        recorder.mark("create")
        if variant == "documented":
            recorder.mark("creating the compute system")
            raise bad_json
        recorder.mark("creating the scratch disk (create)")
        raise disk

    results = doctor.deep_run(runner=run)
    assert [(r.variant, r.reached_document) for r in results] == [
        ("documented", True),
        ("wsb-compat", False),
    ]
    text = render(doctor.DoctorReport(simulated=True, deep=results))
    assert "\nno document variant booted on this host\n" in text
    assert text.splitlines()[-1].startswith("problems found: no document variant booted")
