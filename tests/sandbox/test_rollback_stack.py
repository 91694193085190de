"""UndoStack: reverse order, failures collected, Ctrl+C during unwinding deferred."""

from __future__ import annotations

import pytest

from hcs_sandbox.sandbox.rollback import UndoStack


def test_success_discards_undo_steps() -> None:
    done: list[str] = []
    with UndoStack() as undo:
        undo.push("a", lambda: done.append("a"))
    assert done == []
    assert undo.committed
    assert len(undo) == 0


def _steps(done: list[str], exc: BaseException, *names: str) -> None:
    with UndoStack() as undo:
        for name in names:
            undo.push(name, lambda n=name: done.append(n))  # type: ignore[misc]
        raise exc


def test_failure_unwinds_in_reverse_and_reraises() -> None:
    done: list[str] = []
    with pytest.raises(RuntimeError, match="boom"):
        _steps(done, RuntimeError("boom"), "a", "b")
    assert done == ["b", "a"]


def test_keyboard_interrupt_unwinds() -> None:
    done: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        _steps(done, KeyboardInterrupt(), "a")
    assert done == ["a"]


def test_failing_undo_does_not_stop_the_others() -> None:
    done: list[str] = []

    def bad() -> None:
        raise OSError("disk gone")

    undo = UndoStack()
    undo.push("a", lambda: done.append("a"))
    undo.push("bad", bad)
    undo.push("c", lambda: done.append("c"))
    failures = undo.unwind()
    assert done == ["c", "a"]
    assert [f.description for f in failures] == ["bad"]
    assert isinstance(failures[0].error, OSError)


def test_interrupt_inside_undo_is_deferred_until_the_end() -> None:
    done: list[str] = []

    def interrupted() -> None:
        raise KeyboardInterrupt

    undo = UndoStack()
    undo.push("a", lambda: done.append("a"))
    undo.push("ctrl-c", interrupted)
    undo.push("c", lambda: done.append("c"))
    with pytest.raises(KeyboardInterrupt):
        undo.unwind()
    assert done == ["c", "a"]


def test_original_exception_wins_over_interrupt_in_cleanup() -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    def body() -> None:
        with UndoStack() as undo:
            undo.push("ctrl-c", interrupted)
            raise ValueError("original")

    with pytest.raises(ValueError, match="original"):
        body()
