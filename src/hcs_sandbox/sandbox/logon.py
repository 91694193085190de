"""The logon command (the ``.wsb`` ``<LogonCommand><Command>``) and the sandbox's logs.

Windows Sandbox runs the logon command once after the user logs on, as that user, with the
mapped folders already in place (windows-sandbox.md §2, Microsoft *Windows Sandbox
configuration* docs).  hcs-sandbox runs it once after each start, through
``HcsCreateProcess`` (``cmd /c <command>``), in a background thread of the process that
started the sandbox:

* the guest agent may not answer yet right after ``HcsStartComputeSystem``; the thread
  retries while HCS reports a guest-connection error (``HCS_E_CONNECT_FAILED`` and the
  like), for up to :data:`READY_TIMEOUT` seconds, then logs the failure;
* its stdout and stderr are appended to ``<sandbox dir>/logs/logon.log`` as they arrive
  (streamed, never held in memory), and its start and exit code go to ``sandbox.log``.

Limitation: the output is captured by the process that started the sandbox; when that
process ends first (``hcs-sandbox run -d`` returns at once), the command keeps running in
the guest but the rest of its output is not captured.  TODO: redirect inside the guest to a
dedicated read-write log share so a detached start captures everything.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from hcs_sandbox import errors

if TYPE_CHECKING:
    from hcs_sandbox.sandbox.sandbox import Sandbox

__all__ = ["LOGON_LOG", "READY_TIMEOUT", "logon_log_path", "read_logs", "start_logon_command"]

_log = logging.getLogger("hcs_sandbox.sandbox")

LOGON_LOG = "logon.log"
#: How long to keep retrying HcsCreateProcess while the guest connection is not up.
READY_TIMEOUT = 180.0
_RETRY_EVERY = 1.0


def logon_log_path(sandbox: Sandbox) -> Path:
    return Path(sandbox.directory) / "logs" / LOGON_LOG


def read_logs(sandbox: Sandbox, lifecycle: str) -> str:
    """The sandbox's lifecycle log followed by the logon command's output (if any)."""
    try:
        output = logon_log_path(sandbox).read_bytes()
    except FileNotFoundError:
        return lifecycle
    except OSError as exc:
        raise errors.StorageError(
            f"could not read the logon log of sandbox '{sandbox.name}': {exc}"
        ) from exc
    text = output.decode("utf-8", errors="replace").replace("\r\n", "\n")
    return f"{lifecycle}---- logon command output ----\n{text}"


def start_logon_command(
    sandbox: Sandbox, *, ready_timeout: float | None = None
) -> threading.Thread | None:
    """Run the spec's logon command in the background (see the module docstring).

    Returns the thread (join it to wait for the command), or None without a logon command.
    Never raises: failures are written to the sandbox's log.
    """
    command = sandbox.spec.logon_command
    if not command:
        return None
    thread = threading.Thread(
        target=_run,
        args=(sandbox, command, READY_TIMEOUT if ready_timeout is None else ready_timeout),
        name=f"hcs-sandbox-logon-{sandbox.name}",
        daemon=True,
    )
    thread.start()
    return thread


def _run(sandbox: Sandbox, command: str, ready_timeout: float) -> None:
    from hcs_sandbox.sandbox.guest import GuestProcess, sandbox_spawn

    deadline = time.monotonic() + ready_timeout
    proc: GuestProcess | None = None
    while proc is None:
        try:
            proc = sandbox_spawn(sandbox, f"cmd /c {command}", stdin=False)
        except errors.ConnectFailedError as exc:
            if time.monotonic() >= deadline:
                sandbox._log_line(f"logon command not started: {exc}")
                return
            time.sleep(_RETRY_EVERY)
        except Exception as exc:  # a thread must not die silently
            sandbox._log_line(f"logon command not started: {exc}")
            return
    sandbox._log_line(f"logon command started: {command}")
    path = logon_log_path(sandbox)
    try:
        path.parent.mkdir(exist_ok=True)
        with proc, path.open("ab") as log:
            for chunk in proc:
                log.write(chunk.data)
                log.flush()
            code = proc.wait()
        sandbox._log_line(f"logon command exited with code {code}")
    except Exception as exc:
        sandbox._log_line(f"logon command output capture stopped: {exc}")
        _log.debug("logon command of %s", sandbox.name, exc_info=True)
