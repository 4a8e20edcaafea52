"""Strict JSON parsing and RFC 8785 canonical bytes.

Protocol JSON is a restricted profile of JSON:

* UTF-8, one complete JSON text, no duplicate member names;
* no numbers with a fraction or exponent, and no integer outside
  ±(2^53−1) (so every JSON implementation reads the same value);
* inside signed objects, only ASCII snake_case member names.

:func:`loads` enforces the first two rules while parsing, with the C
scanner of the standard library and hooks, so the hot path stays fast.
:func:`check_signable` enforces the third.

Canonical bytes are RFC 8785 (JCS).  For values inside the profile JCS is
exactly "sorted keys, no whitespace, UTF-8, minimal escaping": the profile
has no floats (the hard part of JCS), and ASCII member names sort the same
by UTF-16 code units as by code points.  :func:`canonical_bytes` therefore
uses the standard library's encoder, which is about four times faster than
the pure-Python ``rfc8785`` package and keeps the ingest pipeline bound by
Ed25519 rather than by serialisation.  :func:`jcs` is the general RFC 8785
encoder (``rfc8785``), and the test suite proves that both agree on the
whole profile, including the string-escaping examples of the RFC.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NoReturn

import rfc8785

from protocol.errors import (
    DuplicateKey,
    FloatNotAllowed,
    IntegerOutOfRange,
    InvalidEncoding,
    InvalidJson,
    InvalidKeyName,
    MalformedError,
)

MAX_SAFE_INTEGER = 2**53 - 1
SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*\Z")
SIGNATURE_MEMBERS = frozenset({"signatures", "unsigned"})

JsonObject = dict[str, Any]


def _object_hook(pairs: list[tuple[str, Any]]) -> JsonObject:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(f"member {key!r} appears more than once", field=key)
            seen.add(key)
    return result


def _parse_int(text: str) -> int:
    # 2^53-1 has 16 digits; refuse longer text before int() spends time on it.
    if len(text) <= 17:
        value = int(text)
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return value
    raise IntegerOutOfRange(f"integer {text[:24]} lies outside ±(2^53−1)")


def _parse_float(text: str) -> NoReturn:
    raise FloatNotAllowed(f"number {text[:24]} has a fraction or exponent")


def _parse_constant(text: str) -> NoReturn:
    raise InvalidJson(f"{text} is not JSON")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_hook,
    parse_int=_parse_int,
    parse_float=_parse_float,
    parse_constant=_parse_constant,
)


def loads(data: bytes | str) -> Any:
    """Parse protocol JSON, raising a typed :class:`MalformedError`."""
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEncoding(f"body is not UTF-8 (byte {exc.start})") from None
    else:
        text = data
    try:
        value = _DECODER.decode(text)
    except MalformedError:
        raise
    except json.JSONDecodeError as exc:
        raise InvalidJson(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InvalidJson("nesting too deep") from None
    if "\\ud" in text or "\\uD" in text:
        # A \uD800-\uDFFF escape may encode a lone surrogate, which is not a
        # Unicode scalar value and has no UTF-8 form: refuse it here.
        _refuse_surrogates(value)
    return value


def _refuse_surrogates(value: Any) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidEncoding("string contains a lone surrogate") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_surrogates(key)
            _refuse_surrogates(item)
    elif isinstance(value, list):
        for item in value:
            _refuse_surrogates(item)


def loads_object(data: bytes | str) -> JsonObject:
    """Parse protocol JSON whose top level must be an object."""
    value = loads(data)
    if not isinstance(value, dict):
        raise InvalidJson("top level is not a JSON object")
    return value


def check_signable(value: Any, path: str = "") -> None:
    """Raise unless *value* lies inside the signed-object profile.

    Checks member names (ASCII snake_case), integers (±(2^53−1)), and that
    there are no floats.  Top-level ``signatures``/``unsigned`` members are
    outside the signing input and must be removed by the caller first.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not SNAKE_CASE.match(key):
                raise InvalidKeyName(f"member name {key!r} is not ASCII snake_case", field=path)
            check_signable(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_signable(item, f"{path}[{index}]")
    elif isinstance(value, bool) or value is None or isinstance(value, str):
        return
    elif isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise IntegerOutOfRange("integer lies outside ±(2^53−1)", field=path)
    elif isinstance(value, float):
        raise FloatNotAllowed("floats are not allowed in signed objects", field=path)
    else:
        raise MalformedError(f"{type(value).__name__} is not a JSON value", field=path)


def signable_part(obj: Mapping[str, Any]) -> JsonObject:
    """The members of *obj* that a signature covers."""
    return {key: value for key, value in obj.items() if key not in SIGNATURE_MEMBERS}


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 bytes of a value inside the profile (see the module docstring).

    The caller has checked the value with :func:`check_signable` or parsed it
    with :func:`loads`; a lone surrogate in a string is refused here.
    """
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidEncoding("string contains a lone surrogate") from None


def jcs(value: Any) -> bytes:
    """General RFC 8785 canonical bytes for any JSON value, floats included."""
    try:
        result: bytes = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise MalformedError(f"cannot canonicalise: {exc}") from None
    return result
