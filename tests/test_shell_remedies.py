"""Remedies a Windows admin runs as printed, in cmd.exe or PowerShell (review RV41): no
single quotes (cmd.exe passes them on), no ``;`` between commands (no separator in cmd.exe),
no bare ``set NAME=1`` (PowerShell's ``set`` makes a shell variable), and no unquoted
``&&`` in a guest command (the user's own shell would run the rest on the host)."""

from __future__ import annotations

import pytest

from hcs_sandbox.sandbox import doctor, guest, storage


def test_the_unc_workdir_remedy_quotes_the_guest_command() -> None:
    _, remedy = guest._workdir_failure("\\\\server\\share\\dir", "web")
    assert 'cmd /c "pushd \\\\server\\share && COMMAND"' in remedy
    assert "pushd \\\\server\\share && COMMAND)" not in remedy


def test_the_base_build_override_remedy_works_in_powershell_and_cmd() -> None:
    remedy = storage.OTHER_BUILD_REMEDY
    assert "$env:HCS_SANDBOX_IGNORE_BASE_BUILD=1" in remedy
    assert "cmd.exe: set HCS_SANDBOX_IGNORE_BASE_BUILD=1" in remedy


def test_the_services_fix_has_no_semicolon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor.sys, "platform", "win32")
    monkeypatch.setattr(doctor, "service_state", lambda name: "STOPPED")
    check = doctor._check_services()
    assert check.fix is not None
    assert ";" not in check.fix
    assert "sc.exe start vmcompute then sc.exe start hns" in check.fix
