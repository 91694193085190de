"""``HCS_SANDBOX_SIMULATOR``: the one reading of the environment variable that asks for the
HCS simulator (imported by the native loader, the doctor and the CLI: standard library only).

- unset, empty, ``0``, ``false``, ``no``, ``off`` (any case): the simulator is not asked for;
- ``1``, ``true``, ``yes``, ``on``: the simulator, with its state in the default directory;
- an absolute directory path: the simulator, with its state there.

Anything else (a relative path, say) is refused: a directory that depends on the current
directory would make two shells see two different simulated hosts beside one state store,
and ``prune`` in one of them would take the other's sandboxes for gone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["ENV_SIMULATOR", "SimulatorSettingError", "asked", "setting"]

ENV_SIMULATOR = "HCS_SANDBOX_SIMULATOR"

_ON = frozenset({"1", "true", "yes", "on"})
_OFF = frozenset({"", "0", "false", "no", "off"})


class SimulatorSettingError(ValueError):
    """The variable holds neither a switch word nor an absolute directory."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.remedy = (
            f"set {ENV_SIMULATOR}=1 (the default simulator directory), an absolute directory, "
            f"or 0 / unset it to use Windows"
        )
        super().__init__(
            f"{ENV_SIMULATOR}={value!r} is neither on/off nor an absolute directory for the "
            f"simulator's state"
        )


def _value(environ: Mapping[str, str] | None) -> str:
    env = os.environ if environ is None else environ
    return env.get(ENV_SIMULATOR, "").strip()


def asked(environ: Mapping[str, str] | None = None) -> bool:
    """True when the variable asks for the simulator (an invalid value counts as asking:
    :func:`setting` then says what is wrong)."""
    return _value(environ).lower() not in _OFF


def setting(environ: Mapping[str, str] | None = None) -> str | None:
    """None: not asked for; ``""``: the default directory; else the absolute directory.
    Raises :class:`SimulatorSettingError` for any other value."""
    value = _value(environ)
    word = value.lower()
    if word in _OFF:
        return None
    if word in _ON:
        return ""
    path = os.path.expanduser(value)
    if not os.path.isabs(path):
        raise SimulatorSettingError(value)
    return path
