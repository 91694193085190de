"""Round s11, task "brk": Ctrl+Break on Windows takes Ctrl+C's clean-up path.

On Windows the C runtime maps every console event but ``CTRL_C_EVENT`` (Ctrl+Break, the
console window closing, logoff, shutdown) to SIGBREAK, whose default action ends the process
with no clean-up (docs/windows-notes.md, "The CLI on a Windows console").  ``main()`` now
installs, on Windows only and only while it runs, a SIGBREAK handler that raises
KeyboardInterrupt: ``run --rm`` removes its sandbox, an attached ``run`` stops it, exit 130.

This machine is Linux: ``sys.platform`` reads ``win32`` and ``signal.SIGBREAK`` is SIGUSR1
(a real signal, so the real ``signal.signal`` and ``signal.raise_signal`` are used: the
handler runs as Python runs it, at once after ``raise_signal``).  The tests fail on the code
before the change (c2a7ed6), where no handler was installed, except the four that say they
keep a behaviour.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cli_support import Result

import hcs_sandbox.cli.main as cli_main
from hcs_sandbox.sandbox.sandbox import Sandbox

#: The stand-in for ``signal.SIGBREAK`` (21 on Windows; not defined elsewhere).
FAKE_BREAK = signal.SIGUSR1


@pytest.fixture
def fake_break(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """``signal.SIGBREAK`` exists (as SIGUSR1) and starts with its default action; the
    action is put back to the default after the test whatever it did."""
    monkeypatch.setattr(signal, "SIGBREAK", FAKE_BREAK, raising=False)
    previous = signal.signal(FAKE_BREAK, signal.SIG_DFL)
    try:
        yield FAKE_BREAK
    finally:
        signal.signal(FAKE_BREAK, previous)


def _as_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")


def _break_in_verb(monkeypatch: pytest.MonkeyPatch, *, press: bool = False) -> list[Any]:
    """Replace the verb (``_main``) by one that records the SIGBREAK action it runs under
    and, with ``press``, then raises the fake SIGBREAK for real (Ctrl+Break)."""
    seen: list[Any] = []

    def verb(argv: Any) -> int:
        seen.append(signal.getsignal(FAKE_BREAK))
        if press:
            # Without a handler SIGUSR1 would end the test process: say so instead.
            assert seen[-1] is not signal.SIG_DFL, "no SIGBREAK handler"
            signal.raise_signal(FAKE_BREAK)
        return 0

    monkeypatch.setattr(cli_main, "_main", verb)
    return seen


# ----------------------------------------------------------------------- the handler itself


def test_the_handler_turns_sigbreak_into_keyboard_interrupt(
    fake_break: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _as_windows(monkeypatch)
    undo = cli_main._catch_ctrl_break()
    assert undo is not None
    try:
        assert signal.getsignal(fake_break) is cli_main._on_ctrl_break
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(fake_break)
    finally:
        undo()
    assert signal.getsignal(fake_break) is signal.SIG_DFL


def test_ctrl_break_in_a_verb_raises_keyboard_interrupt_and_the_default_comes_back(
    fake_break: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The verb sees a handler; Ctrl+Break raises KeyboardInterrupt out of it (``_main``
    maps that to exit 130: the ``run`` tests below go through it); the default action is
    back once ``main()`` has returned."""
    _as_windows(monkeypatch)
    seen = _break_in_verb(monkeypatch, press=True)
    with pytest.raises(KeyboardInterrupt):
        cli_main.main(["ls"])
    assert len(seen) == 1
    assert callable(seen[0])
    assert signal.getsignal(fake_break) is signal.SIG_DFL


def test_main_restores_the_default_when_the_verb_raises(
    fake_break: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _as_windows(monkeypatch)
    seen: list[Any] = []

    def verb(argv: Any) -> int:
        seen.append(signal.getsignal(fake_break))
        raise SystemExit(2)  # argparse's way out

    monkeypatch.setattr(cli_main, "_main", verb)
    with pytest.raises(SystemExit):
        cli_main.main(["ls"])
    assert len(seen) == 1
    assert seen[0] is not signal.SIG_DFL
    assert callable(seen[0])
    assert signal.getsignal(fake_break) is signal.SIG_DFL


@pytest.mark.parametrize("own", [signal.SIG_IGN, "handler"], ids=["SIG_IGN", "handler"])
def test_an_embedding_programs_own_action_is_left_alone(
    fake_break: int, monkeypatch: pytest.MonkeyPatch, own: Any
) -> None:
    """(Passes on the code before the change too: it keeps that behaviour.)"""
    action = (lambda signum, frame: None) if own == "handler" else own
    signal.signal(fake_break, action)
    _as_windows(monkeypatch)
    seen = _break_in_verb(monkeypatch)
    assert cli_main.main(["ls"]) == 0
    assert seen == [action]
    assert signal.getsignal(fake_break) is action


def test_main_off_the_main_thread_installs_nothing(
    fake_break: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python sets signal handlers on the main thread only (ValueError elsewhere): a
    ``main()`` in another thread of an embedding program runs without one, and without an
    error.  (Passes on the code before the change too: it keeps that behaviour.)"""
    _as_windows(monkeypatch)
    seen = _break_in_verb(monkeypatch)
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(cli_main.main(["ls"])))
    thread.start()
    thread.join()
    assert codes == [0]
    assert seen == [signal.SIG_DFL]


def test_nothing_is_installed_off_windows(fake_break: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """(Passes on the code before the change too: it keeps that behaviour.)"""
    monkeypatch.setattr(sys, "platform", "linux")
    seen = _break_in_verb(monkeypatch)
    assert cli_main.main(["ls"]) == 0
    assert seen == [signal.SIG_DFL]


# ------------------------------------------------------- a real verb: Ctrl+C's clean-up path


def _live_systems() -> list[dict[str, object]]:
    from hcs_sandbox.hcs.system import enumerate_compute_systems

    return enumerate_compute_systems({"Owners": ["hcs-sandbox"]})


def _ctrl_break_after_create(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Ctrl+Break (the fake SIGBREAK raised for real) as ``run`` first reads
    ``Sandbox.simulated``, right after create returned.  Only ``_catch_ctrl_break`` sees
    ``win32``: the rest of the run stays on this platform's code paths."""
    real_catch = getattr(cli_main, "_catch_ctrl_break", lambda: None)

    def catch_as_windows() -> Callable[[], None] | None:
        with monkeypatch.context() as m:
            m.setattr(sys, "platform", "win32")
            return real_catch()

    # raising=False: on the code before the change there is no _catch_ctrl_break to wrap
    # (the run then fails on the "no SIGBREAK handler" assertion below, as it should).
    monkeypatch.setattr(cli_main, "_catch_ctrl_break", catch_as_windows, raising=False)
    real: Any = Sandbox.simulated
    fired: list[str] = []

    def simulated(self: Sandbox) -> bool:
        if not fired:
            fired.append(self.name)
            # Without a handler SIGUSR1 would end the test process: say so instead.
            assert signal.getsignal(FAKE_BREAK) is not signal.SIG_DFL, "no SIGBREAK handler"
            signal.raise_signal(FAKE_BREAK)
        return bool(real.fget(self))

    monkeypatch.setattr(Sandbox, "simulated", property(simulated))
    return fired


def test_ctrl_break_in_run_rm_removes_the_sandbox_and_exits_130(
    cli: Callable[..., Result], fake_break: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fired = _ctrl_break_after_create(monkeypatch)
    result = cli("run", "--rm", "--name", "brk1", "--", "cmd", "/c", "echo", "hi")
    assert fired == ["brk1"]
    assert result.code == 130, result
    assert "hcs-sandbox: interrupted" in result.err
    assert "hi" not in result.out
    assert signal.getsignal(fake_break) is signal.SIG_DFL  # restored once main() returned
    assert cli("ls", "-a", "-q").out.strip() == ""
    assert _live_systems() == []


def test_ctrl_break_in_an_attached_run_stops_the_sandbox(
    cli: Callable[..., Result], fake_break: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fired = _ctrl_break_after_create(monkeypatch)
    result = cli("run", "--name", "brk2", "--", "cmd", "/c", "echo", "hi")
    assert fired == ["brk2"]
    assert result.code == 130, result
    assert "stopping the sandbox" in result.err
    assert _live_systems() == []
    assert cli("rm", "brk2").code == 0
