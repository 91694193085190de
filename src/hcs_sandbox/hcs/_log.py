"""The hcs layer's loggers, with ``logging`` imported on first use, not at import.

``logging`` (with ``traceback``, ``linecache``, ``tokenize``, ``textwrap``, ``string``)
costs ~5 ms of every process that imports the hcs layer, e.g. ``hcs-sandbox ls`` with live
records, which never logs.  :func:`get_logger` returns a stand-in whose attributes are the
real :class:`logging.Logger`'s (``logging.getLogger(name)``, looked up on first use), so
``_log.warning(...)`` calls the logger's own method from the caller's frame: records keep
the caller's file, line and function.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~5 ms at start-up
if TYPE_CHECKING:
    from logging import Logger
    from logging import getLogger as get_logger
    from typing import Any

__all__ = ["get_logger"]


class _LazyLogger:
    """Stands for ``logging.getLogger(name)``; imports ``logging`` when first used."""

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Logger | None = None

    def __getattr__(self, attribute: str) -> Any:
        logger = self._logger
        if logger is None:
            import logging

            logger = self._logger = logging.getLogger(self._name)
        return getattr(logger, attribute)

    def __repr__(self) -> str:
        return f"<lazy logger {self._name!r}>"


if not TYPE_CHECKING:

    def get_logger(name: str) -> Any:
        """``logging.getLogger(name)``, with ``logging`` imported when first used."""
        return _LazyLogger(name)
