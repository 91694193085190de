"""Review RV16 findings 3, 10 and 12: the Python samples of docs/api.md and docs/wsb.md run as
written; what they promise about specs, states and the .wsb round trip holds."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hcs_sandbox
from hcs_sandbox import Sandbox, SandboxSpec, errors
from hcs_sandbox.sandbox.store import STATES
from hcs_sandbox.sandbox.wsb import WsbError, parse_wsb, read_wsb, to_wsb

ROOT = Path(__file__).resolve().parents[1]
HELLO = ROOT / "examples" / "hello.wsb"


def _python_samples(page: str) -> str:
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    assert blocks, page
    return "\n".join(blocks)


def _run(code: str, cwd: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HCS_SANDBOX_")}
    env["HCS_SANDBOX_SIMULATOR"] = str(tmp_path / "sim")
    env["HCS_SANDBOX_STATE_DIR"] = str(tmp_path / "state")
    (tmp_path / "sim").mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("page", ["api.md", "wsb.md"])
def test_every_python_sample_of_the_page_runs(page: str, tmp_path: Path) -> None:
    """The samples of a page build on each other (the first imports): one process runs them
    in order.  wsb.md reads "box.wsb": examples/hello.wsb is copied there."""
    cwd = ROOT
    if page == "wsb.md":
        cwd = tmp_path / "work"
        cwd.mkdir()
        shutil.copy(HELLO, cwd / "box.wsb")
    done = _run(_python_samples(page), cwd, tmp_path)
    assert done.returncode == 0, done.stderr


def test_api_md_reads_a_wsb_as_a_spec() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert "read_wsb(path).spec" in text
    assert "read_wsb(path)`" not in text  # the old wording, which gave a WsbResult


def test_api_md_lists_every_state() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `state` |"))
    listed = re.findall(r"`([a-z]+)`", row.split("(", 1)[0])[1:]  # [0] is `state` itself
    assert tuple(listed) == STATES


# -- finding 3: create/run take a SandboxSpec, and say so --------------------------------------


def test_create_and_run_refuse_a_wsb_result_with_a_hint(tmp_path: Path) -> None:
    result = hcs_sandbox.read_wsb(HELLO)
    with pytest.raises(errors.SpecError) as info:
        Sandbox.create(result, state_dir=tmp_path)  # type: ignore[arg-type]
    assert str(info.value) == (
        "Sandbox.create needs a SandboxSpec, not a WsbResult "
        "(pass its .spec: Sandbox.create(read_wsb(path).spec))"
    )
    assert info.value.field == "spec"
    assert info.value.value is result
    refused = pytest.raises(errors.SpecError, match=r"^Sandbox\.run needs a SandboxSpec, not a Wsb")
    with refused, Sandbox.run(result, state_dir=tmp_path):  # type: ignore[arg-type]
        pass
    assert not (tmp_path / "sandboxes").exists() or not os.listdir(tmp_path / "sandboxes")
    with Sandbox.run(result.spec, state_dir=tmp_path) as sb:  # what the hint says works
        assert sb.state == "running"


@pytest.mark.parametrize("value", [None, {"memory_mb": 2048}, "web"])
def test_create_refuses_anything_else_naming_it(value: object, tmp_path: Path) -> None:
    with pytest.raises(errors.SpecError) as info:
        Sandbox.create(value, state_dir=tmp_path)  # type: ignore[arg-type]
    assert str(info.value).startswith(
        f"Sandbox.create needs a SandboxSpec, not a {type(value).__name__} ({value!r})"
    )
    assert "SandboxSpec(" in str(info.value.remedy)


# -- finding 12: to_wsb's text reads back with parse_wsb ---------------------------------------


def test_parse_wsb_reads_the_text_to_wsb_writes() -> None:
    first = read_wsb(HELLO).spec
    text = to_wsb(first)
    assert parse_wsb(text).spec == first
    assert parse_wsb("\ufeff" + text).spec == first  # text read with a BOM kept
    assert parse_wsb(text, source_path="t.wsb").spec == parse_wsb(text.encode()).spec


def test_parse_wsb_text_is_checked_as_bytes_are() -> None:
    with pytest.raises(WsbError, match=r"^t\.wsb:2: the text is not valid Unicode") as info:
        parse_wsb("<Configuration>\n\udc80</Configuration>", source_path="t.wsb")
    assert info.value.remedy
    with pytest.raises(WsbError, match="must be bytes or str, not int"):
        parse_wsb(42)  # type: ignore[arg-type]
    big = "<Configuration>" + " " * (1 << 20) + "</Configuration>"
    with pytest.raises(WsbError, match="more than the"):
        parse_wsb(big)
    # The declaration's encoding is not believed for text (it was decoded already).
    declared = '<?xml version="1.0" encoding="utf-16"?><Configuration/>'
    assert parse_wsb(declared).spec == parse_wsb(b"<Configuration/>").spec
    assert SandboxSpec  # the spec type every result holds
