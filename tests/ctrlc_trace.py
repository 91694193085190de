"""The tracer of the Ctrl+C sweeps: one ``KeyboardInterrupt`` at the ``n``-th point of a run.

Shared by ``tests/hcs/test_storage.py`` (review RV50 F3), ``tests/hcs/test_ctrlc_handles.py``
(review RV59) and ``tests/sandbox/test_store_ctrlc.py`` (review RV66 F1): a sweep runs the code
under test with ``n`` = 1, 2, ... until a run passes fewer than ``n`` points (it returned
undisturbed), and judges what each interrupted run left behind.

The points are those where CPython 3.11 runs a pending signal handler: a function's entry
(its ``RESUME``: the trace's "call" event), the instruction after a call (the handler runs as
a C call returns; after a Python function returns it does not, so these are more points than
CPython has) and a backward jump.  An ``every`` predicate makes more instructions points (the
every-bytecode sweeps).  Never at ``PUSH_EXC_INFO``, a handler's entry after a call that
raised: CPython unwinds to it without running a signal handler, and a KeyboardInterrupt
raised there from a trace function leaves the exception being handled set in this thread for
ever, the ``__context__`` of every later exception.  Never at an instruction with no line
number either (``frame.f_lineno`` None: the compiler's own clean-up of an ``except ... as``
block, ``COPY``/``POP_EXCEPT``/``RERAISE``): a real Ctrl+C's handler runs only where
CPython's eval loop checks its eval breaker (``RESUME``, after a call, ``JUMP_BACKWARD``:
``CHECK_EVAL_BREAKER()`` in the instruction bodies of Python/ceval.c in 3.11,
Python/bytecodes.c from 3.12), the points above, none of which is in such a clean-up; and
one raised there skips its ``POP_EXCEPT``, which leaves the exception handled before set in
this thread, as above (review RV-misc R6: test_store_ctrlc's
``update-refused`` sweep left a StateConflictError as the ``__context__`` of a later test's
exception).

:class:`InterruptAt` counts every frame but those of ``skip_files`` (and this module's: the
``with`` block's ``__exit__``); :class:`InterruptAfterSim` counts the library's frames from
the return of a simulator export (or a target's entry) to the target's return.
"""

from __future__ import annotations

import dis
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any


class InterruptAt:
    """Raise one ``KeyboardInterrupt`` at the ``n``-th point (from 1) of this thread's Python
    code run inside the ``with`` block, in frames :meth:`_enter` counts (here: all but those
    of ``skip_files`` and this module).  ``every(frame)`` true: the instruction ``frame`` is
    at is a point too.  :attr:`count` is how many points were passed, :attr:`where` where the
    interrupt was raised (None: never)."""

    # (3.10's names too: CALL_FUNCTION, CALL_METHOD, ...; a backward JUMP_ABSOLUTE)
    _CALLS = frozenset(
        {"CALL", "CALL_FUNCTION", "CALL_FUNCTION_KW", "CALL_METHOD", "CALL_FUNCTION_EX"}
    )
    _BACK = frozenset({"JUMP_BACKWARD", "JUMP_ABSOLUTE"})

    def __init__(
        self,
        n: int,
        *,
        every: Callable[[Any], bool] | None = None,
        skip_files: Iterable[str] = (),
    ) -> None:
        self._n = n
        self._every = every
        self._skip_files = frozenset((*skip_files, __file__))
        self._armed = True  # (points are counted)
        self._done = False
        self._last: dict[Any, str] = {}  # frame -> the opcode it ran last
        self._opnames: dict[Any, dict[int, str]] = {}
        self.count = 0
        self.where: str | None = None

    def __enter__(self) -> InterruptAt:
        self._previous = sys.gettrace()
        sys.settrace(self._call)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.settrace(self._previous)
        self._last.clear()

    def _enter(self, frame: Any) -> Any:
        """The local trace function of a new frame: ``self._step`` to count its points,
        ``None`` (or another function) not to."""
        return None if frame.f_code.co_filename in self._skip_files else self._step

    def _returned(self, frame: Any) -> None:
        """``frame`` returns (a hook: :class:`InterruptAfterSim` stops at its target's)."""

    def _opname(self, code: Any, offset: int) -> str:
        names = self._opnames.get(code)
        if names is None:
            names = {i.offset: i.opname for i in dis.get_instructions(code)}
            self._opnames[code] = names
        return names.get(offset, "")

    def _point(self, frame: Any, what: str) -> None:
        self.count += 1
        if self.count == self._n:
            self._done = True
            self._last.clear()  # (no "return" events follow: let the frames go)
            code = frame.f_code
            self.where = f"{getattr(code, 'co_qualname', code.co_name)} {what}"  # (3.11+)
            raise KeyboardInterrupt  # (Python unsets the trace function on its way out)

    def _call(self, frame: Any, event: str, arg: object) -> Any:
        if self._done:
            return None
        local = self._enter(frame)
        if local != self._step:
            return local
        frame.f_trace_opcodes = True
        if self._armed:
            self._point(frame, "@RESUME")
        return self._step

    def _step(self, frame: Any, event: str, arg: object) -> Any:
        if self._done:
            return None
        if event == "opcode":
            op = self._opname(frame.f_code, frame.f_lasti)
            last = self._last.get(frame)
            self._last[frame] = op
            every = self._every is not None and self._every(frame)
            if (
                self._armed
                and op != "PUSH_EXC_INFO"  # (see the module's docstring)
                and frame.f_lineno is not None  # (the compiler's clean-up: the same)
                and (every or last in self._CALLS or op in self._BACK)
            ):
                self._point(frame, f"@{frame.f_lasti} {op} (line {frame.f_lineno})")
        elif event == "return":
            self._last.pop(frame, None)
            self._returned(frame)
        return self._step


class InterruptAfterSim(InterruptAt):
    """:class:`InterruptAt` counting from the return of the simulator's ``export`` (a C call
    for the library; or, with ``export`` None, from the entry of ``target``) to the return of
    ``target``, in the library's frames only: the simulator's, and those it calls, are not
    counted (its exports run as ctypes callbacks, as the real DLLs run native code).  With
    ``every_bytecode`` every instruction is a point too, but in the frames of ``exempt``
    code."""

    def __init__(
        self,
        export: str | None,
        target: Any,
        n: int,
        *,
        every_bytecode: bool,
        exempt: frozenset[Any] = frozenset(),
    ) -> None:
        from hcs_sandbox import sim as sim_package

        super().__init__(
            n, every=(lambda frame: frame.f_code not in exempt) if every_bytecode else None
        )
        self._sim_files = os.path.dirname(sim_package.__file__) + os.sep
        self._export = export
        self._target = target.__code__
        self._armed = False

    def _enter(self, frame: Any) -> Any:
        caller: Any = frame
        while caller is not None:  # in the simulator, or called by it: not the library's
            if caller.f_code.co_filename.startswith(self._sim_files):
                if caller is frame and not self._armed and frame.f_code.co_name == self._export:
                    return self._sim_return
                return None
            caller = caller.f_back
        if self._export is None and frame.f_code is self._target:
            self._armed = True
        return self._step

    def _sim_return(self, frame: Any, event: str, arg: object) -> Any:
        if event == "return":
            self._armed = True
        return self._sim_return

    def _returned(self, frame: Any) -> None:
        if self._armed and frame.f_code is self._target:
            self._done = True
