"""``_call.wbuf``: a ``PCWSTR`` input that owns its wide-string copy (round 8: a
``c_wchar_p``, not ``create_unicode_buffer``)."""

from __future__ import annotations

import ctypes
import gc

from hcs_sandbox.hcs._call import wbuf


def test_none_stays_null() -> None:
    assert wbuf(None) is None


def test_text_round_trips_and_outlives_its_source() -> None:
    text = "".join(['{"Owner":"h\u00e9\u20ac \U0001f600",', '"x":"' + "y" * 5000 + '"}'])
    buf = wbuf(text)
    assert isinstance(buf, ctypes.c_wchar_p)
    address = ctypes.cast(buf, ctypes.c_void_p).value
    expected = str(text)
    del text
    gc.collect()
    assert buf.value == expected
    assert ctypes.wstring_at(address) == expected  # the buffer the native call reads


def test_passes_as_a_pcwstr_argument() -> None:
    """What a prototype with a ``c_wchar_p`` argument receives from it."""
    seen: list[str | None] = []
    proto = ctypes.CFUNCTYPE(None, ctypes.c_wchar_p)
    callback = proto(seen.append)
    callback(wbuf("abc \U0001f600"))
    assert seen == ["abc \U0001f600"]


def test_dumps_is_json_dumps_compact() -> None:
    """``dumps`` (one shared encoder since round 8) == ``json.dumps(.., separators=(",", ":"))``."""
    import json
    from collections import OrderedDict

    from hcs_sandbox.hcs._call import dumps

    documents = [
        {},
        {"SchemaVersion": {"Major": 2, "Minor": 1}, "Owner": "h\u00e9 \U0001f600"},
        OrderedDict([("b", [1, 2.5, None, True]), ("a", {"x": float("inf")})]),
        {"nested": [{"k": "v"}] * 3, 1: "int key"},
    ]
    for document in documents:
        assert dumps(document) == json.dumps(document, separators=(",", ":"))
        assert dumps(document) == dumps(document)  # no state kept between calls
    assert dumps(None) is None
    assert dumps('{"already": "json"}') == '{"already": "json"}'
