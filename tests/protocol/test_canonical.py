"""Strict parsing and canonical bytes."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.canonical import (
    MAX_SAFE_INTEGER,
    canonical_bytes,
    check_signable,
    jcs,
    loads,
    loads_object,
)
from protocol.errors import (
    DuplicateKey,
    FloatNotAllowed,
    IntegerOutOfRange,
    InvalidEncoding,
    InvalidJson,
    InvalidKeyName,
)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b'{"title": "KI-Prompting', InvalidJson),  # truncated
        (b'{"a": 1', InvalidJson),
        (b"", InvalidJson),
        (b'{"a": 1} {"b": 2}', InvalidJson),  # trailing data
        (b'{"a": NaN}', InvalidJson),
        (b'{"a": Infinity}', InvalidJson),
        (b"\xef\xbb\xbf{}", InvalidJson),  # byte order mark
        (b'{"title": "Gr\xfc\xdfe"}', InvalidEncoding),  # latin-1, not UTF-8
        (b'{"a": "\xc3"}', InvalidEncoding),  # cut multi-byte sequence
        (b'{"a": 1, "a": 2}', DuplicateKey),
        (b'{"x": {"b": 1, "b": 1}}', DuplicateKey),
        (b'{"a": 1.5}', FloatNotAllowed),
        (b'{"a": 1.0}', FloatNotAllowed),
        (b'{"a": 1e3}', FloatNotAllowed),
        (b'{"a": 9007199254740992}', IntegerOutOfRange),
        (b'{"a": -9007199254740992}', IntegerOutOfRange),
        (b'{"a": 1' + b"0" * 5000 + b"}", IntegerOutOfRange),
    ],
)
def test_loads_rejects_bad_json(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        loads(data)


def test_loads_accepts_the_integer_limits() -> None:
    assert loads(b'{"a": 9007199254740991, "b": -9007199254740991}') == {
        "a": MAX_SAFE_INTEGER,
        "b": -MAX_SAFE_INTEGER,
    }


def test_loads_object_rejects_arrays() -> None:
    with pytest.raises(InvalidJson):
        loads_object(b"[1, 2]")


def test_deep_nesting_is_a_clean_error() -> None:
    with pytest.raises(InvalidJson):
        loads(b"[" * 100_000 + b"]" * 100_000)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ({"Title": "x"}, InvalidKeyName),
        ({"start-time": "x"}, InvalidKeyName),
        ({"größe": 1}, InvalidKeyName),
        ({"a": {"camelCase": 1}}, InvalidKeyName),
        ({"_private": 1}, InvalidKeyName),
        ({"a__b": 1}, InvalidKeyName),
        ({"a": 0.5}, FloatNotAllowed),
        ({"a": [2**60]}, IntegerOutOfRange),
    ],
)
def test_check_signable_rejects(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        check_signable(value)


def test_canonical_sorts_and_compacts() -> None:
    assert canonical_bytes({"b": [1, {"z": None, "a": True}], "a": "ü"}) == (
        '{"a":"ü","b":[1,{"a":true,"z":null}]}'.encode()
    )


def test_canonical_escapes_like_rfc8785() -> None:
    # RFC 8785 §3.2.2.2: control characters as \\u00xx (lowercase) except the
    # short forms; '"' and '\\' escaped; everything else literal, '/' included.
    value = {"s": '€$\u000f\nA\'B"\\\\"/\u2028\t\b\f\r\x7f'}
    assert canonical_bytes(value) == rfc8785.dumps(value)
    assert canonical_bytes(value) == (
        b'{"s":"\xe2\x82\xac$\\u000f\\nA\'B\\"\\\\\\\\\\"/\xe2\x80\xa8\\t\\b\\f\\r\x7f"}'
    )


def test_lone_surrogate_is_refused() -> None:
    with pytest.raises(InvalidEncoding):
        canonical_bytes({"a": "\ud800"})


def test_jcs_handles_floats() -> None:
    assert jcs({"n": [1e30, 4.50, 2e-3]}) == b'{"n":[1e+30,4.5,0.002]}'


snake = st.from_regex(r"[a-z][a-z0-9]{0,6}(_[a-z0-9]{1,4}){0,2}", fullmatch=True)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(snake, children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(snake, json_values, max_size=6))
def test_fast_canonical_equals_rfc8785_on_the_profile(value: dict[str, Any]) -> None:
    check_signable(value)
    assert canonical_bytes(value) == rfc8785.dumps(value)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(snake, json_values, max_size=6))
def test_loads_round_trips_canonical_bytes(value: dict[str, Any]) -> None:
    encoded = canonical_bytes(value)
    assert loads(encoded) == value
    assert loads(json.dumps(value, indent=2)) == value


@pytest.mark.parametrize(
    "data", [b'{"a": "\\ud800"}', b'{"a": ["x", "\\udc00y"]}', b'{"\\uD83D": 1}']
)
def test_lone_surrogate_escapes_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidEncoding):
        loads(data)


def test_surrogate_pairs_are_fine() -> None:
    assert loads(b'{"a": "\\ud83c\\udf93"}') == {"a": "🎓"}
