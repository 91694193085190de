"""The store's spec reader accepts exactly what sqlite's ``json_valid`` accepts, so that a
record's spec and the listing (which asks sqlite) agree on a value edited by hand."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hcs_sandbox.sandbox.store import _loads_spec as _loads

_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
# What a hand edit may put around a value or in place of it: JSON whitespace, other
# whitespace, junk, a second value, the constants JSON has not.
_EDGES = st.lists(
    st.sampled_from([" ", "\t", "\n", "\r", "\x0b", "\x0c", "\u00a0", "x", "{}", "1", ",", "NaN"]),
    max_size=3,
).map("".join)


@pytest.fixture(scope="module")
def sqlite() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("SELECT json_valid('{}')")
    except sqlite3.OperationalError:  # a sqlite built without its JSON functions
        pytest.skip("this sqlite has no json_valid")
    yield conn
    conn.close()


def _agree(conn: sqlite3.Connection, text: str) -> None:
    (valid,) = conn.execute("SELECT json_valid(?)", (text,)).fetchone()
    try:
        value: Any = _loads(text)
    except (ValueError, RecursionError):
        assert not valid, f"sqlite calls {text!r} JSON; the store refuses it"
    else:
        assert valid, f"the store reads {text!r}; sqlite calls it not JSON"
        assert value == json.loads(text)


@settings(max_examples=400, deadline=None)
@given(value=_JSON_VALUES, before=_EDGES, after=_EDGES)
def test_the_reader_agrees_with_json_valid(
    sqlite: sqlite3.Connection, value: Any, before: str, after: str
) -> None:
    _agree(sqlite, before + json.dumps(value, separators=(",", ":")) + after)


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet='{}[]",:0123456789.eE+-aeflnrstu \t\n\r\\NIfinity', max_size=14))
def test_the_reader_agrees_with_json_valid_on_any_text(
    sqlite: sqlite3.Connection, text: str
) -> None:
    _agree(sqlite, text)
