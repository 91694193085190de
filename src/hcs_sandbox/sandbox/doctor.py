"""The field kit: check that this host can run sandboxes, and say how to fix what is missing.

:func:`diagnose` runs the **host checks** (cheap, no admin needed where possible):

========================  =================================================================
``platform``              Windows, and its build (``sys.getwindowsversion()``); HCS schema
                          2.x needs Windows 10 1809 (build 17763) or later
                          (SchemaReference.md "Schema Version Map": 2.1 = 1809).
``hcs``                   ``HcsGetServiceProperties({"PropertyTypes": ["Basic"]})`` answers
                          and lists the supported schema versions (HcsGetServiceProperties.md).
``features``              Hyper-V or Virtual Machine Platform, and Windows Sandbox
                          (``Containers-DisposableClientVM``, windows-sandbox-install.md).  Not
                          elevated: inferred from what the features install — the
                          ``vmcompute`` service (Hyper-V Host Compute Service) and
                          ``computecore.dll`` for the platform; the Windows Sandbox base image
                          folder for Windows Sandbox.  Elevated: also
                          ``dism /online /English /get-featureinfo /featurename:<name>``
                          (``/English`` keeps the output parseable on localized Windows).
``admin``                 elevated (``IsUserAnAdmin``); HCS calls need Administrators or
                          Hyper-V Administrators, else HCS_E_ACCESS_DENIED (HCSHResult.md).
``services``              ``vmcompute`` and ``hns`` running (``sc.exe query <name>``).
``base_image``            this host's Windows Sandbox base image (``storage.find_host_base``).
``base_build``            that base image's build (its kernel's file version,
                          ``sandbox/basebuild.py``) against this host's (the host's own
                          kernel's), each ``<guid>`` folder's build in ``data``: FAIL when
                          every folder has another build (``create`` refuses); WARN when
                          the build cannot be read or ``HCS_SANDBOX_IGNORE_BASE_BUILD``
                          lets another build through (``create`` goes on).
``state_dir``             the state directory opens as every verb opens it
                          (``paths.ensure_state_dir_text``: created if missing) and can be
                          listed; else FAIL with the store's remedy.
``disk``                  free space where the state directory lives (a scratch disk is a
                          dynamic VHDX of up to 20 GiB; it grows with what the guest writes).
========================  =================================================================

With ``deep=True`` it also performs each step of a real sandbox's life once — plan, scratch
disk, guest state file, grant VM access, create the compute system, start, query properties,
pause, resume, terminate, clean up — timing each step and recording exactly which HCS call
failed with which HRESULT and ``ResultError`` (:class:`~hcs_sandbox.errors.HcsError` carries
``.hresult``/``.name``/``.function``/``.result_error``) and its specific remedy as the
step's ``fix``.  For the host base it tries each document variant in turn (``documented``,
then ``wsb-compat``) and reports which one boots: a variant is judged by the steps where its
document matters (:data:`DOCUMENT_STEPS` on, see :func:`deep_run`); the clean-up is
recorded apart (a failed one makes the report not ok, with ``hcs-sandbox prune`` as fix).

The report (:class:`DoctorReport`) is JSON-safe; :func:`save_report` writes it and
:func:`load_doctor_report` reads it back, so :func:`preferred_variant` can tell the planner
which variant worked on this host.  A deep run also saves the report as
``<state dir>/doctor-report.json``, which is where :func:`preferred_variant` looks by default
(``HCS_SANDBOX_DOCTOR_REPORT`` names another file).

On the simulator the same steps run against the simulated HCS, and the report says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hcs_sandbox import errors
from hcs_sandbox.sandbox import hostpath

__all__ = [
    "CLEAN_UP",
    "DOCUMENT_STEPS",
    "ENV_DOCTOR_REPORT",
    "ENV_VARIANT",
    "REPORT_FILENAME",
    "VARIANTS",
    "Check",
    "DoctorReport",
    "Step",
    "VariantResult",
    "backend_is_simulated",
    "check_report_path",
    "default_report_path",
    "diagnose",
    "forced_variant",
    "load_doctor_report",
    "preferred_variant",
    "save_report",
    "variant_choice",
]

#: The host-base document variants, in the order ``--deep`` tries them (planner.py).
VARIANTS = ("documented", "wsb-compat")
REPORT_FILENAME = "doctor-report.json"
ENV_DOCTOR_REPORT = "HCS_SANDBOX_DOCTOR_REPORT"
#: Forces the host-base document variant (``documented`` or ``wsb-compat``); ``doctor
#: --deep`` sets it while it tries each variant; users may set it too.
ENV_VARIANT = "HCS_SANDBOX_HOST_VARIANT"
REPORT_FORMAT = 1

#: Windows 10 1809: the first build with computecore.dll and schema 2.1 (SchemaReference.md
#: "Schema Version Map").
MIN_BUILD = 17763
#: Windows Sandbox shipped in Windows 10 1903 (build 18362); the .wsb format came with Insider
#: build 18342 (techcommunity.microsoft.com "Windows Sandbox - Config Files", Feb 2019).  The
#: first release build is UNCONFIRMED by a Microsoft doc page.
MIN_SANDBOX_BUILD = 18362

DISK_WARN_BYTES = 20 * 1024**3
DISK_FAIL_BYTES = 2 * 1024**3

# Windows optional feature names (windows-sandbox-install.md for Containers-DisposableClientVM;
# Microsoft "Enable Hyper-V" / "Virtual Machine Platform" docs for the other two).
FEATURE_HYPERV = "Microsoft-Hyper-V"
FEATURE_VMP = "VirtualMachinePlatform"
FEATURE_SANDBOX = "Containers-DisposableClientVM"

REMEDY_PLATFORM = (
    "enable 'Virtual Machine Platform' (or Hyper-V): in an elevated PowerShell run "
    "'Enable-WindowsOptionalFeature -Online -FeatureName VirtualMachinePlatform' and reboot"
)
REMEDY_SANDBOX = (
    "enable Windows Sandbox: in an elevated PowerShell run 'Enable-WindowsOptionalFeature "
    "-Online -FeatureName Containers-DisposableClientVM', reboot, and start Windows Sandbox "
    "once (or use --base image:PATH / --base vhdx:PATH)"
)

#: What an unelevated user (a 'Hyper-V Administrators' member too) must do on Windows.
#: The state directory is created with owner Administrators (paths.WINDOWS_STATE_DIR_SDDL),
#: which a token without the Administrators SID enabled cannot set (SetNamedSecurityInfoW,
#: Microsoft Learn: "this SID must be contained in the caller's token, and must have the
#: SE_GROUP_OWNER permission enabled"), and its DACL admits Administrators and SYSTEM only:
#: so --state-dir does not help (docs/windows-notes.md, "Non-elevated callers").
REMEDY_ELEVATE = (
    "run hcs-sandbox from an elevated prompt (Run as administrator): joining 'Hyper-V "
    "Administrators' lets HCS answer, but the state directory (with or without --state-dir) "
    "needs an elevated process"
)

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"

#: The deep run's last step (:func:`_deep_variant`): remove the sandbox it made.
CLEAN_UP = "clean up"
#: The deep-run steps from which the document variant matters: the compute system's
#: creation (``Sandbox.create``'s progress message for HcsCreateComputeSystem) and the
#: ``start`` that follows it; every later step comes after them.
DOCUMENT_STEPS = frozenset({"creating the compute system", "start"})
#: The HCS calls that take (or act on what was made from) the document.
DOCUMENT_CALLS = frozenset({"HcsCreateComputeSystem", "HcsStartComputeSystem"})


# --------------------------------------------------------------------------------------
# Report types
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Check:
    """One host check: ``status`` is ``ok``/``warn``/``fail``/``skip``; ``fix`` says what to
    do when it is not ok; ``data`` holds what was measured."""

    name: str
    status: str
    detail: str
    fix: str | None = None
    data: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Check:
        return cls(
            name=str(d.get("name", "")),
            status=str(d.get("status", "")),
            detail=str(d.get("detail", "")),
            fix=d.get("fix"),
            data=dict(d.get("data") or {}),
        )


@dataclasses.dataclass
class Step:
    """One step of a deep run: how long it took and, if it failed, exactly how."""

    name: str
    ok: bool
    seconds: float
    error: str | None = None
    function: str | None = None
    hresult: str | None = None
    hresult_name: str | None = None
    result_error: dict[str, Any] | None = None
    #: What to do about a failed step: the error's own specific remedy (not the generic
    #: "run doctor --deep" one: this report is that run), or the deep run's (clean up).
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Step:
        result_error = d.get("result_error")
        return cls(
            name=str(d.get("name", "")),
            ok=bool(d.get("ok")),
            seconds=float(d.get("seconds") or 0.0),
            error=d.get("error"),
            function=d.get("function"),
            hresult=d.get("hresult"),
            hresult_name=d.get("hresult_name"),
            result_error=dict(result_error) if isinstance(result_error, Mapping) else None,
            fix=d.get("fix"),
        )


@dataclasses.dataclass
class VariantResult:
    """The deep run of one document variant: its steps, and whether the system booted.

    ``ok``: every step where the document matters passed (the compute system was created,
    started, queried, paused, resumed and terminated): the variant boots.  The clean-up
    that follows is not part of that verdict: :attr:`cleanup_failed` says whether it failed
    (then the report is not ok, and its step's ``fix`` says how to finish it).
    ``reached_document``: the run got as far as creating the compute system; when it
    failed before (a scratch disk, a grant...), the document was never tried, so the
    variant is neither judged nor is the next one tried.
    """

    variant: str
    base: str
    ok: bool
    steps: list[Step] = dataclasses.field(default_factory=list)
    reached_document: bool = True

    @property
    def failed_step(self) -> Step | None:
        return next((s for s in self.steps if not s.ok), None)

    @property
    def cleanup_failed(self) -> bool:
        """The clean-up after this variant's run failed (something may be left: prune)."""
        return any(s.name == CLEAN_UP and not s.ok for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "base": self.base,
            "ok": self.ok,
            "reached_document": self.reached_document,
            "cleanup_failed": self.cleanup_failed,
            "steps": [s.to_dict() for s in self.steps],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VariantResult:
        return cls(
            variant=str(d.get("variant", "")),
            base=str(d.get("base", "host")),
            ok=bool(d.get("ok")),
            steps=[Step.from_dict(s) for s in d.get("steps") or [] if isinstance(s, Mapping)],
            reached_document=bool(d.get("reached_document", True)),
        )


@dataclasses.dataclass
class DoctorReport:
    """Everything ``hcs-sandbox doctor`` found (JSON-safe via :meth:`to_dict`)."""

    simulated: bool
    checks: list[Check] = dataclasses.field(default_factory=list)
    deep: list[VariantResult] | None = None
    host: dict[str, Any] = dataclasses.field(default_factory=dict)
    created_at: float = dataclasses.field(default_factory=time.time)
    tool_version: str = ""

    @property
    def ok(self) -> bool:
        """No check failed and, for a deep run, some variant booted and every clean-up
        succeeded."""
        if any(c.status == FAIL for c in self.checks):
            return False
        if self.deep is None:
            return True
        return any(v.ok for v in self.deep) and not any(v.cleanup_failed for v in self.deep)

    @property
    def hcs_unavailable(self) -> bool:
        """HCS cannot be reached at all on this host (not Windows, DLLs or service missing)."""
        return any(c.name == "hcs" and c.status == FAIL for c in self.checks)

    @property
    def working_variant(self) -> str | None:
        """The first document variant that booted in the deep run, else None."""
        for result in self.deep or []:
            if result.ok:
                return result.variant
        return None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": REPORT_FORMAT,
            "tool_version": self.tool_version,
            "created_at": self.created_at,
            "simulated": self.simulated,
            "ok": self.ok,
            "host": dict(self.host),
            "checks": [c.to_dict() for c in self.checks],
        }
        if self.deep is not None:
            out["deep"] = [v.to_dict() for v in self.deep]
            out["working_variant"] = self.working_variant
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DoctorReport:
        deep = d.get("deep")
        return cls(
            simulated=bool(d.get("simulated")),
            checks=[Check.from_dict(c) for c in d.get("checks") or [] if isinstance(c, Mapping)],
            deep=None
            if deep is None
            else [VariantResult.from_dict(v) for v in deep if isinstance(v, Mapping)],
            host=dict(d.get("host") or {}),
            created_at=float(d.get("created_at") or 0.0),
            tool_version=str(d.get("tool_version") or ""),
        )


# --------------------------------------------------------------------------------------
# Reading and writing reports; the planner's preferred variant
# --------------------------------------------------------------------------------------


def _not_writable_here(where: str) -> str | None:
    """Why the report must not be written at ``where`` as it stands, or None: a symbolic
    link (never followed: in a shared folder another user could point it at any file,
    which an elevated run would then replace -- review RV25) or anything that is not a
    regular file (a device such as ``/dev/null``, a FIFO, a socket: the rename would
    replace it)."""
    if os.path.islink(where):
        return "it is a symbolic link (give the path of the file itself)"
    if os.path.lexists(where) and not os.path.isfile(where):
        return "it is not a regular file (a device, a FIFO or a socket)"
    return None


def save_report(report: DoctorReport, path: str | os.PathLike[str]) -> Path:
    """Write ``report`` as JSON to ``path`` (atomically: a new temporary file with an
    unpredictable name beside it, then rename; the file is readable by its owner only).

    A symbolic link, or anything at the path that is not a regular file (a device such as
    ``/dev/null``, a FIFO, a socket), is refused, never followed nor replaced:
    :class:`StorageError`.

    On Windows a file another program has open (an editor, a viewer) cannot be replaced:
    the rename is tried again for a while (``storage.retry_while_held``); when it still
    fails, the new report is kept beside it under a visible name (``NAME.new.json``, never
    replacing anything; :func:`_keep_unsaved`) and the :class:`StorageError` says where."""
    import json
    import tempfile

    from hcs_sandbox.sandbox import storage

    target = Path(path)
    why = _not_writable_here(os.fspath(path))
    if why is not None:
        raise errors.StorageError(
            f"could not write the doctor report to {path}: {why}",
            remedy="choose a file path for --report (or print the report with --json)",
        )
    temporary: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX
        )
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        raise errors.StorageError(
            f"could not write the doctor report to {target}: {exc.strerror or exc}",
            remedy="choose a writable path for --report",
        ) from exc
    written = temporary
    try:
        storage.retry_while_held(lambda: os.replace(written, target))
    except OSError as exc:
        # The report is written: keep it (a deep run's results are not lost).
        kept = _keep_unsaved(written, target)
        if storage.held_open(exc):
            why = f"another program has {target.name} open ({exc.strerror or exc})"
            remedy = (
                f"close the program that has {target} open (an editor, a viewer) and rename "
                f"{kept} to {target.name}"
            )
        else:
            why = str(exc.strerror or exc)
            remedy = f"rename {kept} to {target.name} yourself"
        raise errors.StorageError(
            f"could not replace {target} with the new doctor report: {why}; the new report "
            f"is in {kept}",
            remedy=remedy,
        ) from exc
    return target


def _keep_unsaved(temporary: str, target: Path) -> str:
    """Give the written report whose rename onto ``target`` failed a visible name beside
    it: ``NAME.new.json`` (``NAME.new-2.json``... when taken).  A hard link, so nothing that
    exists is replaced or followed (a symbolic link of that name is a name taken); the file
    keeps its owner-only mode (``temporary`` is the regular file :func:`save_report` made).
    Where links cannot be made: the temporary name as it is."""
    for n in range(1, 10):
        extra = ".new" if n == 1 else f".new-{n}"
        candidate = target.with_name(f"{target.stem}{extra}{target.suffix}")
        try:
            os.link(temporary, candidate)  # never replaces: FileExistsError
        except FileExistsError:
            continue
        except (OSError, NotImplementedError):
            break
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        return str(candidate)
    return temporary


# The report's temporary file (and the probe of check_report_path) is ".XXXXXXXX.tmp" beside
# it (tempfile: 8 random characters): short, so a report path within Windows' MAX_PATH
# does not fail on a longer temporary name (review RV40 finding 4).
_TEMP_PREFIX = "."
_TEMP_SUFFIX = ".tmp"
_TEMP_SHAPE = _TEMP_PREFIX + "X" * 8 + _TEMP_SUFFIX


def check_report_path(path: str | os.PathLike[str]) -> None:
    """Refuse, before a run, a path :func:`save_report` could not write: a folder, a file
    under something that is not a folder, a folder this process cannot write in (probed by
    creating and removing a temporary file beside where the report goes, or in the nearest
    existing folder above it, which :func:`save_report` would create the rest under).

    Also refused: an empty path, a symbolic link, and a path that names something other
    than a regular file (a device such as ``/dev/null``, a FIFO, a socket), which the
    report's rename would otherwise replace (:func:`_not_writable_here`).

    Raises :class:`~hcs_sandbox.errors.SpecError` (bad input: exit 2 at the CLI).
    """
    where = os.fspath(path)
    target = Path(where)

    def refuse(why: str) -> errors.SpecError:
        return errors.SpecError(
            f"cannot write the doctor report to {where}: {why}",
            field="report",
            value=where,
            remedy="give a file path in a folder you can write to, e.g. ./doctor-report.json",
        )

    if not where:
        raise refuse("the path is empty")
    for candidate in (where, os.path.join(os.fspath(target.parent), _TEMP_SHAPE)):
        if hostpath.too_long(candidate):  # it would look missing (FileNotFoundError)
            what = "the path" if candidate == where else f"its temporary file {candidate}"
            raise errors.SpecError(
                f"cannot write the doctor report to {where}: {what} "
                f"{hostpath.too_long_problem(candidate).removeprefix('it ')}",
                field="report",
                value=where,
                remedy=hostpath.LONG_PATHS_REMEDY,
            )
    if target.is_dir() and not os.path.islink(where):
        raise refuse("it is a folder")
    why = _not_writable_here(where)
    if why is not None:
        raise refuse(why)
    folder = target.parent
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise refuse(f"{folder} is not a folder")
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX)
        os.close(fd)
    except OSError as exc:
        raise refuse(f"{folder} cannot be written: {exc.strerror or exc}") from exc
    with contextlib.suppress(OSError):
        os.unlink(probe)


def load_doctor_report(path: str | os.PathLike[str]) -> DoctorReport:
    """Read a report written by ``hcs-sandbox doctor --report FILE``.

    Raises :class:`~hcs_sandbox.errors.SpecError` (bad input) when the file is missing, not
    JSON, or not a doctor report.
    """
    import json

    where = os.fspath(path)
    try:
        text = Path(where).read_text(encoding="utf-8")
    except OSError as exc:
        raise errors.SpecError(
            f"cannot read the doctor report {where}: {exc.strerror or exc}",
            field="report",
            value=where,
            remedy="run 'hcs-sandbox doctor --deep --report FILE' to make one",
        ) from exc
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise errors.SpecError(
            f"the doctor report {where} is not JSON: {exc}",
            field="report",
            value=where,
            remedy="run 'hcs-sandbox doctor --deep --report FILE' again",
        ) from exc
    if not isinstance(value, dict) or "checks" not in value or "simulated" not in value:
        raise errors.SpecError(
            f"{where} is not an hcs-sandbox doctor report",
            field="report",
            value=where,
            remedy="run 'hcs-sandbox doctor --deep --report FILE' to make one",
        )
    return DoctorReport.from_dict(value)


def default_report_path(state_dir: str | os.PathLike[str] | None = None) -> Path:
    """``$HCS_SANDBOX_DOCTOR_REPORT``, else ``<state dir>/doctor-report.json``."""
    named = os.environ.get(ENV_DOCTOR_REPORT, "").strip()
    if named:
        return Path(named)
    from hcs_sandbox.sandbox import paths

    return Path(paths.state_dir(state_dir)) / REPORT_FILENAME


def _report_path_text(state_dir: str | os.PathLike[str] | None) -> str:
    """``str(default_report_path(state_dir))``; without pathlib for the usual case (every
    create asks).  The state directory's text is absolute and normalised
    (``os.path.abspath``), so joining the file name is what pathlib gives; the environment
    variable's text is left to pathlib (it may end in a separator, say)."""
    if os.environ.get(ENV_DOCTOR_REPORT, "").strip():
        return str(default_report_path(state_dir))
    from hcs_sandbox.sandbox import paths

    return os.path.join(paths.state_dir_text(state_dir), REPORT_FILENAME)


def forced_variant() -> str | None:
    """The variant ``HCS_SANDBOX_HOST_VARIANT`` forces (``documented`` or ``wsb-compat``, any
    case), or None when it is unset or empty.

    Any other value is refused with a :class:`~hcs_sandbox.errors.SpecError` (bad input, exit
    2 at the CLI), as ``HCS_SANDBOX_SIMULATOR`` refuses a value it cannot read: a misspelt
    ``wsb_compat`` must not quietly give the other document.
    """
    text = os.environ.get(ENV_VARIANT, "").strip()
    if not text:
        return None
    if text.lower() in VARIANTS:
        return text.lower()
    raise errors.SpecError(
        f"{ENV_VARIANT}={text!r} is not a host document variant",
        field=ENV_VARIANT,
        value=text,
        remedy=f"set it to {' or '.join(VARIANTS)}, or unset it",
    )


def variant_choice(
    state_dir: str | os.PathLike[str] | None = None, *, simulated: bool | None = None
) -> tuple[str | None, str]:
    """:func:`preferred_variant` and where it comes from, in words (``plan`` prints them):
    ``(variant or None, source)``."""
    forced = forced_variant()
    if forced is not None:
        return forced, ENV_VARIANT
    path = ""
    try:
        path = _report_path_text(state_dir)
        if not os.path.isfile(path):  # what Path.is_file() answers for this text
            return None, f"no 'doctor --deep' report at {path}"
        report = load_doctor_report(path)
    except (errors.HcsSandboxError, OSError):
        return None, f"the doctor report {path or '(no path)'} cannot be read"
    if simulated is None:
        simulated = backend_is_simulated()
    if report.simulated != simulated:
        made = "the simulator" if report.simulated else "Windows"
        return None, f"the doctor report {path} was made on {made}"
    variant = report.working_variant
    if variant not in VARIANTS:
        return None, f"no variant booted in the doctor report {path}"
    return variant, f"the doctor report {path}"


def preferred_variant(
    state_dir: str | os.PathLike[str] | None = None, *, simulated: bool | None = None
) -> str | None:
    """The host-base document variant the last deep doctor run booted, or None.

    Used where the planner's ``HostFacts.variant`` is chosen.  A missing or unreadable
    report means "no preference" (the planner's default, ``documented``); a report made on
    the simulator is ignored on Windows and vice versa.  ``HCS_SANDBOX_HOST_VARIANT``
    (``documented`` or ``wsb-compat``) overrides the report; any other value of it raises
    :class:`~hcs_sandbox.errors.SpecError` (:func:`forced_variant`), the only error raised.
    """
    return variant_choice(state_dir, simulated=simulated)[0]


def backend_is_simulated() -> bool:
    """True when this process talks to the simulator (asked for; no backend is loaded).

    Cheap on purpose (every CLI verb asks): ``HCS_SANDBOX_SIMULATOR`` set means yes without
    importing the native layer; otherwise only :func:`~hcs_sandbox.native.loader.use_simulator`
    can have asked for it, and then the loader is already imported.
    """
    from hcs_sandbox import _simenv

    if _simenv.asked():
        return True
    loader = sys.modules.get("hcs_sandbox.native.loader")
    return bool(loader is not None and loader.simulator_requested())


# --------------------------------------------------------------------------------------
# Host checks
# --------------------------------------------------------------------------------------


def _run(argv: list[str], timeout: float = 60.0) -> tuple[int, str]:
    """Run a Windows tool; ``(exit code, stdout+stderr)``; ``(-1, why)`` when it cannot run."""
    import subprocess

    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            errors="replace",
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return -1, str(exc)
    return done.returncode, (done.stdout or "") + (done.stderr or "")


def _system32() -> Path:
    return Path(os.environ.get("SYSTEMROOT") or "C:\\Windows") / "System32"


def is_admin() -> bool | None:
    """Elevated? ``shell32!IsUserAnAdmin`` (Microsoft Learn, shlobj_core.h); None off Windows."""
    if sys.platform != "win32":
        return None
    import ctypes

    try:
        return bool(ctypes.windll.shell32.IsUserAnAdmin())
    except (AttributeError, OSError):
        return None


#: ``SERVICE_STATUS.dwCurrentState`` -> the name ``sc query`` prints after the number
#: (``SERVICE_STOPPED`` 0x1 ... ``SERVICE_PAUSED`` 0x7: Microsoft Learn, winsvc.h,
#: "SERVICE_STATUS_PROCESS structure", whose dwCurrentState is SERVICE_STATUS's).
SERVICE_STATES = {
    1: "STOPPED",
    2: "START_PENDING",
    3: "STOP_PENDING",
    4: "RUNNING",
    5: "CONTINUE_PENDING",
    6: "PAUSE_PENDING",
    7: "PAUSED",
}


def service_state(name: str) -> str | None:
    """``RUNNING``/``STOPPED``/... from ``sc.exe query <name>``; None when no such service.

    ``sc query`` prints ``STATE : 4  RUNNING``.  The label is translated (``STATUS``,
    ``ÉTAT``, ``ESTADO``...), the number and the word after it are not: the state is the
    line whose value is one of the seven ``dwCurrentState`` numbers followed by its own
    name (:data:`SERVICE_STATES`), whatever its label (``TYPE : 10  WIN32_OWN_PROCESS``,
    ``WIN32_EXIT_CODE : 0  (0x0)`` are not).  ``UNKNOWN`` when no line is.  Exit code 1060
    = ERROR_SERVICE_DOES_NOT_EXIST (winerror.h).
    """
    code, out = _run(["sc.exe", "query", name], timeout=15.0)
    if code == 1060 or code < 0:
        return None
    for line in out.splitlines():
        words = line.partition(":")[2].split()
        if len(words) >= 2 and words[0].isdecimal():
            state = SERVICE_STATES.get(int(words[0]))
            if state is not None and words[1].upper() == state:
                return state
    return "UNKNOWN"


def dism_feature_state(feature: str) -> str | None:
    """``Enabled``/``Disabled``/... from ``dism /online /English /get-featureinfo`` (needs an
    elevated process); None when it could not be asked."""
    code, out = _run(
        ["dism.exe", "/online", "/English", "/get-featureinfo", f"/featurename:{feature}"],
        timeout=120.0,
    )
    if code != 0:
        return None
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == "state":
            return value.strip()
    return None


def _check_platform(simulated: bool) -> Check:
    if sys.platform == "win32":
        version = sys.getwindowsversion()
        build = int(version.build)
        data = {"build": build, "major": version.major, "minor": version.minor}
        if build < MIN_BUILD:
            return Check(
                "platform",
                FAIL,
                f"Windows build {build} is too old for HCS schema 2.x",
                fix="update to Windows 10 1809 (build 17763) or later; Windows 11 recommended",
                data=data,
            )
        if build < MIN_SANDBOX_BUILD:
            return Check(
                "platform",
                WARN,
                f"Windows build {build}: HCS works, but Windows Sandbox (the 'host' base) "
                "needs build 18362 or later",
                fix="update Windows, or use --base image:PATH / --base vhdx:PATH",
                data=data,
            )
        return Check("platform", OK, f"Windows build {build}", data=data)
    if simulated:
        return Check(
            "platform",
            OK,
            f"{sys.platform}: using the built-in HCS simulator (simulated)",
            data={"platform": sys.platform},
        )
    return Check(
        "platform",
        FAIL,
        f"HCS unavailable: not Windows (this is {sys.platform})",
        fix="run on Windows 10 1809+ / Windows 11, or add --simulator to use the built-in "
        "HCS simulator",
        data={"platform": sys.platform},
    )


def _check_hcs(simulated: bool) -> tuple[Check, list[tuple[int, int]]]:
    if sys.platform != "win32" and not simulated:
        return (
            Check(
                "hcs",
                FAIL,
                "HCS unavailable: not Windows",
                fix="run on Windows, or add --simulator",
            ),
            [],
        )
    from hcs_sandbox.hcs import service

    try:
        versions = service.supported_schema_versions()
    except errors.HcsUnavailableError as exc:
        return Check("hcs", FAIL, f"HCS unavailable: {exc.message}", fix=exc.remedy), []
    except errors.HcsError as exc:
        return (
            Check(
                "hcs",
                FAIL,
                f"HcsGetServiceProperties failed: {exc.message}",
                fix=errors.specific_remedy(exc) or REMEDY_PLATFORM,
                data=_error_data(exc),
            ),
            [],
        )
    text = ", ".join(f"{a}.{b}" for a, b in versions) or "none"
    data = {"schema_versions": [f"{a}.{b}" for a, b in versions]}
    if not any(major == 2 for major, _ in versions):
        return (
            Check(
                "hcs",
                FAIL,
                f"HCS answers but supports no schema 2.x (supported: {text})",
                fix="update Windows to 10 1809 or later",
                data=data,
            ),
            versions,
        )
    return Check("hcs", OK, f"HCS answers; schema versions {text}", data=data), versions


def _check_admin(simulated: bool) -> Check:
    admin = is_admin()
    if admin is None:
        return Check("admin", SKIP, "not Windows: no elevation needed for the simulator")
    if admin:
        return Check("admin", OK, "running elevated (Administrators)")
    return Check(
        "admin",
        WARN,
        "not elevated: HCS calls fail with HCS_E_ACCESS_DENIED unless you are in the "
        "'Hyper-V Administrators' group, and even then the state directory cannot be "
        "used: it is made owned by Administrators and open to Administrators and SYSTEM "
        "only, the default one and one given with --state-dir alike (see the state_dir "
        "check)",
        fix=REMEDY_ELEVATE,
    )


def _check_services() -> Check:
    if sys.platform != "win32":
        return Check("services", SKIP, "not Windows: the simulator needs no services")
    states = {name: service_state(name) for name in ("vmcompute", "hns")}
    data: dict[str, Any] = dict(states)
    missing = [n for n, s in states.items() if s is None]
    stopped = [n for n, s in states.items() if s not in (None, "RUNNING")]
    if missing:
        return Check(
            "services",
            FAIL,
            f"service(s) not installed: {', '.join(missing)}",
            fix=REMEDY_PLATFORM,
            data=data,
        )
    if stopped:
        return Check(
            "services",
            WARN,
            "service(s) not running: "
            + ", ".join(f"{n} ({states[n]})" for n in stopped)
            + " (they start on demand; a disabled one blocks HCS)",
            # "; " is no command separator in cmd.exe (review RV41 #7): the commands in
            # words, one after the other, for whichever shell the admin uses.
            fix="in an elevated prompt, run: "
            + " then ".join(f"sc.exe start {n}" for n in stopped),
            data=data,
        )
    return Check("services", OK, "vmcompute and hns are running", data=data)


def _check_features(admin: bool | None) -> Check:
    if sys.platform != "win32":
        return Check("features", SKIP, "not Windows: no Windows features needed for the simulator")
    data: dict[str, Any] = {
        "computecore.dll": (_system32() / "computecore.dll").is_file(),
        "method": "dism" if admin else "files and services",
    }
    platform = bool(data["computecore.dll"]) and service_state("vmcompute") is not None
    if admin:
        states = {f: dism_feature_state(f) for f in (FEATURE_HYPERV, FEATURE_VMP, FEATURE_SANDBOX)}
        data.update(states)
        known = [s for f, s in states.items() if f != FEATURE_SANDBOX and s is not None]
        if known:
            platform = any(s.lower() == "enabled" for s in known)
    if not platform:
        return Check(
            "features",
            FAIL,
            "neither Hyper-V nor Virtual Machine Platform is enabled",
            fix=REMEDY_PLATFORM,
            data=data,
        )
    sandbox_state = data.get(FEATURE_SANDBOX)
    if isinstance(sandbox_state, str) and sandbox_state.lower() != "enabled":
        return Check(
            "features",
            WARN,
            f"Windows Sandbox ({FEATURE_SANDBOX}) is {sandbox_state}: the 'host' base is "
            "unavailable",
            fix=REMEDY_SANDBOX,
            data=data,
        )
    return Check("features", OK, "the virtualization platform is enabled", data=data)


def _check_base_image() -> Check:
    from hcs_sandbox.sandbox import storage

    try:
        base = storage.find_host_base()
    except errors.HcsUnavailableError as exc:
        return Check("base_image", SKIP, f"not checked: {exc.message}")
    except errors.StorageError as exc:
        return Check(
            "base_image",
            WARN,
            f"no 'host' base: {exc.message}",
            fix=exc.remedy or REMEDY_SANDBOX,
        )
    return Check(
        "base_image",
        OK,
        f"Windows Sandbox base image at {base.path}",
        data={"path": base.path, "os_files": base.os_files},
    )


def _check_base_build() -> Check:
    """The host base's build against this host's, with every ``<guid>`` folder's build in
    ``data``: FAIL when ``create`` refuses (every folder has another build), WARN when it
    goes on with a build it could not read or, through ``HCS_SANDBOX_IGNORE_BASE_BUILD``,
    with another build; OK when they match."""
    from hcs_sandbox.sandbox import basebuild, storage

    try:
        folders = storage.host_base_folders()
    except errors.HcsSandboxError:
        return Check("base_build", SKIP, "not checked: no 'host' base (see base_image)")
    info = basebuild.host_build_info()
    host = info.build
    builds = {
        folder: basebuild.base_build(os.path.join(folder, "BaseLayer", "Files"), st)
        for _mtime, _name, folder, st in folders
    }
    data: dict[str, Any] = {
        "host_build": host,
        "host_build_source": info.source,
        "folders": [
            {"path": folder, "build": b.build, "version": b.version, "reason": b.reason}
            for folder, b in builds.items()
        ],
        "override": basebuild.ignore_base_build(),
    }
    if info.note:
        data["host_build_note"] = info.note
    if host is None:
        why = f" ({info.note})" if info.note else ""
        return Check(
            "base_build", SKIP, f"not checked: this host's build is unknown{why}", data=data
        )
    listed = "; ".join(
        f"{folder} is build {b.build}" if b.build is not None else f"{folder}: unreadable"
        for folder, b in builds.items()
    )
    try:
        base = storage.find_host_base()
    except errors.StorageError as exc:
        return Check(
            "base_build",
            FAIL,
            f"no base image has this host's build {host} (read from {info.source}): "
            f"{listed}; 'create' with the default --base host refuses",
            fix=exc.remedy or storage.OTHER_BUILD_REMEDY,
            data=data,
        )
    found = builds[base.path]
    data.update(path=base.path, base_build=found.build, version=found.version)
    if found.build is None:
        return Check(
            "base_build",
            WARN,
            f"could not read the build of the base image at {base.path} ({found.reason}); "
            "sandboxes are still created from it",
            fix="if a sandbox does not boot, start Windows Sandbox once so Windows "
            "regenerates its base image; please report this line",
            data={**data, "reason": found.reason},
        )
    if found.build != host:  # only through HCS_SANDBOX_IGNORE_BASE_BUILD
        return Check(
            "base_build",
            WARN,
            f"the base image at {base.path} is build {found.build}, this host is build "
            f"{host} (read from {info.source}); {basebuild.ENV_IGNORE_BASE_BUILD} is set, "
            "so sandboxes are still created from it",
            fix=storage.REGENERATE_REMEDY
            + f"; if the builds truly match, report this line (then unset "
            f"{basebuild.ENV_IGNORE_BASE_BUILD})",
            data=data,
        )
    return Check("base_build", OK, f"base image build {found.build} matches this host's", data=data)


def _check_state_dir(state_dir: str | os.PathLike[str] | None) -> Check:
    """The state directory as every verb opens it (``paths.ensure_state_dir_text``: created
    if missing, protected, refused when another user owns it...), then listed: on Windows
    its DACL admits Administrators and SYSTEM only, so an unelevated process can be refused
    there even when it exists and is protected."""
    from hcs_sandbox.sandbox import paths

    where = paths.state_dir_text(state_dir)
    data: dict[str, Any] = {"state_dir": where}
    try:
        paths.ensure_state_dir_text(state_dir)
    except (errors.StoreError, errors.SpecError) as exc:  # SpecError: too long (RV42 #2)
        return Check(
            "state_dir",
            FAIL,
            exc.message,
            fix=exc.remedy,
            data=data,
        )
    too_long = paths.state_dir_length_problem(where)
    if too_long is not None:  # an existing one: create refuses every new sandbox (RV43 #2)
        return Check(
            "state_dir",
            FAIL,
            too_long + "; new sandboxes cannot be created here (existing ones can still be "
            "listed, stopped and removed)",
            fix=paths.SHORTER_STATE_DIR_REMEDY,
            data=data,
        )
    try:
        os.listdir(where)
        if sys.platform != "win32" and not os.access(where, os.R_OK | os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        # The store's own remedies for a directory it cannot open (paths._ensure_*).
        fix = (
            "run as Administrator (the state directory is readable by Administrators and "
            "SYSTEM only)"
            if sys.platform == "win32"
            else f"fix its permissions or choose another location with {paths.ENV_STATE_DIR}=PATH"
        )
        return Check(
            "state_dir",
            FAIL,
            f"the state directory {where} cannot be opened: {exc.strerror or exc}",
            fix=fix,
            data=data,
        )
    return Check("state_dir", OK, f"{where} is ready", data=data)


def _existing_parent(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")


def _check_disk(state_dir: str | os.PathLike[str] | None) -> Check:
    import shutil

    from hcs_sandbox.sandbox import paths

    where = Path(paths.state_dir(state_dir))
    probe = _existing_parent(where)
    try:
        usage = shutil.disk_usage(probe)
    except OSError as exc:
        return Check("disk", WARN, f"could not measure free space at {probe}: {exc}")
    free_gib = usage.free / 1024**3
    data = {"state_dir": str(where), "free_bytes": usage.free}
    detail = f"{free_gib:.1f} GiB free for {where}"
    if usage.free < DISK_FAIL_BYTES:
        return Check(
            "disk",
            FAIL,
            detail + " (a sandbox needs a few GiB for its scratch disk)",
            fix="free disk space, or use --state-dir on a larger volume",
            data=data,
        )
    if usage.free < DISK_WARN_BYTES:
        return Check(
            "disk",
            WARN,
            detail + " (each scratch disk may grow to 20 GiB)",
            fix="free disk space, or use --state-dir on a larger volume",
            data=data,
        )
    return Check("disk", OK, detail, data=data)


def host_checks(state_dir: str | os.PathLike[str] | None = None) -> list[Check]:
    """The host checks, in order (see the module docstring)."""
    simulated = backend_is_simulated()
    checks = [_check_platform(simulated)]
    hcs_check, _versions = _check_hcs(simulated)
    checks.append(hcs_check)
    admin = is_admin()
    checks.append(_check_admin(simulated))
    checks.append(_check_features(admin))
    checks.append(_check_services())
    if hcs_check.status != FAIL:
        checks.append(_check_base_image())
        checks.append(_check_base_build())
    else:
        checks.append(Check("base_image", SKIP, "not checked: HCS is unavailable"))
    checks.append(_check_state_dir(state_dir))
    checks.append(_check_disk(state_dir))
    return checks


def _host_info(simulated: bool) -> dict[str, Any]:
    import platform

    info: dict[str, Any] = {
        "platform": sys.platform,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "simulated": simulated,
    }
    if sys.platform == "win32":
        info["windows_build"] = int(sys.getwindowsversion().build)
    return info


# --------------------------------------------------------------------------------------
# Deep run
# --------------------------------------------------------------------------------------


def _error_data(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, errors.HcsError):
        return {
            "function": exc.function,
            "hresult": f"0x{exc.hresult:08X}",
            "hresult_name": exc.name,
            "result_error": dict(exc.result_error) if exc.result_error else None,
        }
    return {}


class _Recorder:
    """Times the steps of a deep run.

    A step is either an explicit ``with recorder.step(name)`` or the stretch between two
    messages of the library's own ``progress`` callback (:meth:`mark`), so the steps inside
    :meth:`Sandbox.create` (scratch disk, guest state file, grants, create compute system...)
    are timed exactly as a real run performs them.  The step open when an error escapes is
    the one that failed.
    """

    def __init__(self, progress: Callable[[str], None] | None) -> None:
        self.steps: list[Step] = []
        self._progress = progress
        self._open: tuple[str, float] | None = None
        #: The run got to a step where the document matters (:data:`DOCUMENT_STEPS`).
        self.reached_document = False

    def _close(self, error: BaseException | None = None, *, fix: str | None = None) -> None:
        if self._open is None:
            return
        name, start = self._open
        self._open = None
        seconds = time.perf_counter() - start
        if error is None:
            self.steps.append(Step(name=name, ok=True, seconds=seconds))
            return
        data = _error_data(error)
        if data.get("function") in DOCUMENT_CALLS:
            self.reached_document = True
        # The error itself; its remedy apart, as the fix, when it is a specific one (not
        # the generic "run 'hcs-sandbox doctor --deep'": this report is that run).
        text = error.message if isinstance(error, errors.HcsSandboxError) else str(error)
        if fix is None and isinstance(error, errors.HcsSandboxError):
            fix = errors.specific_remedy(error)
        self.steps.append(
            Step(
                name=name,
                ok=False,
                seconds=seconds,
                error=" ".join(text.split()) or type(error).__name__,
                function=data.get("function"),
                hresult=data.get("hresult"),
                hresult_name=data.get("hresult_name"),
                result_error=data.get("result_error"),
                fix=" ".join(fix.split()) if fix else None,
            )
        )

    def mark(self, name: str) -> None:
        """A new step begins (the previous one succeeded)."""
        self._close()
        if name in DOCUMENT_STEPS:
            self.reached_document = True
        if self._progress is not None:
            self._progress(name)
        self._open = (name, time.perf_counter())

    def finish(self) -> None:
        """The run ended; the open step (if any) succeeded."""
        self._close()

    def fail(self, error: BaseException) -> None:
        """The open step failed with ``error``."""
        self._close(error)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.mark(name)
        try:
            yield
        except BaseException as exc:
            self.fail(exc)
            raise
        self._close()

    def clean_up(self, action: Callable[[], None], *, fix: str) -> None:
        """The :data:`CLEAN_UP` step: run ``action``; its failure is recorded with ``fix``
        and not raised (it says nothing about the document: the variant is judged by the
        steps before).  Only an interrupt (Ctrl+C) goes on."""
        self.mark(CLEAN_UP)
        try:
            action()
        except Exception as exc:
            self._close(exc, fix=fix)
            return
        except BaseException as exc:
            self._close(exc, fix=fix)
            raise
        self._close()


DeepRunner = Callable[[str, _Recorder, "str | os.PathLike[str] | None"], None]

#: The sandbox a deep run makes: the smallest the spec allows, no network, headless,
#: ephemeral, on this host's Windows Sandbox base.
PROBE_MEMORY_MB = 1024
PROBE_CPUS = 1


def _deep_variant(
    variant: str,
    recorder: _Recorder,
    state_dir: str | os.PathLike[str] | None,
) -> None:
    """One life of a minimal sandbox with the ``variant`` host-base document, through the
    public :class:`Sandbox` API (so it exercises exactly what ``run`` does)."""
    import uuid

    from hcs_sandbox.sandbox.sandbox import Sandbox
    from hcs_sandbox.sandbox.spec import SandboxSpec

    spec = SandboxSpec(
        name=f"hcs-sandbox-doctor-{uuid.uuid4().hex[:8]}",
        memory_mb=PROBE_MEMORY_MB,
        cpus=PROBE_CPUS,
        network="none",
        display="headless",
        persistence="ephemeral",
        labels={"hcs-sandbox.doctor": variant},
    )
    sandbox: Sandbox | None = None
    previous = os.environ.get(ENV_VARIANT)
    os.environ[ENV_VARIANT] = variant
    try:
        try:
            recorder.mark("create")
            sandbox = Sandbox.create(spec, state_dir=state_dir, progress=recorder.mark)
            recorder.mark("start")
            sandbox.start(progress=recorder.mark)
            with recorder.step("query properties"):
                sandbox.inspect()
            with recorder.step("pause"):
                sandbox.pause()
            with recorder.step("resume"):
                sandbox.resume()
            with recorder.step("terminate"):
                sandbox.kill()
        except BaseException as exc:
            recorder.fail(exc)
            raise
        finally:
            if sandbox is not None:
                made = sandbox

                def remove() -> None:
                    try:
                        made.remove(force=True)
                    finally:
                        made.close()

                recorder.clean_up(remove, fix=_cleanup_fix(spec.name or "", state_dir))
    finally:
        if previous is None:
            os.environ.pop(ENV_VARIANT, None)
        else:
            os.environ[ENV_VARIANT] = previous


def _cleanup_fix(name: str, state_dir: str | os.PathLike[str] | None) -> str:
    """What to run when a deep run's clean-up failed: ``hcs-sandbox prune``, with the
    options that reach this state directory and backend.  The sandbox is left in
    ``removing`` (``Sandbox.remove`` writes that first), which prune finishes once this
    process has exited."""
    from hcs_sandbox import _simenv
    from hcs_sandbox.sandbox import paths

    words = ["hcs-sandbox", "prune"]
    if backend_is_simulated() and not _simenv.asked():
        words.append("--simulator")  # asked for in this process only (use_simulator)
    where = paths.state_dir_text(state_dir)
    if where != paths.state_dir_text(paths.default_state_dir()):
        words += ["--state-dir", f'"{where}"' if any(c.isspace() for c in where) else where]
    return (
        f"run '{' '.join(words)}' once this doctor has exited: it finishes removing the deep "
        f"run's sandbox '{name}' (left 'removing')"
    )


def _prefixed(progress: Callable[[str], None] | None, prefix: str) -> Callable[[str], None] | None:
    if progress is None:
        return None
    report = progress

    def say(step: str) -> None:
        report(f"{prefix}: {step}")

    return say


def deep_run(
    *,
    state_dir: str | os.PathLike[str] | None = None,
    variants: tuple[str, ...] = VARIANTS,
    progress: Callable[[str], None] | None = None,
    runner: DeepRunner | None = None,
) -> list[VariantResult]:
    """Try each variant in turn until one boots; the results of each tried.

    A variant is judged by the steps where its document matters (:data:`DOCUMENT_STEPS`
    on): a failure there tries the next variant.  A failure before them (the scratch disk,
    a grant...) is not the document's: the run stops there (the next variant would stop at
    the same step).  The clean-up is recorded but judges nothing (``cleanup_failed``).
    """
    run = runner or _deep_variant
    results: list[VariantResult] = []
    for variant in variants:
        recorder = _Recorder(_prefixed(progress, variant))
        ok = True
        try:
            run(variant, recorder, state_dir)
        except Exception as exc:  # every failure is reported, including bugs (the step says)
            recorder.fail(exc)
            ok = False
        else:
            recorder.finish()
        reached = ok or recorder.reached_document
        results.append(
            VariantResult(
                variant=variant,
                base="host",
                ok=ok,
                steps=recorder.steps,
                reached_document=reached,
            )
        )
        if ok or not reached:
            break
    return results


def diagnose(
    *,
    deep: bool = False,
    state_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> DoctorReport:
    """Run the host checks (and with ``deep`` the lifecycle steps); never raises for a
    problem it finds — each becomes a check with a fix."""
    from hcs_sandbox._version import __version__

    simulated = backend_is_simulated()
    if progress is not None:
        progress("host checks")
    report = DoctorReport(
        simulated=simulated,
        checks=host_checks(state_dir),
        host=_host_info(simulated),
        tool_version=__version__,
    )
    if deep:
        if report.hcs_unavailable:
            report.deep = []
        else:
            report.deep = deep_run(state_dir=state_dir, progress=progress)
    return report
