"""Request signatures: the RFC 9421 profile, and every way to get it wrong."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocol.errors import (
    BadSignature,
    DigestMismatch,
    InvalidSignatureParameters,
    MalformedSignature,
    MissingSignature,
    ReplayedNonce,
    StaleSignature,
    UnknownKey,
)
from protocol.httpsig import (
    MemoryNonceStore,
    VerifiedRequest,
    content_digest,
    sign_request,
    verify_request,
)
from protocol.keys import SigningKey
from tests.protocol.conftest import NOW

URL = "https://openseats.datev.example.com/protocol/v1/inbox"
BODY = (
    b'{"type":"feed_changed","sender":"lex.example.org",'
    b'"issued_at":"2026-11-23T09:00:00Z","change":7}'
)


def _resolver(key: SigningKey) -> Callable[[str], Ed25519PublicKey]:
    def resolve(key_id: str) -> Ed25519PublicKey:
        if key_id == key.key_id:
            return key.public_key
        raise UnknownKey(f"{key_id} is not pinned")

    return resolve


def _verify(
    key: SigningKey,
    headers: list[tuple[str, str]],
    *,
    method: str = "POST",
    url: str = URL,
    body: bytes = BODY,
    now: datetime = NOW,
    store: Callable[[str, str, datetime], None] | None = None,
) -> VerifiedRequest:
    return verify_request(
        method=method,
        url=url,
        headers=headers,
        body=body,
        resolve_key=_resolver(key),
        check_replay=store or MemoryNonceStore(),
        now=now,
    )


def _sign(key: SigningKey, **kwargs: Any) -> list[tuple[str, str]]:
    params: dict[str, Any] = {"method": "POST", "url": URL, "body": BODY, "key": key, "now": NOW}
    params.update(kwargs)
    return sign_request(**params)


def _replace(headers: list[tuple[str, str]], name: str, value: str | None) -> list[tuple[str, str]]:
    result = [(n, v) for n, v in headers if n.lower() != name.lower()]
    if value is not None:
        result.append((name, value))
    return result


def _header(headers: list[tuple[str, str]], name: str) -> str:
    return next(v for n, v in headers if n.lower() == name.lower())


def test_round_trip_post(key: SigningKey) -> None:
    headers = _sign(key, nonce="n" * 22)
    verified = _verify(key, headers)
    assert verified.key_id == key.key_id
    assert verified.nonce == "n" * 22
    assert verified.expires - verified.created == timedelta(seconds=300)
    assert _header(headers, "Content-Digest") == content_digest(BODY)


def test_round_trip_get_without_body(key: SigningKey) -> None:
    url = "https://a.example.org/protocol/v1/feed?afterChangeNumber=5"
    headers = _sign(key, method="GET", url=url, body=b"")
    assert '("@method" "@target-uri" "content-digest")' in _header(headers, "Signature-Input")
    _verify(key, headers, method="GET", url=url, body=b"")


def test_header_names_are_case_insensitive(key: SigningKey) -> None:
    headers = [(name.lower(), value) for name, value in _sign(key)]
    _verify(key, headers)


# --- unsigned and malformed -----------------------------------------------


def test_unsigned_request(key: SigningKey) -> None:
    with pytest.raises(MissingSignature):
        _verify(
            key, [("Content-Type", "application/json"), ("Content-Digest", content_digest(BODY))]
        )


@pytest.mark.parametrize("header", ["Signature", "Signature-Input"])
def test_one_signature_header_missing(key: SigningKey, header: str) -> None:
    with pytest.raises(MissingSignature):
        _verify(key, _replace(_sign(key), header, None))


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Signature", "openseats=not-a-byte-sequence"),
        ("Signature", "openseats=:!!!:"),
        ("Signature-Input", "openseats=("),
        ("Signature-Input", 'openseats="@method"'),
    ],
)
def test_malformed_headers(key: SigningKey, header: str, value: str) -> None:
    with pytest.raises((MalformedSignature, InvalidSignatureParameters)):
        _verify(key, _replace(_sign(key), header, value))


def test_other_label(key: SigningKey) -> None:
    headers = _sign(key)
    headers = _replace(
        headers, "Signature", _header(headers, "Signature").replace("openseats=", "sig1=", 1)
    )
    headers = _replace(
        headers,
        "Signature-Input",
        _header(headers, "Signature-Input").replace("openseats=", "sig1=", 1),
    )
    with pytest.raises(InvalidSignatureParameters):
        _verify(key, headers)


def test_two_signatures(key: SigningKey, other_key: SigningKey) -> None:
    first, second = _sign(key), _sign(other_key)
    headers = _replace(
        first,
        "Signature",
        _header(first, "Signature")
        + ", "
        + _header(second, "Signature").replace("openseats=", "second="),
    )
    headers = _replace(
        headers,
        "Signature-Input",
        _header(first, "Signature-Input")
        + ", "
        + _header(second, "Signature-Input").replace("openseats=", "second="),
    )
    with pytest.raises(InvalidSignatureParameters):
        _verify(key, headers)


# --- profile parameters ---------------------------------------------------


def _with_input(key: SigningKey, edit: Callable[[str], str]) -> list[tuple[str, str]]:
    headers = _sign(key)
    return _replace(headers, "Signature-Input", edit(_header(headers, "Signature-Input")))


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda s: s.replace('tag="openseats"', 'tag="other"'), id="wrong-tag"),
        pytest.param(lambda s: s.replace(';tag="openseats"', ""), id="no-tag"),
        pytest.param(lambda s: s.replace('alg="ed25519"', 'alg="rsa-pss-sha512"'), id="wrong-alg"),
        pytest.param(lambda s: s.replace(';alg="ed25519"', ""), id="no-alg"),
        pytest.param(lambda s: s.replace(";nonce=", ";extra=1;nonce="), id="unknown-param"),
        pytest.param(lambda s: s.split(";nonce=")[0] + ';tag="openseats"', id="no-nonce"),
        pytest.param(lambda s: s.replace(';nonce="', ';nonce="x";old="'), id="short-nonce"),
        pytest.param(
            lambda s: s.replace('"content-type" "content-digest"', '"content-type"'),
            id="digest-not-covered",
        ),
        pytest.param(
            lambda s: s.replace('"@method" "@target-uri"', '"@target-uri" "@method"'),
            id="reordered-components",
        ),
        pytest.param(
            lambda s: s.replace('"@target-uri"', '"@path"'), id="path-instead-of-target-uri"
        ),
        pytest.param(
            lambda s: s.replace('"content-digest")', '"content-digest" "date")'),
            id="extra-component",
        ),
    ],
)
def test_profile_violations(key: SigningKey, edit: Callable[[str], str]) -> None:
    with pytest.raises(InvalidSignatureParameters):
        _verify(key, _with_input(key, edit))


def test_window_longer_than_300_seconds(key: SigningKey) -> None:
    created = int(NOW.timestamp())
    headers = _with_input(
        key, lambda s: s.replace(f"expires={created + 300}", f"expires={created + 301}")
    )
    with pytest.raises(InvalidSignatureParameters):
        _verify(key, headers)


def test_sign_refuses_a_long_window(key: SigningKey) -> None:
    with pytest.raises(ValueError, match="window"):
        _sign(key, window=301)


# --- time -----------------------------------------------------------------


def test_stale_created(key: SigningKey) -> None:
    headers = _sign(key, now=NOW - timedelta(minutes=10), window=300)
    with pytest.raises(StaleSignature):
        _verify(key, headers)


def test_expired_window(key: SigningKey) -> None:
    headers = _sign(key, now=NOW - timedelta(seconds=120), window=60)
    with pytest.raises(StaleSignature):
        _verify(key, headers)


def test_created_in_the_future(key: SigningKey) -> None:
    headers = _sign(key, now=NOW + timedelta(minutes=5))
    with pytest.raises(StaleSignature):
        _verify(key, headers)


def test_small_clock_skew_is_tolerated(key: SigningKey) -> None:
    _verify(key, _sign(key, now=NOW + timedelta(seconds=20)))


# --- digest and tampering -------------------------------------------------


def test_body_does_not_match_digest(key: SigningKey) -> None:
    with pytest.raises(DigestMismatch):
        _verify(key, _sign(key), body=BODY.replace(b"7", b"8"))


def test_digest_header_missing(key: SigningKey) -> None:
    with pytest.raises(DigestMismatch):
        _verify(key, _replace(_sign(key), "Content-Digest", None))


def test_digest_header_replaced_to_match_a_new_body(key: SigningKey) -> None:
    body = BODY.replace(b"7", b"8")
    headers = _replace(_sign(key), "Content-Digest", content_digest(body))
    with pytest.raises(BadSignature):
        _verify(key, headers, body=body)


def test_digest_with_unknown_algorithm_only(key: SigningKey) -> None:
    headers = _replace(_sign(key), "Content-Digest", "md5=:AAAA:")
    with pytest.raises(DigestMismatch):
        _verify(key, headers)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("PUT", URL),
        ("POST", URL.replace("/inbox", "/feed")),
        ("POST", URL + "?x=1"),
        ("POST", URL.replace("datev", "kiwi")),
        ("POST", URL.replace("https", "http")),
    ],
)
def test_tampered_method_or_target(key: SigningKey, method: str, url: str) -> None:
    with pytest.raises(BadSignature):
        _verify(key, _sign(key), method=method, url=url)


def test_tampered_content_type(key: SigningKey) -> None:
    headers = _replace(_sign(key), "Content-Type", "text/plain")
    with pytest.raises(BadSignature):
        _verify(key, headers)


def test_tampered_nonce(key: SigningKey) -> None:
    headers = _with_input(key, lambda s: s.replace('nonce="', 'nonce="AAAA', 1))
    with pytest.raises(BadSignature):
        _verify(key, headers)


# --- keys and replay ------------------------------------------------------


def test_unknown_key(key: SigningKey, other_key: SigningKey) -> None:
    with pytest.raises(UnknownKey):
        _verify(key, _sign(other_key))


def test_replayed_nonce(key: SigningKey) -> None:
    store = MemoryNonceStore()
    headers = _sign(key)
    _verify(key, headers, store=store)
    with pytest.raises(ReplayedNonce):
        _verify(key, headers, store=store)


def test_replay_check_sees_only_verified_requests(key: SigningKey, other_key: SigningKey) -> None:
    seen: list[tuple[str, str]] = []

    def record(key_id: str, nonce: str, expires: datetime) -> None:
        seen.append((key_id, nonce))

    with pytest.raises(BadSignature):
        _verify(key, _sign(key), method="PUT", store=record)
    with pytest.raises(UnknownKey):
        _verify(key, _sign(other_key), store=record)
    assert seen == []
    _verify(key, _sign(key, nonce="abcdefghijklmnopqrst"), store=record)
    assert seen == [(key.key_id, "abcdefghijklmnopqrst")]
