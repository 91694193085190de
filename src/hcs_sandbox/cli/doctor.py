"""``hcs-sandbox doctor [--deep] [--report FILE] [--json]``: can this host run sandboxes?

Checks the Windows build, HCS and its schema versions, the Hyper-V / Virtual Machine
Platform / Windows Sandbox features, elevation, the vmcompute and hns services, the base
image and free disk space, and prints a fix for each problem.  ``--deep`` also runs one
sandbox's whole life (disk, create, start, properties, pause, resume, terminate, clean up),
timing each step and naming the HCS call and HRESULT that failed; for the host base it tries
each document variant and reports which one boots (``create``/``run`` then prefer it).
``--report FILE`` saves the report as JSON (the path is checked before the run: exit 2; a
late failure prints the report first).  See docs/field-kit.md.

Exit codes: 0 all good (warnings allowed); 1 a check or a deep step failed (the deep run's
clean-up too: its fix says to run prune); 2 a bad --report path; 3 HCS unavailable
(not Windows without --simulator, features or service missing).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

_MARKS = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


def register(subparsers: Any) -> argparse.ArgumentParser:
    from hcs_sandbox.cli.common import add_common

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "doctor",
        help="check that this host can run sandboxes, with a fix for each problem",
        description="Check that this host can run sandboxes; print a fix for each problem.",
    )
    parser.add_argument(
        "--deep",
        action="store_true",
        help="also create, start, pause, resume and terminate a minimal sandbox once, timing "
        "each HCS step (needs what a real run needs: admin, features)",
    )
    parser.add_argument(
        "--report",
        metavar="FILE",
        help="save the report as JSON to FILE (a --deep report also teaches the planner which "
        "document variant boots on this host)",
    )
    add_common(parser, json_help="print the report as JSON")
    parser.set_defaults(handler=handle)
    return parser


def render(report: Any) -> str:
    """The human form of a DoctorReport."""
    lines = []
    for check in report.checks:
        lines.append(f"[{_MARKS.get(check.status, check.status)}] {check.name}: {check.detail}")
        if check.fix and check.status in {"warn", "fail"}:
            lines.append(f"       fix: {check.fix}")
    if report.deep is not None:
        lines.append("")
        if not report.deep:
            lines.append("deep run: skipped (HCS is unavailable)")
        width = max((len(s.name) for r in report.deep for s in r.steps), default=10)
        for result in report.deep:
            lines.append(
                f"deep run, {result.base} base, variant {result.variant}: {_verdict(result)}"
            )
            for step in result.steps:
                mark = "ok  " if step.ok else "FAIL"
                lines.append(f"  [{mark}] {step.name:<{width}} {step.seconds * 1000:9.1f} ms")
                if not step.ok:
                    where = step.function or "(not an HCS call)"
                    code = f"{step.hresult_name or ''} {step.hresult or ''}".strip()
                    lines.append(f"         call: {where}  HRESULT: {code or '-'}")
                    if step.result_error:
                        lines.append(f"         ResultError: {step.result_error}")
                    lines.append(f"         error: {step.error}")
                    if step.fix:
                        lines.append(f"         fix: {step.fix}")
        if report.deep:
            working = report.working_variant
            if working:
                lines.append(f"working variant: {working}")
            elif not any(r.reached_document for r in report.deep):
                lines.append(
                    "no document variant was tried: the run stopped before the compute system "
                    "was created"
                )
            else:
                lines.append("no document variant booted on this host")
    lines.append("")
    lines.append(summary(report))
    return "\n".join(lines)


def _verdict(result: Any) -> str:
    if result.ok:
        return "boots, but its clean-up failed" if result.cleanup_failed else "boots"
    verdict = "FAILED"
    if not result.reached_document:
        verdict += (
            " before the compute system was created (a step that does not depend on the "
            "document: no other variant was tried)"
        )
    if result.cleanup_failed:
        verdict += "; its clean-up failed too"
    return verdict


def summary(report: Any) -> str:
    """The last line: ``all good``, or what is wrong, pointing at the fixes above only when
    some were printed."""
    if report.ok:
        return "all good"
    problems: list[str] = []
    failed = [c.name for c in report.checks if c.status == "fail"]
    if failed:
        problems.append(f"check{'s' if len(failed) > 1 else ''} failed: {', '.join(failed)}")
    deep = report.deep or []
    if deep and report.working_variant is None:
        problems.append(
            "no document variant booted"
            if any(r.reached_document for r in deep)
            else "the deep run stopped before the compute system was created"
        )
    for result in deep:
        if result.cleanup_failed:
            problems.append(
                f"variant {result.variant} booted, but its clean-up failed"
                if result.ok
                else f"the clean-up after variant {result.variant} failed"
            )
    fixes = any(c.fix and c.status in {"warn", "fail"} for c in report.checks) or any(
        s.fix for r in deep for s in r.steps if not s.ok
    )
    text = "problems found: " + ("; ".join(problems) or "see above")
    if fixes:
        return text + "; see the fixes above"
    return text + " (no fix is known: the failed step above names the HCS call and HRESULT)"


def handle(args: argparse.Namespace) -> int:
    from hcs_sandbox.cli.output import Progress, notice_if_simulated, print_json, write_text
    from hcs_sandbox.sandbox import doctor

    if args.report is not None:
        # A bad path is refused before the run (a deep run boots VMs), not after it.
        doctor.check_report_path(args.report)
    progress = Progress()
    with progress.running():
        report = doctor.diagnose(deep=args.deep, progress=progress)
    if args.deep and report.deep:
        # Where create/run look for the working variant (doctor.preferred_variant).
        target = doctor.default_report_path()
        try:
            doctor.save_report(report, target)
        except Exception as exc:  # the report still printed; the hint is best effort
            import os

            from hcs_sandbox import errors
            from hcs_sandbox.cli.output import warn

            why = exc.message if isinstance(exc, errors.HcsSandboxError) else str(exc)
            if os.environ.get(doctor.ENV_DOCTOR_REPORT, "").strip():
                fix = f"set {doctor.ENV_DOCTOR_REPORT} to a regular file you can write"
            else:
                fix = f"make {target} a regular file you can write, or remove it"
            warn(f"the report create and run read was not updated: {why} ({fix})")
    if args.json:
        print_json(report.to_dict())
    else:
        write_text(sys.stdout, render(report) + "\n")  # a host path: see output.write_text
    notice_if_simulated(report.simulated)
    if args.report is not None:
        # Still failing (the folder changed meanwhile, a full disk...): the report was
        # printed and the state directory's copy kept; then the one-line error (exit 1).
        doctor.save_report(report, args.report)
    if report.hcs_unavailable:
        return 3
    return 0 if report.ok else 1
