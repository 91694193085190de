"""The public Python API's input handling (QA agent report, session 17: F1, F2, F3, F6, F7):
an empty host path, a str stdin and a failing stdin feeder, the guest-kind question asked
in one guest command, wrong-typed arguments, and errors without a remedy."""

from __future__ import annotations

import array
import fractions
import numbers
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox import files, guest
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox.run(SandboxSpec(name="api")) as sandbox:
        yield sandbox


def _guest_exists(sb: Sandbox, path: str) -> bool:
    return sb.exec(f'cmd /c if exist "{path}" exit 5').exit_code == 5


def _one_line_with_remedy(exc: errors.HcsSandboxError) -> None:
    assert exc.remedy, f"no remedy: {exc}"
    assert "\n" not in str(exc)


# ------------------------------------------------------------- F1: an empty host path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a secret in it, as the QA report's."""
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / ".env").write_text("SECRET\n")
    (folder / "main.py").write_text("code\n")
    monkeypatch.chdir(folder)
    return folder


def test_copy_in_of_an_empty_host_path_is_refused(sb: Sandbox, project: Path) -> None:
    with pytest.raises(errors.SpecError, match="the host source is empty") as info:
        sb.copy_in("", "C:\\in")
    _one_line_with_remedy(info.value)
    assert "'.'" in (info.value.remedy or "")
    assert not _guest_exists(sb, "C:\\in")  # nothing of the working directory went in


def test_copy_out_to_an_empty_host_path_is_refused(sb: Sandbox, project: Path) -> None:
    assert sb.exec("cmd /c mkdir C:\\out & echo x>C:\\out\\f.txt").ok
    before = sorted(os.listdir(project))
    with pytest.raises(errors.SpecError, match="the host destination is empty") as info:
        sb.copy_out("C:\\out", "")
    _one_line_with_remedy(info.value)
    assert sorted(os.listdir(project)) == before  # nothing written into the working directory


def test_an_explicit_dot_still_means_the_current_folder(sb: Sandbox, project: Path) -> None:
    assert sb.exec("cmd /c echo x>C:\\dot.txt").ok
    sb.copy_out("C:\\dot.txt", ".")
    assert (project / "dot.txt").read_bytes() == b"x\r\n"


@pytest.mark.parametrize(("source", "destination"), [("", "web:C:\\in"), ("web:C:\\x", "")])
def test_the_cli_and_the_library_refuse_an_empty_host_path_alike(
    source: str, destination: str
) -> None:
    from hcs_sandbox.cli.cp import parse_cp_args

    with pytest.raises(errors.SpecError) as cli:
        parse_cp_args(source, destination)
    what = "source" if source == "" else "destination"
    with pytest.raises(errors.SpecError) as library:
        files.host_path_arg("", what=what, field="cp")
    assert str(cli.value) == str(library.value)
    assert cli.value.remedy


# ------------------------------------------------------------- F2: stdin


def test_a_str_stdin_is_refused_at_once(sb: Sandbox) -> None:
    started = time.monotonic()
    with pytest.raises(errors.SpecError, match="stdin must be bytes, not str") as info:
        sb.exec("more", stdin="hello", timeout=10)  # type: ignore[arg-type]
    assert time.monotonic() - started < 5
    assert ".encode(" in (info.value.remedy or "")
    _one_line_with_remedy(info.value)


def test_bytes_like_stdin_is_delivered(sb: Sandbox) -> None:
    assert sb.exec("more", stdin=bytearray(b"ab\r\n"), timeout=30).stdout == b"ab\r\n"  # type: ignore[arg-type]  # annotated bytes


def test_a_spawned_process_refuses_str_input(sb: Sandbox) -> None:
    with sb.spawn("more") as proc:
        with pytest.raises(errors.SpecError, match="stdin must be bytes"):
            proc.write("text")  # type: ignore[arg-type]
        with pytest.raises(errors.SpecError, match="stdin must be bytes"):
            proc.communicate("text", timeout=10)  # type: ignore[arg-type]
        out, _ = proc.communicate(b"fine\r\n", timeout=30)
    assert out == b"fine\r\n"


def _failing(name: str) -> Callable[..., None]:
    def fail(*_: Any, **__: Any) -> None:
        raise RuntimeError(f"{name} broke")

    return fail


@pytest.mark.parametrize("step", ["_write", "close_stdin"])
def test_a_stdin_feeder_failure_of_any_kind_is_an_error_not_a_hang(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    # ``more`` waits for end-of-file: a feeder that dies without closing stdin left it
    # waiting forever (or until the timeout, with a wrong remedy).
    monkeypatch.setattr(guest.GuestProcess, step, _failing(step))
    started = time.monotonic()
    with pytest.raises(errors.HcsSandboxError) as info:
        sb.exec("more", stdin=b"data\r\n", timeout=20)
    assert time.monotonic() - started < 10
    assert not isinstance(info.value, errors.ExecTimeoutError)
    assert f"RuntimeError: {step} broke" in str(info.value)
    assert "sending stdin to guest process" in info.value.message
    assert isinstance(info.value.__cause__, RuntimeError)
    _one_line_with_remedy(info.value)
    assert sb.exec("cmd /c echo still fine").ok  # the sandbox is usable afterwards


def test_a_process_that_stops_reading_is_no_error(sb: Sandbox) -> None:
    # A broken pipe (the process exits without reading its input) is not a feeder failure.
    result = sb.exec("cmd /c exit 3", stdin=b"x" * 200_000, timeout=30)
    assert result.exit_code == 3


def test_a_failing_close_after_the_process_stopped_reading_is_no_error(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Commit 3240239: the process stopped reading (a broken pipe) while it still runs, and
    # closing its stdin then fails too: nothing waits for an end-of-file, so the process is
    # neither killed nor the close an error.
    def stopped_reading(self: guest.GuestProcess, view: memoryview) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(guest.GuestProcess, "_write", stopped_reading)
    monkeypatch.setattr(guest.GuestProcess, "close_stdin", _failing("close_stdin"))
    result = sb.exec("ping -n 2 127.0.0.1", stdin=b"ignored\r\n", timeout=20)
    assert result.exit_code == 0  # not killed
    assert result.stdout.count(b"Reply from") == 2


def test_a_feeder_failure_is_raised_once(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    # A later communicate() returns what is left (nothing, of a killed process), as it did
    # before the feeder's failures were raised; the failure is not raised a second time.
    with sb.spawn("more") as proc:
        with monkeypatch.context() as patch:
            patch.setattr(guest.GuestProcess, "_write", _failing("_write"))
            with pytest.raises(errors.HcsSandboxError, match="_write broke"):
                proc.communicate(b"x", timeout=20)
        assert proc.communicate(timeout=20) == (b"", b"")


def _strided() -> memoryview:
    return memoryview(b"aXbXcX\r\n")[::2]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: array.array("b", b"hi\r\n"), b"hi\r\n"),
        (lambda: array.array("H", [0x6968, 0x0A0D]), array.array("H", [0x6968, 0x0A0D]).tobytes()),
        (lambda: memoryview(b"xxab\r\n")[2:], b"ab\r\n"),
        (lambda: _mmap(b"mapped\r\n"), b"mapped\r\n"),
    ],
    ids=["array-b", "array-H", "memoryview-slice", "mmap"],
)
def test_any_contiguous_buffer_is_stdin(
    sb: Sandbox, make: Callable[[], Any], expected: bytes
) -> None:
    # Any contiguous bytes-like object went to the guest before stdin was checked (an
    # array of 2-byte items as its bytes, not cut after half of them).
    data = make()
    assert sb.exec("more", stdin=data, timeout=30).stdout == expected
    with sb.spawn("more") as proc:
        proc.write(data)
        assert proc.communicate(timeout=30)[0] == expected


def _mmap(data: bytes) -> Any:
    import mmap

    region = mmap.mmap(-1, len(data))
    region.write(data)
    return region


@pytest.mark.parametrize(
    ("value", "needle", "remedy"),
    [
        (_strided, "one contiguous block of bytes", "bytes(data)"),
        (lambda: 5, "stdin must be bytes-like, not int", "buffer"),
        (lambda: ["a"], "stdin must be bytes-like, not list", "buffer"),
    ],
    ids=["strided", "int", "list"],
)
def test_stdin_that_is_no_contiguous_buffer_is_a_spec_error(
    sb: Sandbox, value: Callable[[], Any], needle: str, remedy: str
) -> None:
    # A strided memoryview went to the feeder, whose BufferError was reported as "a bug in
    # hcs-sandbox": it is the caller's input.
    with pytest.raises(errors.SpecError, match=needle) as info:
        sb.exec("more", stdin=value(), timeout=10)
    assert remedy in (info.value.remedy or "")
    _one_line_with_remedy(info.value)


class _Seconds:
    """A real number that is neither an int nor a float (as a numpy scalar is)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __float__(self) -> float:
        return self.value

    def __gt__(self, other: object) -> bool:
        return self.value > other  # type: ignore[operator]

    def __ge__(self, other: object) -> bool:
        return self.value >= other  # type: ignore[operator]

    def __radd__(self, other: float) -> float:
        return other + self.value


numbers.Real.register(_Seconds)


@pytest.mark.parametrize(
    "seconds",
    [fractions.Fraction(20), _Seconds(20.0)],
    ids=["Fraction", "registered-Real"],
)
def test_a_timeout_may_be_any_real_number(sb: Sandbox, seconds: Any) -> None:
    # Every timeout that took these before the type checks still takes them.
    assert sb.exec("cmd /c ver", timeout=seconds).ok
    with sb.spawn("cmd /c echo x") as proc:
        assert proc.read(timeout=seconds) is not None
        assert proc.communicate(timeout=seconds)[1] == b""
        assert proc.wait(timeout=seconds) == 0
    assert list(sb.events(timeout=fractions.Fraction(1, 100))) == []  # type: ignore[arg-type]


def test_stop_without_a_time_limit(tmp_path: Path) -> None:
    # stop(timeout=None) worked before the type checks (no limit): it still does.
    with Sandbox.run(SandboxSpec(name="nolimit", persistence="persistent")) as sandbox:
        sandbox.stop(timeout=None)
        assert sandbox.state == "stopped"
        sandbox.start()
        sandbox.stop(timeout=fractions.Fraction(30))  # type: ignore[arg-type]
        assert sandbox.state == "stopped"


# ------------------------------------------------------------- F3: the guest-kind question


def _count_guest_commands(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    commands: list[str] = []
    real = guest.exec_command

    def counting(system: Any, command: Any, **kwargs: Any) -> guest.ExecResult:
        commands.append(command)
        return real(system, command, **kwargs)

    monkeypatch.setattr(guest, "exec_command", counting)
    return commands


def test_the_guest_kind_is_one_guest_command(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sb.exec("cmd /c mkdir C:\\kind\\dir & echo x>C:\\kind\\file.txt").ok
    system = sb._open_system()
    assert system is not None
    commands = _count_guest_commands(monkeypatch)
    for path, kind in (
        ("C:\\kind\\dir", "dir"),
        ("C:\\kind\\file.txt", "file"),
        ("C:\\kind\\none", "missing"),
        ("C:\\", "dir"),
    ):
        commands.clear()
        assert files._guest_kind(system, path, where="test") == kind
        assert len(commands) == 1, commands


@pytest.mark.parametrize(
    ("script", "code"),
    [
        ('if exist "C:\\ie" (exit 3) else (exit 4)', 3),
        ('if exist "C:\\nope" (exit 3) else (exit 4)', 4),
        ('if exist "C:\\nope" (exit 3) else exit 5', 5),
        ('if not exist "C:\\ie" (exit 4) else if exist "C:\\ie\\*" (exit 3) else (exit 2)', 3),
        (
            'if not exist "C:\\ie\\f.txt" (exit 4) '
            'else if exist "C:\\ie\\f.txt\\*" (exit 3) else (exit 2)',
            2,
        ),
        ('if exist "C:\\nope" (exit 3)', 0),
    ],
)
def test_the_simulated_cmd_runs_if_else(sb: Sandbox, script: str, code: int) -> None:
    # cmd.exe's IF ... (command) ELSE command (learn.microsoft.com windows-commands "if"),
    # which the one-command guest-kind question uses.
    assert sb.exec("cmd /c mkdir C:\\ie & echo x>C:\\ie\\f.txt").ok
    assert sb.exec(f"cmd /c {script}").exit_code == code


@pytest.mark.parametrize(
    "script",
    [
        'if exist "C:\\nope" (exit 3) else (exit 2) (exit 5)',  # two commands after ELSE
        'if exist "C:\\nope" (exit 3) else (echo b) else (echo c)',  # two ELSEs
        'if exist "C:\\nope" (exit 3) else (exit 2',  # unbalanced
        'if exist "C:\\ie\\f.txt" (exit 3) (exit 5)',  # before ELSE, as it was refused
    ],
)
def test_the_simulated_cmd_refuses_a_malformed_else(sb: Sandbox, script: str) -> None:
    # cmd.exe's rule (if /?): one parenthesised command before ELSE, one command after it;
    # the simulator stays as strict after ELSE as before it.
    assert sb.exec("cmd /c mkdir C:\\ie & echo x>C:\\ie\\f.txt").ok
    result = sb.exec(f"cmd /c {script}")
    assert result.exit_code == 1
    assert "The syntax of the command is incorrect." in result.stdout_text + result.stderr_text


def test_a_folder_made_meanwhile_is_never_taken_for_a_file(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Another copy creates the folder right after the first question (QA agent F3: then the
    # second question found "something" and called the folder a file).
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_bytes(b"a")
    real = guest.exec_command
    made: list[bool] = []

    def racing(system: Any, command: Any, **kwargs: Any) -> guest.ExecResult:
        result = real(system, command, **kwargs)
        # The first question about C:\same (old: "C:\same\*"; new: "C:\same" first).
        if 'exist "C:\\same' in command and not made:
            made.append(True)
            assert real(system, "cmd /c mkdir C:\\same", **kwargs).ok
        return result

    monkeypatch.setattr(guest, "exec_command", racing)
    sb.copy_in(str(tree), "C:\\same")  # no "onto the guest file"
    assert made
    assert _guest_exists(sb, "C:\\same\\a.txt") or _guest_exists(sb, "C:\\same\\tree\\a.txt")


def test_an_unexpected_answer_to_the_kind_question_is_an_error(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = sb._open_system()
    assert system is not None

    def odd(system: Any, command: Any, **kwargs: Any) -> guest.ExecResult:
        return guest.ExecResult(exit_code=1, stdout=b"", stderr=b"odd", command_line=command)

    monkeypatch.setattr(guest, "exec_command", odd)
    with pytest.raises(errors.GuestCommandError, match="is a file or a folder") as info:
        files._guest_kind(system, "C:\\x", where="test")
    _one_line_with_remedy(info.value)


# ------------------------------------------------------------- F6: wrong-typed arguments


def _on_process(command: str, call: Callable[[guest.GuestProcess], object], **kw: Any) -> Any:
    def run(sb: Sandbox) -> object:
        with sb.spawn(command, **kw) as proc:
            return call(proc)

    return run


BAD_CALLS: dict[str, Callable[[Sandbox], object]] = {
    "events(timeout='1')": lambda sb: list(sb.events(timeout="1")),  # type: ignore[arg-type]
    "process.read(timeout='1')": _on_process("cmd /c ver", lambda p: p.read(timeout="1")),  # type: ignore[arg-type]
    "process.wait(timeout='1')": _on_process("cmd /c ver", lambda p: p.wait(timeout="1")),  # type: ignore[arg-type]
    "process.resize('a', 1)": _on_process("cmd", lambda p: p.resize("a", 1), tty=True),  # type: ignore[arg-type]
    "process.resize(0, 1)": _on_process("cmd", lambda p: p.resize(0, 1), tty=True),
    "get(123)": lambda sb: Sandbox.get(123),  # type: ignore[arg-type]
    "wait(timeout='1')": lambda sb: sb.wait(timeout="1"),  # type: ignore[arg-type]
    "wait(timeout=True)": lambda sb: sb.wait(timeout=True),
    "stop(timeout='3')": lambda sb: sb.stop(timeout="3"),  # type: ignore[arg-type]
    "exec(timeout='5')": lambda sb: sb.exec("cmd /c ver", timeout="5"),  # type: ignore[arg-type]
    "exec(123)": lambda sb: sb.exec(123),  # type: ignore[arg-type]
    "exec(b'cmd')": lambda sb: sb.exec(b"cmd /c ver"),  # type: ignore[arg-type]
    "exec(workdir=5)": lambda sb: sb.exec("cmd /c ver", workdir=5),  # type: ignore[arg-type]
    "exec(env={'A': 1})": lambda sb: sb.exec("cmd /c ver", env={"A": 1}),  # type: ignore[dict-item]
    "exec(env={1: 'a'})": lambda sb: sb.exec("cmd /c ver", env={1: "a"}),  # type: ignore[dict-item]
    "exec(env=['A=1'])": lambda sb: sb.exec("cmd /c ver", env=["A=1"]),  # type: ignore[arg-type]
    "exec(user=5)": lambda sb: sb.exec("cmd /c ver", user=5),  # type: ignore[arg-type]
    "spawn(console_size='80x24')": lambda sb: sb.spawn(
        "cmd",
        tty=True,
        console_size="80x24",  # type: ignore[arg-type]
    ),
    "spawn(env=5)": lambda sb: sb.spawn("cmd", env=5),  # type: ignore[arg-type]
    "map(5, ...)": lambda sb: sb.map(5, "C:\\m"),  # type: ignore[arg-type]
    "copy_in(None, ...)": lambda sb: sb.copy_in(None, "C:\\x"),  # type: ignore[arg-type]
    "copy_out(..., 5)": lambda sb: sb.copy_out("C:\\Windows", 5),  # type: ignore[arg-type]
    "copy_in(b'/tmp', ...)": lambda sb: sb.copy_in(b"/tmp", "C:\\x"),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("call", list(BAD_CALLS))
def test_a_wrong_typed_argument_is_a_spec_error(sb: Sandbox, call: str) -> None:
    with pytest.raises(errors.SpecError) as info:
        BAD_CALLS[call](sb)
    _one_line_with_remedy(info.value)
    assert "Traceback" not in str(info.value)
    assert sb.state == "running"  # nothing acted on the sandbox


@pytest.mark.parametrize(
    "call",
    [
        lambda: Sandbox.list(state_dir=5),  # type: ignore[arg-type]
        lambda: Sandbox.get("api", state_dir=5),  # type: ignore[arg-type]
        lambda: Sandbox.create(SandboxSpec(name="x"), state_dir=5),  # type: ignore[arg-type]
        lambda: Sandbox.run(SandboxSpec(name="x"), state_dir=b"/tmp").__enter__(),  # type: ignore[arg-type]
    ],
    ids=["list", "get", "create", "run"],
)
def test_a_state_dir_that_is_no_path_is_a_spec_error(
    sb: Sandbox, call: Callable[[], object]
) -> None:
    # A bare TypeError from deep in the path code before.
    with pytest.raises(errors.SpecError, match="state_dir must be a folder path") as info:
        call()
    _one_line_with_remedy(info.value)


def test_remove_refuses_a_force_that_is_no_bool(sb: Sandbox) -> None:
    # force="no" is truthy: it removed the running sandbox.
    with pytest.raises(errors.SpecError, match="force must be True or False") as info:
        sb.remove(force="no")  # type: ignore[arg-type]
    _one_line_with_remedy(info.value)
    assert sb.state == "running"


def test_guest_command_error_pickles_with_its_fields(sb: Sandbox) -> None:
    # As the other errors do: a ProcessPoolExecutor worker's check() got its parent a
    # BrokenProcessPool instead (unpickling called __init__ with the message as the result).
    import pickle

    with pytest.raises(errors.GuestCommandError) as info:
        sb.exec("cmd /c echo nope 1>&2 & exit 7").check()
    error = info.value
    loaded = pickle.loads(pickle.dumps(error))
    assert type(loaded) is errors.GuestCommandError
    assert (str(loaded), loaded.message, loaded.remedy, loaded.args) == (
        str(error),
        error.message,
        error.remedy,
        error.args,
    )
    assert loaded.result == error.result
    assert loaded.result.exit_code == 7
    assert loaded.result.stderr_text.strip() == "nope"


def test_a_path_object_is_still_a_host_path(sb: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_bytes(b"p")
    sb.copy_in(tmp_path / "p.txt", "C:\\p.txt")
    sb.copy_out("C:\\p.txt", tmp_path / "back.txt")
    assert (tmp_path / "back.txt").read_bytes() == b"p"
    (tmp_path / "share").mkdir()
    (tmp_path / "share" / "p.txt").write_bytes(b"p")
    sb.map(tmp_path / "share", "C:\\mapped")
    assert sb.exec("cmd /c type C:\\mapped\\p.txt").stdout == b"p"


def test_get_of_none_is_still_not_found() -> None:
    with pytest.raises(errors.SandboxNotFoundError):
        Sandbox.get(None)  # type: ignore[arg-type]


# ------------------------------------------------------------- F7: remedies


def test_guest_command_error_is_in_the_errors_module_with_a_remedy(sb: Sandbox) -> None:
    from hcs_sandbox.errors import GuestCommandError

    assert guest.GuestCommandError is GuestCommandError
    assert "GuestCommandError" in errors.__all__
    result = sb.exec("cmd /c echo why 1>&2 & exit 3")
    with pytest.raises(GuestCommandError) as info:
        result.check()
    assert info.value.result is result
    assert info.value.message.endswith("failed with exit code 3: why")
    _one_line_with_remedy(info.value)


def test_a_copy_into_a_read_only_mapping_says_what_to_do(sb: Sandbox, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (tmp_path / "f.txt").write_bytes(b"f")
    sb.map(str(shared), "C:\\ro")
    with pytest.raises(errors.GuestCommandError, match="Access is denied") as info:
        sb.copy_in(str(tmp_path / "f.txt"), "C:\\ro\\f.txt")
    assert "read-only" in (info.value.remedy or "")
    _one_line_with_remedy(info.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda sb: sb.exec("cmd /c ver", timeout=0),
        lambda sb: sb.exec("a\x00b"),
        lambda sb: sb.exec(['a"b']),
        lambda sb: sb.exec(["cmd", 1]),
        lambda sb: sb.exec(["cmd", "a\x00"]),
    ],
    ids=["timeout=0", "NUL", "quote in program", "int argument", "NUL argument"],
)
def test_exec_input_errors_have_a_remedy(sb: Sandbox, call: Callable[[Sandbox], object]) -> None:
    with pytest.raises(errors.SpecError) as info:
        call(sb)
    _one_line_with_remedy(info.value)


def test_a_folder_onto_a_file_has_a_remedy(sb: Sandbox, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"a")
    assert sb.exec("cmd /c echo x>C:\\file.txt & mkdir C:\\gdir & echo y>C:\\gdir\\b.txt").ok
    with pytest.raises(errors.SpecError, match="onto the guest file") as into:
        sb.copy_in(str(folder), "C:\\file.txt")
    _one_line_with_remedy(into.value)
    (tmp_path / "host.txt").write_bytes(b"h")
    with pytest.raises(errors.SpecError, match="onto the host file") as out:
        sb.copy_out("C:\\gdir", str(tmp_path / "host.txt"))
    _one_line_with_remedy(out.value)


@pytest.mark.parametrize(
    "changes",
    [
        {"network": "nat", "ports": ["8080:80"]},
        {"network": "nat", "ports": "8080:80"},
        {"mapped_folders": [("/tmp", "C:\\x")]},
        {"mapped_folders": "/tmp"},
        {"environment": ["A=1"]},
        {"labels": ["a"]},
        {"base": "host"},
    ],
    ids=",".join,
)
def test_spec_type_errors_say_how_to_build_the_value(changes: dict[str, Any]) -> None:
    with pytest.raises(errors.SpecError) as info:
        SandboxSpec(**changes)
    _one_line_with_remedy(info.value)
    wanted = {"ports": "PortMapping(", "mapped_folders": "MappedFolder(", "base": "BaseImage("}
    for key, word in wanted.items():
        if key in changes:
            assert word in (info.value.remedy or "")


def test_a_fraction_timeout_that_runs_out_is_a_timeout() -> None:
    """Review RV-api2 A2: a ``Fraction`` timeout is accepted (api.md), and when it runs out
    the error is the timeout error (its message formats the timeout as a float), not a
    TypeError from formatting a Fraction."""
    from fractions import Fraction

    from hcs_sandbox.errors import ExecTimeoutError
    from hcs_sandbox.sandbox.guest import check_timeout

    with Sandbox.run(SandboxSpec(name="fraction")) as sb:
        with pytest.raises(ExecTimeoutError):
            sb.exec("timeout /t -1", timeout=Fraction(1, 4))
        with sb.spawn("timeout /t -1") as proc, pytest.raises(ExecTimeoutError):
            proc.wait(timeout=Fraction(1, 4))
    assert check_timeout(Fraction(1, 4)) == 0.25
    assert type(check_timeout(Fraction(1, 4))) is float
