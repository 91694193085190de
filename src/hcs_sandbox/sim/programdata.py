"""A fake ``%ProgramData%`` for the simulator, holding a fake Windows Sandbox base image.

The sandbox layer asks the backend where ProgramData is (``program_data_dir()``); on
Windows that is the real folder, and in the simulator it is ``<state>/ProgramData`` with
the layout Windows Sandbox uses (its HCS document, MouriNaruto/MouriDocs ``docs/4/ReadMe.md``):
``Microsoft\\Windows\\Containers\\BaseImages\\<guid>\\BaseLayer\\Files`` plus a few files a
Windows root has, so tests can find "this host's base image" without Windows.

Created lazily on the first call, never at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["FAKE_BASE_IMAGE_ID", "ensure_program_data"]

#: The id of the fake base image folder (any GUID; Windows uses a random one per build).
FAKE_BASE_IMAGE_ID = "134ac1c6-9de2-465e-9f16-570f0066c8a5"

# What was made in this process, by state dir: (the ProgramData folder, the fake kernel's
# path), checked with one stat of the kernel.
_MADE: dict[str, tuple[Path, str]] = {}


def ensure_program_data(state_dir: str | os.PathLike[str]) -> Path:
    """Create (if missing) and return ``<state_dir>/ProgramData``."""
    key = os.fspath(state_dir)
    made = _MADE.get(key)
    if made is not None and os.path.exists(made[1]):
        return made[0]  # made earlier (one stat instead of the mkdirs below)
    root = Path(state_dir) / "ProgramData"
    files = (
        root
        / "Microsoft"
        / "Windows"
        / "Containers"
        / "BaseImages"
        / FAKE_BASE_IMAGE_ID
        / "BaseLayer"
        / "Files"
    )
    system32 = files / "Windows" / "System32"
    system32.mkdir(parents=True, exist_ok=True)
    kernel = system32 / "ntoskrnl.exe"
    if not kernel.exists():
        kernel.write_bytes(b"MZ simulated kernel\n")
    _MADE[key] = (root, str(kernel))
    return root
