"""Windows sharing rules for chosen files, on any OS, without sleeping (review RV31).

:class:`Hold` makes deleting, renaming or replacing onto a file whose basename it names raise
what CPython raises on Windows while another process has that file open without
FILE_SHARE_DELETE: ``PermissionError(13, ...)`` with ``winerror`` 32
(ERROR_SHARING_VIOLATION), as RV31's ``winlock.py`` did.  The hold lasts ``seconds`` of a
fake clock that only ``storage``'s pause between attempts advances (``storage._sleep`` is
replaced): a test never sleeps for real, and its outcome does not depend on timing.
``seconds=None``: held until :meth:`Hold.release`.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from hcs_sandbox.sandbox import storage

SHARING_TEXT = "The process cannot access the file because it is being used by another process"


def windows_error(path: object, winerror: int = 32) -> OSError:
    """What CPython raises on Windows for ``winerror`` (32, 5: PermissionError; 145: an
    OSError with errno ENOTEMPTY), with ``winerror`` set as Windows sets it."""
    name = os.fspath(path)  # type: ignore[call-overload]
    exc: OSError
    if winerror == 145:
        exc = OSError(errno.ENOTEMPTY, "The directory is not empty", name)
    elif winerror == 5:
        exc = PermissionError(errno.EACCES, "Access is denied", name)
    else:
        exc = PermissionError(errno.EACCES, SHARING_TEXT, name)
    exc.winerror = winerror  # type: ignore[attr-defined]  # Windows-only attribute
    return exc


class Hold:
    """Files "another process" holds open; see the module docstring."""

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        names: Iterable[str],
        seconds: float | None,
        *,
        winerror: int = 32,
        on_sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.names = set(names)
        self.seconds = seconds
        self.winerror = winerror
        self.now = 0.0
        self.sleeps: list[float] = []
        self.refused: list[str] = []  # basenames, one per refused attempt
        self.released = False
        self._on_sleep = on_sleep
        unlink, rmdir, replace, rename = os.unlink, os.rmdir, os.replace, os.rename

        def held_unlink(path: Any, *args: Any, **kwargs: Any) -> None:
            self._check(path)
            unlink(path, *args, **kwargs)

        def held_rmdir(path: Any, *args: Any, **kwargs: Any) -> None:
            self._check(path)
            rmdir(path, *args, **kwargs)

        def held_replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
            self._check(dst)
            replace(src, dst, *args, **kwargs)

        def held_rename(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
            self._check(dst)
            rename(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, "unlink", held_unlink)
        monkeypatch.setattr(os, "remove", held_unlink)
        monkeypatch.setattr(os, "rmdir", held_rmdir)
        monkeypatch.setattr(os, "replace", held_replace)
        monkeypatch.setattr(os, "rename", held_rename)
        # raising=False: the same test runs (and fails) on code without the retry
        monkeypatch.setattr(storage, "_sleep", self._sleep, raising=False)

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self._on_sleep is not None:
            self._on_sleep(seconds)
        self.now += seconds

    def held(self) -> bool:
        if self.released:
            return False
        return self.seconds is None or self.now < self.seconds

    def release(self) -> None:
        self.released = True

    def _check(self, path: Any) -> None:
        base = os.path.basename(os.fspath(path))
        if base in self.names and self.held():
            self.refused.append(base)
            raise windows_error(path, self.winerror)
