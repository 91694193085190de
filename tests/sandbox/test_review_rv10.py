"""Review RV10: a failed status query right after a process was created."""

from __future__ import annotations

import time
from typing import Any

from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec

E_FAIL = 0x80004005


def test_a_failed_status_query_after_create_is_asked_again_not_fatal(sim: Any) -> None:
    """The command exits before its callback is registered (no exit event) and the one
    status query made then fails: wait() asks again and sees the exit.  (It used to wait
    for an event that never came; a first fix ended the process and reported a failure
    although the command had run in full.)"""
    sb = Sandbox.create(SandboxSpec(name="poll"))
    try:
        sb.start()
        sim.set_latency("HcsSetProcessCallback", 0.005)
        sim.inject("HcsGetProcessProperties", nth=1, hresult=E_FAIL)
        began = time.monotonic()
        result = sb.exec("cmd /c echo hi", timeout=30)
        assert result.exit_code == 0
        assert result.stdout_text.strip() == "hi"
        assert time.monotonic() - began < 5
    finally:
        sim._faults.clear()
        sim.set_latency("HcsSetProcessCallback", 0)
        sb.remove(force=True)


def test_a_relative_working_directory_is_refused_before_the_guest() -> None:
    """Review RV7a (minor): 'exec -w relative' ended in the guest's Win32 error 267 with no
    remedy."""
    import pytest

    from hcs_sandbox import errors
    from hcs_sandbox.sandbox.guest import process_parameters

    with pytest.raises(errors.SpecError, match="full guest path") as caught:
        process_parameters("cmd /c cd", workdir="relative")
    assert caught.value.allowed
    params = process_parameters("cmd /c cd", workdir="C:\\Users\\Public")
    assert params["WorkingDirectory"] == "C:\\Users\\Public"


def test_poll_sees_an_exit_while_the_status_is_unknown(sim: Any) -> None:
    """Review RV11: poll() read only the exit flag, so with the status unknown a command
    that had exited looked running forever."""
    sb = Sandbox.create(SandboxSpec(name="pollx"))
    try:
        sb.start()
        sim.set_latency("HcsSetProcessCallback", 0.005)
        sim.inject("HcsGetProcessProperties", nth=1, hresult=E_FAIL)
        with sb.spawn("cmd /c echo hi") as proc:
            deadline = time.monotonic() + 5
            while proc.poll() is None:
                assert time.monotonic() < deadline, "poll() never saw the exit"
                time.sleep(0.05)
            assert proc.poll() == 0
    finally:
        sim._faults.clear()
        sim.set_latency("HcsSetProcessCallback", 0)
        sb.remove(force=True)


def test_a_unc_working_directory_is_passed_on() -> None:
    """CreateProcess's lpCurrentDirectory "can also specify a UNC path": passed on as it is
    (whether the share is reachable is the guest's answer)."""
    from hcs_sandbox.sandbox.guest import process_parameters

    params = process_parameters("cmd /c cd", workdir="\\\\server\\share\\dir")
    assert params["WorkingDirectory"] == "\\\\server\\share\\dir"


def test_a_project_folder_in_roots_home_may_be_mapped(tmp_path: Any) -> None:
    """Review RV12: /root was listed as a system folder, so root's own project folders
    were refused at create (the state directory inside it keeps its own protection)."""
    from hcs_sandbox.sandbox import files

    assert files.host_folder_problem("/root/project", local=False) is None
    assert files.host_folder_problem("/etc/project", local=False) is not None
    state = "/root/.local/state/hcs-sandbox"
    problem = files.host_folder_problem("/root", protected=(state,), local=False)
    assert problem is not None  # it holds the state directory
