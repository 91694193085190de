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

from hcs_sandbox.errors import HcsSandboxError, StoreError
from hcs_sandbox.sandbox import store as store_module
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec

if TYPE_CHECKING:
    from conftest import Inspector


def _damage(state_dir: Path, name: str, text: str) -> None:
    conn = sqlite3.connect(state_dir / "state.db")
    try:
        conn.execute("UPDATE sandboxes SET spec = ? WHERE name = ?", (text, name))
        conn.commit()
    finally:
        conn.close()


# (Nesting too deep for the decoder, "[" * 100_000, is tried in a separate process:
# tests/cli/test_damaged_spec_cli.py; a RecursionError can upset this process's parser.)
@pytest.mark.parametrize("text", ["{oops", "null", "[1]"])
def test_start_refuses_a_damaged_spec_before_starting(
    world: Inspector, state_dir: Path, text: str
) -> None:
    made = Sandbox.create(SandboxSpec(name="dmg"))
    made.close()
    _damage(state_dir, "dmg", text)
    sandbox = Sandbox.get("dmg")
    with pytest.raises(HcsSandboxError) as caught:
        sandbox.start()
    if text == "{oops":  # not JSON: the store says so
        assert isinstance(caught.value, StoreError)
        assert "the spec of sandbox 'dmg' in the state database is damaged" in str(caught.value)
        assert caught.value.remedy == f"remove the sandbox: hcs-sandbox rm -f {made.id}"
    else:  # JSON, but not a spec: the sandbox layer refuses it
        assert "not a mapping" in str(caught.value)
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

                threading.Thread(target=read, daemon=True).start()
                code = 0 if done.wait(5) else 3
            finally:
                os._exit(code)
    finally:
        lock.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sys.platform != "win32"
