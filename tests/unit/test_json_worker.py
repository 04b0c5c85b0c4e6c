"""Compact JSON of request bodies and skill outputs (api/json_worker.py): the orjson fast path gives
the bytes and error texts `json` gives, on the cases where the two libraries differ."""

from __future__ import annotations

import pytest

from skill_engine.api.json_worker import compact


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b' {"a" : [1, 2.5e-7, true, null]} ', b'{"a":[1,2.5e-07,true,null]}'),
        (b"1e16", b"1e+16"),  # json's float format, not orjson's "1e16"
        (b"123456789012345678901234567890", b"123456789012345678901234567890"),  # no float
        (b"-9223372036854775809", b"-9223372036854775809"),
        (b'{"a":1,"a":2}', b'{"a":2}'),
        (b'"\\u00e9\\u0001\\/"', '"é\\u0001/"'.encode()),
        (b"\xef\xbb\xbf{}", b"{}"),  # a UTF-8 byte order mark, which orjson refuses
    ],
)
def test_the_same_bytes_as_json(raw: bytes, expected: bytes) -> None:
    assert compact(raw, strict=True) == expected


def test_refusals_keep_the_texts_of_json() -> None:
    assert compact(b'{"a":', strict=True) == ("syntax", "Expecting value at line 1 column 6")
    assert compact(b"[NaN]", strict=True) == ("constant", "NaN is not valid JSON")
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        compact(b"[NaN]")  # an output: parsed, then refused by the writer (the caller's error)
    refused = compact(b'"\xff"', strict=True)
    assert isinstance(refused, tuple)
    assert refused[0] == "unicode"
