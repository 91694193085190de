"""An undo stack for multi-step operations that must leave nothing half-made.

Each step that makes a resource pushes the function that releases it. When a later step
fails (an exception of *any* kind, :class:`KeyboardInterrupt` included), :meth:`UndoStack.unwind`
runs the undo functions in reverse order. An undo that fails is logged and collected —
the remaining undos still run — and the original exception is re-raised. What could not be
undone stays recorded in the store (write-ahead records), so ``prune`` finishes the job:
the steps that release that evidence (the record, the folder prune recognises a sandbox's
compute system by) are pushed with :meth:`UndoStack.push_evidence` and are skipped once a
step before them that released something else (a compute system, an endpoint) failed.

A Ctrl+C that arrives *while* undoing is deferred until the unwinding has finished, so the
clean-up itself is not interrupted half way (the first interrupt is re-raised afterwards).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType

__all__ = ["UndoError", "UndoStack"]

_log = logging.getLogger("hcs_sandbox.sandbox")


class UndoError:
    """One undo step that failed: what it was and the exception it raised."""

    __slots__ = ("description", "error")

    def __init__(self, description: str, error: BaseException) -> None:
        self.description = description
        self.error = error

    def __repr__(self) -> str:
        return f"UndoError({self.description!r}, {self.error!r})"


class UndoStack:
    """Undo functions pushed as resources are made; unwound in reverse on failure.

    Use as a context manager: on an exception the stack unwinds, on success it is
    discarded (call :meth:`commit` explicitly if you leave the block early)::

        with UndoStack() as undo:
            make_disk(); undo.push("delete disk", delete_disk)
            create_system(); undo.push("terminate system", terminate)
    """

    def __init__(self, *, kept_remedy: str | None = None) -> None:
        #: Added to the remedy of the :class:`~hcs_sandbox.errors.HcsSandboxError` that
        #: unwound the stack when evidence was kept for prune (:meth:`push_evidence`): the
        #: user is told what is left and what ends it.
        self._kept_remedy = kept_remedy
        #: Whether an evidence step was kept (skipped or replaced) at the last unwind.
        self.kept = False
        # (description, undo, evidence, keep): see push_evidence.
        self._steps: list[tuple[str, Callable[[], object], bool, Callable[[], object] | None]] = []
        self.failures: list[UndoError] = []
        self.committed = False
        self._on_interrupt: list[Callable[[], object]] = []

    def when_interrupted(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` once when a Ctrl+C (or SystemExit) first interrupts an undo
        step: e.g. stop waiting for files held open, so the steps still to run are quick."""
        self._on_interrupt.append(callback)

    def push(self, description: str, undo: Callable[[], object]) -> None:
        """Remember how to undo the step that just succeeded."""
        self._steps.append((description, undo, False, None))

    def push_evidence(
        self,
        description: str,
        undo: Callable[[], object],
        *,
        keep: Callable[[], object] | None = None,
    ) -> None:
        """Remember how to release something the next ``prune`` finds what was made after
        it by (the write-ahead record; the sandbox folder, the evidence that an owned compute
        system without a record is this store's: maintenance.py).  At unwind it runs only
        when every step undone before it succeeded; after a failure (a compute system that
        could not be terminated, a Ctrl+C in the clean-up) ``keep`` runs instead (e.g. mark
        the record for prune), or nothing, so what could not be undone stays findable.  A
        failed evidence step does not count: a file left behind is found without a record."""
        self._steps.append((description, undo, True, keep))

    def __len__(self) -> int:
        return len(self._steps)

    def commit(self) -> None:
        """Forget every undo step: the operation succeeded."""
        self._steps.clear()
        self.committed = True

    def unwind(self) -> list[UndoError]:
        """Run every undo step, newest first; returns the ones that failed.

        A :class:`KeyboardInterrupt` raised inside an undo step is recorded, the remaining
        steps still run, and it is re-raised at the end.
        """
        interrupted: BaseException | None = None
        left = False  # a step that is no evidence failed: what it was to undo may remain
        while self._steps:
            description, undo, evidence, keep = self._steps.pop()
            if evidence and left:
                _log.warning("rollback: kept for prune: %s (a step before it failed)", description)
                self.kept = True
                if keep is None:
                    continue
                undo = keep
            failed = len(self.failures)
            try:
                undo()
            except (KeyboardInterrupt, SystemExit) as exc:
                if interrupted is None:
                    interrupted = exc
                    for callback in self._on_interrupt:
                        try:
                            callback()
                        except Exception as hook_error:  # a hook must not stop the unwind
                            _log.warning("rollback: %s", hook_error)
                self.failures.append(UndoError(description, exc))
            except Exception as exc:
                _log.warning("rollback: %s failed: %s", description, exc)
                self.failures.append(UndoError(description, exc))
            # A failed evidence step (a file left behind) needs no record for prune to find
            # it (a file without a record or system is an orphan); any other one does.
            left = left or (len(self.failures) > failed and not evidence)
        if interrupted is not None:
            raise interrupted
        return self.failures

    def __enter__(self) -> UndoStack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
            return
        try:
            self.unwind()
        except (KeyboardInterrupt, SystemExit):
            # The original exception wins; a second Ctrl+C during clean-up was recorded.
            pass
        if self.kept and self._kept_remedy:
            from hcs_sandbox.errors import HcsSandboxError

            if isinstance(exc, HcsSandboxError):
                exc.remedy = (
                    f"{exc.remedy}; {self._kept_remedy}" if exc.remedy else self._kept_remedy
                )
