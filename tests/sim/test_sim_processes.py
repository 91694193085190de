"""Guest processes: real pipes, the command interpreter, shares, signals, events."""

from __future__ import annotations

import ctypes
import json
import threading
from pathlib import Path

import pytest
from simapi import Api, vm_doc

from hcs_sandbox.sim import hresults as H
from hcs_sandbox.sim.exports import HCS_EVENT, HCS_EVENT_CALLBACK

VSMB = "\\\\?\\VMSMB\\VSMB-{dcc079ae-60ba-4d07-847c-3493609c0870}\\"


@pytest.fixture
def system(api: Api, share_dir: Path, tmp_path: Path) -> int:
    rw = tmp_path / "rw"
    rw.mkdir()
    doc = vm_doc(
        GuestConnection={},
        Devices={
            "VirtualSmb": {
                "Shares": [
                    {"Name": "in", "Path": str(share_dir), "Options": {"ReadOnly": True}},
                    {"Name": "out", "Path": str(rw)},
                ]
            }
        },
    )
    handle = api.running("guest", doc)
    yield handle
    api.call("HcsTerminateComputeSystem", handle, None)
    api.close(handle)


def run(
    api: Api, system: int, command: str, stdin: bytes = b"", **params: object
) -> tuple[int, bytes, bytes]:
    process = api.spawn(system, command, **params)
    assert process.hr == 0, process.doc
    out, err = process.communicate(stdin)
    code = process.wait_exit()
    process.close()
    return code, out, err


def test_echo_and_exit_codes(api: Api, system: int) -> None:
    assert run(api, system, "cmd /c echo hi") == (0, b"hi\r\n", b"")
    assert run(api, system, 'cmd.exe /c "echo a & exit /b 7"')[0] == 7
    assert run(api, system, "cmd /c echo oops 1>&2")[1:] == (b"", b"oops \r\n")
    code, _out, err = run(api, system, "cmd /c nosuchtool")
    assert code == 9009
    assert b"is not recognized" in err
    assert run(api, system, "cmd /c type nosuch.txt || echo fallback")[1] == b"fallback\r\n"


def test_files_env_and_cwd(api: Api, system: int) -> None:
    script = (
        "cmd /c mkdir C:\\work && cd C:\\work && echo data> f.txt && copy f.txt g.txt"
        " && type g.txt && set FOO=bar && set FOO && cd"
    )
    code, out, err = run(api, system, script)
    assert code == 0, err
    text = out.decode()
    assert "1 file(s) copied." in text
    assert "data \r\n" in text  # cmd keeps the space before &&
    assert "FOO=bar" in text
    assert text.endswith("C:\\work\r\n")
    code, out, _ = run(api, system, "cmd /c dir C:\\work")
    assert b"g.txt" in out
    code, out, _ = run(api, system, "cmd /c echo %GREETING%", Environment={"GREETING": "hey"})
    assert out == b"hey\r\n"
    code, out, _ = run(api, system, "hostname")
    assert out.strip() == b"GUEST"


def test_stdin_more_and_binary_output(api: Api, system: int) -> None:
    assert run(api, system, "cmd /c more", stdin=b"line1\nline2\n")[1] == b"line1\nline2\n"
    _code, out, _ = run(api, system, "cmd /c bytes 600")
    assert out == (bytes(range(256)) * 3)[:600]


def test_shares_read_only_enforced(api: Api, system: int, tmp_path: Path) -> None:
    code, out, _ = run(api, system, f"cmd /c type {VSMB}in\\hello.txt")
    assert out == b"hello from host\n"
    code, _, err = run(api, system, f"cmd /c echo x> {VSMB}in\\new.txt")
    assert code == 1
    assert b"Access is denied." in err
    assert not (tmp_path / "share" / "new.txt").exists()
    code, _, err = run(api, system, f"cmd /c copy {VSMB}in\\hello.txt {VSMB}out\\copy.txt")
    assert code == 0, err
    assert (tmp_path / "rw" / "copy.txt").read_text() == "hello from host\n"
    code, out, err = run(
        api, system, f"cmd /c mklink /d C:\\link {VSMB}out && type C:\\link\\copy.txt"
    )
    assert code == 0, err
    assert out.endswith(b"hello from host\n")


def test_terminate_signal_and_exit_event(api: Api, system: int) -> None:
    events: list[tuple[int, str]] = []
    got = threading.Event()

    @HCS_EVENT_CALLBACK
    def on_event(event: ctypes._Pointer[HCS_EVENT], context: int | None) -> None:
        events.append((event.contents.Type, event.contents.EventData or ""))
        got.set()

    process = api.spawn(system, "ping -n 100 127.0.0.1")
    assert api.HcsSetProcessCallback(process.handle, 0, None, on_event) == 0
    assert api.call("HcsTerminateProcess", process.handle, None)[0] == 0
    assert got.wait(5)
    assert events[0][0] == 0x00010000
    status = json.loads(events[0][1])
    assert status["Exited"] is True
    assert status["ExitCode"] == 1
    assert (
        api.call("HcsTerminateProcess", process.handle, None)[0] == H.HCS_E_PROCESS_ALREADY_STOPPED
    )
    process.close()

    process = api.spawn(system, "timeout /t 100")
    assert api.call("HcsSignalProcess", process.handle, '{"Signal":"CtrlC"}')[0] == 0
    assert process.wait_exit() == H.STATUS_CONTROL_C_EXIT
    process.close()


def test_close_stdin_via_modify_and_emulate_console(api: Api, system: int) -> None:
    process = api.spawn(system, "more")
    request = {"Operation": "CloseHandle", "CloseHandle": {"Handle": "StdIn"}}
    assert api.call("HcsModifyProcess", process.handle, json.dumps(request))[0] == 0
    assert process.wait_exit() == 0
    process.close()
    process = api.spawn(system, "cmd /c echo out & echo err 1>&2", EmulateConsole=True)
    assert process.stderr is None
    out, _ = process.communicate()
    assert out == b"out \r\nerr \r\n"
    process.wait_exit()
    process.close()


def test_create_process_needs_guest_connection(api: Api) -> None:
    handle = api.running("plain", vm_doc())
    process = api.spawn(handle, "cmd /c echo hi")
    assert process.hr == H.ERROR_NOT_SUPPORTED_HR
    assert "GuestConnection" in (process.doc or "")
    assert process.stdout is None
    process.close()
    api.call("HcsTerminateComputeSystem", handle, None)
    api.close(handle)


def test_terminating_the_system_ends_processes(api: Api) -> None:
    handle = api.running("endall")
    process = api.spawn(handle, "timeout /t -1")
    assert api.call("HcsTerminateComputeSystem", handle, None)[0] == 0
    out, _ = process.communicate()
    assert b"Waiting" in out
    assert process.wait_exit() == 1
    process.close()
    api.close(handle)
