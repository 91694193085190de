"""A record whose stored spec is damaged (edited by hand, a damaged database): refused
with one StoreError and its remedy before anything is done (review RV49 F1), and the
lock its first decoding takes is not inherited across fork() (RV49 F2)."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hcs_sandbox.errors import StoreError
from hcs_sandbox.sandbox import store as store_module
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec

if TYPE_CHECKING:
    from conftest import Inspector


def _damage(state_dir: Path, name: str, text: str | bytes) -> None:
    conn = sqlite3.connect(state_dir / "state.db")
    try:
        conn.execute("UPDATE sandboxes SET spec = ? WHERE name = ?", (text, name))
        conn.commit()
    finally:
        conn.close()


# (Nesting too deep for the decoder, "[" * 100_000, is tried in a separate process:
# tests/cli/test_damaged_spec_cli.py; a RecursionError can upset this process's parser.)
@pytest.mark.parametrize(
    ("stored", "why"),
    [
        ("{oops", "is damaged"),  # not JSON
        (b"{}", "is damaged"),  # not text (a BLOB: review RV50 F5)
        ("null", "is not valid"),  # JSON, not a spec (RV50 F1)
        ("[1]", "is not valid"),
        ('{"memory_mb": "lots"}', "is not valid"),
    ],
)
def test_start_refuses_a_damaged_spec_before_starting(
    world: Inspector, state_dir: Path, stored: str | bytes, why: str
) -> None:
    made = Sandbox.create(SandboxSpec(name="dmg"))
    made.close()
    _damage(state_dir, "dmg", stored)
    sandbox = Sandbox.get("dmg")
    with pytest.raises(StoreError) as caught:
        sandbox.start()
    assert f"the spec of sandbox 'dmg' in the state database {why}" in str(caught.value)
    assert caught.value.remedy == f"remove the sandbox: hcs-sandbox rm -f {made.id}"
    assert Sandbox.get("dmg").state == "created"  # nothing was started
    assert world.systems()[0]["State"] != "Running"
    sandbox.remove(force=True)
    world.assert_nothing_left()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() only")
def test_a_child_forked_while_a_spec_was_decoded_can_read_specs(state_dir: Path) -> None:
    store = store_module.open_store(state_dir)
    made = store.reserve("forked", None, {"memory_mb": 4096})
    lock = store_module._spec_lock()
    lock.acquire()  # another thread of this process is decoding a spec at the fork
    try:
        pid = os.fork()
        if pid == 0:  # the child: must not wait for the parent's lock
            code = 1
            try:
                import threading

                done = threading.Event()

                def read() -> None:
                    if store_module.open_store(state_dir).get(made.id).spec:
                        done.set()

                # A new lock, made before any thread of the child ran (RV50 F2: two
                # threads making one each could decode twice).
                assert store_module._spec_decoding is not lock
                assert not store_module._spec_decoding.locked()

                threading.Thread(target=read, daemon=True).start()
                code = 0 if done.wait(5) else 3
            finally:
                os._exit(code)
    finally:
        lock.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sys.platform != "win32"


@pytest.mark.parametrize(
    ("stored", "why"),
    [("null", "not a valid spec ("), ("[1]", "not a valid spec ("), ("{oops", "not JSON (")],
)
def test_inspect_of_a_damaged_spec_shows_the_rest_and_names_the_spec(
    world: Inspector, state_dir: Path, stored: str, why: str
) -> None:
    """inspect shows what can be read of a record whose spec is damaged, the spec as None
    and ``damaged`` naming it (sandbox/damage.py; it was one StoreError, review RV51 F1:
    a JSON value that is not an object was a TypeError from ``dict()``); the record itself
    still converts for ``--json``."""
    made = Sandbox.create(SandboxSpec(name="dmg"))
    made.close()
    _damage(state_dir, "dmg", stored)
    sandbox = Sandbox.get("dmg")
    info = sandbox.inspect()
    assert info["spec"] is None
    assert list(info["damaged"]) == ["spec"]
    assert info["damaged"]["spec"].startswith(why)
    assert (info["name"], info["id"], info["state"]) == ("dmg", made.id, "created")
    assert info["files"] == list(made.record.files)
    assert info["mappings"] is None
    assert info["ports"] is None
    if stored != "{oops":
        assert sandbox.record.to_dict()["spec"] in (None, [1])
    sandbox.remove(force=True)
    world.assert_nothing_left()
