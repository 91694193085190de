"""print_json: indented for terminals and short documents; long lists to a pipe are one
compact item per line (still one valid JSON document)."""

from __future__ import annotations

import io
import json

from hcs_sandbox.cli.output import LONG_JSON_LIST, print_json


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _items(n: int) -> list[dict[str, object]]:
    return [{"name": f"s{i}", "id": str(i), "labels": {"b": "2", "a": "1"}} for i in range(n)]


def test_short_list_is_indented() -> None:
    out = io.StringIO()
    print_json(_items(3), stream=out)
    assert out.getvalue() == json.dumps(_items(3), indent=2, sort_keys=True) + "\n"


def test_long_list_to_a_pipe_is_one_item_per_line() -> None:
    items = _items(LONG_JSON_LIST + 1)
    out = io.StringIO()
    print_json(items, stream=out)
    text = out.getvalue()
    assert json.loads(text) == items
    lines = text.splitlines()
    assert lines[0] == "["
    assert lines[-1] == "]"
    assert len(lines) == len(items) + 2
    assert lines[1] == '{"id": "0", "labels": {"a": "1", "b": "2"}, "name": "s0"},'  # sorted


def test_long_list_to_a_terminal_stays_indented() -> None:
    items = _items(LONG_JSON_LIST + 1)
    out = _Tty()
    print_json(items, stream=out)
    assert out.getvalue() == json.dumps(items, indent=2, sort_keys=True) + "\n"
