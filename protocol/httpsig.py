"""Request signatures: the OpenSeats profile of RFC 9421 with RFC 9530 digests.

Every node-to-node request except ``GET /.well-known/openseats`` carries
one signature labelled ``openseats``.  The profile (SPEC.md §4) fixes:

* algorithm ``ed25519``, ``keyid`` = the signer's key id;
* covered components, in this order: ``"@method" "@target-uri"
  "content-type" "content-digest"`` when the request has a body, and
  ``"@method" "@target-uri" "content-digest"`` when it has none;
* ``Content-Digest`` with ``sha-256`` (``sha-512`` is accepted);
* parameters ``created``, ``expires`` (``0 < expires - created <= 300``),
  ``nonce`` (16 to 64 characters of base64url) and ``tag="openseats"``.

The signature base and the crypto are done by the ``http-message-signatures``
library, which implements RFC 9421 fully; this module adds the profile on
top: it parses the headers itself so every violation gets its own typed
error, checks the time window against an injected clock, and hands the
nonce to a replay check only after the signature has verified (so that
unsigned junk cannot fill the nonce store).

The steps are exposed separately (:func:`parse_signature`,
:meth:`ParsedSignature.check_window`, :func:`check_digest`,
:func:`check_signature`) so an async server can look keys up and store
nonces in its database between them; :func:`verify_request` composes them
for synchronous callers.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import http_sf
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    algorithms,
)

from protocol.errors import (
    BadSignature,
    DigestMismatch,
    InvalidSignatureParameters,
    MalformedSignature,
    MissingSignature,
    ReplayedNonce,
    StaleSignature,
)
from protocol.keys import SigningKey

LABEL = "openseats"
TAG = "openseats"
ALGORITHM = "ed25519"
MAX_WINDOW_SECONDS = 300
CLOCK_SKEW_SECONDS = 30
BODY_COMPONENTS = ("@method", "@target-uri", "content-type", "content-digest")
NO_BODY_COMPONENTS = ("@method", "@target-uri", "content-digest")
_PARAMS = frozenset({"alg", "keyid", "created", "expires", "nonce", "tag"})
_DIGESTS = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}


class Headers:
    """Ordered, case-insensitive header field lines, as the library expects."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._pairs = [(str(name), str(value)) for name, value in pairs]

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name for name, _ in self._pairs))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n.lower() == name.lower() for n, _ in self._pairs)

    def __setitem__(self, name: str, value: str) -> None:
        del self[name]
        self._pairs.append((name, value))

    def __delitem__(self, name: str) -> None:
        self._pairs = [(n, v) for n, v in self._pairs if n.lower() != name.lower()]

    def get_all(self, name: str) -> list[str]:
        return [v for n, v in self._pairs if n.lower() == name.lower()]


@dataclass
class Message:
    """A request as RFC 9421 sees it: method, absolute URL, header fields."""

    method: str
    url: str
    headers: Headers = field(default_factory=Headers)


class _FixedKey(HTTPSignatureKeyResolver):
    def __init__(self, public: Ed25519PublicKey | None = None, private: Any = None) -> None:
        self._public = public
        self._private = private

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey | None:
        return self._public

    def resolve_private_key(self, key_id: str) -> Any:
        return self._private


class _ProfileVerifier(HTTPMessageVerifier):
    """The library verifier without its wall-clock check: we use an injected clock."""

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        return None


def content_digest(body: bytes) -> str:
    """The ``Content-Digest`` value for *body* (sha-256)."""
    return str(http_sf.ser({"sha-256": (hashlib.sha256(body).digest(), {})}))


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def components_for(body: bytes) -> tuple[str, ...]:
    return BODY_COMPONENTS if body else NO_BODY_COMPONENTS


def sign_request(
    *,
    method: str,
    url: str,
    body: bytes,
    key: SigningKey,
    now: datetime,
    content_type: str = "application/json",
    nonce: str | None = None,
    window: int = MAX_WINDOW_SECONDS,
) -> list[tuple[str, str]]:
    """Return the header fields to send with this request.

    They are ``Content-Type`` (when there is a body), ``Content-Digest``,
    ``Signature-Input`` and ``Signature``.
    """
    if not 0 < window <= MAX_WINDOW_SECONDS:
        raise ValueError(f"window must be 1..{MAX_WINDOW_SECONDS} seconds")
    message = Message(method.upper(), url)
    if body:
        message.headers["Content-Type"] = content_type
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519, key_resolver=_FixedKey(private=key.private_key)
    )
    signer.sign(
        message,
        key_id=key.key_id,
        created=now,
        expires=now + timedelta(seconds=window),
        nonce=nonce or new_nonce(),
        label=LABEL,
        tag=TAG,
        covered_component_ids=components_for(body),
        body=body,
    )
    return message.headers.items()


@dataclass(frozen=True)
class ParsedSignature:
    """The profile-checked parameters of a request signature."""

    key_id: str
    nonce: str
    created: datetime
    expires: datetime
    components: tuple[str, ...]

    def check_window(self, now: datetime) -> None:
        skew = timedelta(seconds=CLOCK_SKEW_SECONDS)
        if self.created > now + skew:
            raise StaleSignature("signature created in the future")
        if self.expires < now - skew:
            raise StaleSignature("signature expired")
        if now - self.created > timedelta(seconds=MAX_WINDOW_SECONDS) + skew:
            raise StaleSignature(f"signature older than {MAX_WINDOW_SECONDS} s")


def _single(headers: Headers, name: str) -> str:
    values = headers.get_all(name)
    if not values:
        raise MissingSignature(f"{name} header is missing")
    return ", ".join(values)


def _sf_parse(text: str) -> Any:
    """Parse a structured-field dictionary (typed loosely: http_sf's union is wide)."""
    return http_sf.parse(text.encode("latin-1"), tltype="dictionary")


def _parse_dictionary(headers: Headers, name: str) -> dict[str, Any]:
    try:
        parsed = _sf_parse(_single(headers, name))
    except (ValueError, UnicodeEncodeError):
        raise MalformedSignature(f"{name} is not a structured-field dictionary") from None
    if not isinstance(parsed, dict):
        raise MalformedSignature(f"{name} is not a structured-field dictionary")
    return parsed


def _int_param(params: dict[str, Any], name: str) -> int:
    value = params.get(name)
    if type(value) is not int:
        raise InvalidSignatureParameters(f"signature parameter {name!r} must be an integer")
    return value


def _str_param(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str):
        raise InvalidSignatureParameters(f"signature parameter {name!r} must be a string")
    return value


def parse_signature(headers: Headers, *, has_body: bool) -> ParsedSignature:
    """Check the signature headers against the profile; nothing is verified yet."""
    inputs = _parse_dictionary(headers, "Signature-Input")
    signatures = _parse_dictionary(headers, "Signature")
    if set(inputs) != {LABEL} or set(signatures) != {LABEL}:
        raise InvalidSignatureParameters(f"exactly one signature labelled {LABEL!r} is expected")
    members, params = inputs[LABEL]
    signature_value, _ = signatures[LABEL]
    if not isinstance(members, list) or not isinstance(signature_value, bytes):
        raise MalformedSignature("Signature-Input must be an inner list, Signature a byte sequence")
    if unknown := set(params) - _PARAMS:
        raise InvalidSignatureParameters(f"unknown signature parameters {sorted(unknown)}")
    if _str_param(params, "alg") != ALGORITHM:
        raise InvalidSignatureParameters(f"alg must be {ALGORITHM!r}")
    if _str_param(params, "tag") != TAG:
        raise InvalidSignatureParameters(f"tag must be {TAG!r}")
    nonce = _str_param(params, "nonce")
    if not 16 <= len(nonce) <= 64 or not all(c.isalnum() or c in "-_" for c in nonce):
        raise InvalidSignatureParameters("nonce must be 16 to 64 base64url characters")
    created, expires = _int_param(params, "created"), _int_param(params, "expires")
    if not 0 < expires - created <= MAX_WINDOW_SECONDS:
        raise InvalidSignatureParameters(
            f"expires must lie 1 to {MAX_WINDOW_SECONDS} s after created"
        )
    components = []
    for value, component_params in members:
        if not isinstance(value, str) or component_params:
            raise InvalidSignatureParameters("covered components must be plain names")
        components.append(value)
    expected = BODY_COMPONENTS if has_body else NO_BODY_COMPONENTS
    if tuple(components) != expected:
        raise InvalidSignatureParameters(
            f"covered components must be {' '.join(expected)}, got {' '.join(components)}"
        )
    return ParsedSignature(
        key_id=_str_param(params, "keyid"),
        nonce=nonce,
        created=datetime.fromtimestamp(created, UTC),
        expires=datetime.fromtimestamp(expires, UTC),
        components=tuple(components),
    )


def check_digest(headers: Headers, body: bytes) -> None:
    """Raise :class:`DigestMismatch` unless ``Content-Digest`` matches *body*."""
    try:
        parsed = _sf_parse(_single(headers, "Content-Digest"))
    except MissingSignature:
        raise DigestMismatch("Content-Digest header is missing") from None
    except (ValueError, UnicodeEncodeError):
        raise DigestMismatch("Content-Digest is not a structured-field dictionary") from None
    known = {name: value for name, (value, _) in parsed.items() if name in _DIGESTS}
    if not known:
        raise DigestMismatch("Content-Digest has no sha-256 or sha-512 member")
    for name, value in known.items():
        actual = _DIGESTS[name](body).digest()
        if not isinstance(value, bytes) or not hmac.compare_digest(actual, value):
            raise DigestMismatch(f"body does not match its {name} Content-Digest")


def check_signature(message: Message, key: Ed25519PublicKey, parsed: ParsedSignature) -> None:
    """Verify the signature cryptographically over the RFC 9421 signature base."""
    verifier = _ProfileVerifier(signature_algorithm=algorithms.ED25519, key_resolver=_FixedKey(key))
    try:
        verifier.verify(
            message,
            max_age=None,
            expect_tag=TAG,
            require_components=parsed.components,
        )
    except HTTPMessageSignaturesException as exc:
        raise BadSignature(f"request signature does not verify: {exc}") from None


def signature_base(message: Message, signature_input: str) -> bytes:
    """The RFC 9421 signature base of *message* for one Signature-Input member.

    *signature_input* is the member's value, for example
    ``("@method" "@target-uri");created=1618884473;keyid="k"``.  Used by the
    test vectors and by SPEC.md's worked example; verification itself goes
    through the library's verifier.
    """
    handler = HTTPMessageSigner(signature_algorithm=algorithms.ED25519)
    try:
        parsed = handler._parse_signature_dictionary(f"x={signature_input}")["x"]
        base, _, _ = handler._build_signature_base(
            message, covered_component_ids=list(parsed), signature_params=parsed.params
        )
    except HTTPMessageSignaturesException as exc:
        raise MalformedSignature(f"cannot build the signature base: {exc}") from None
    return str(base).encode("ascii")


ResolveKey = Callable[[str], Ed25519PublicKey]
CheckReplay = Callable[[str, str, datetime], None]


@dataclass(frozen=True)
class VerifiedRequest:
    key_id: str
    nonce: str
    created: datetime
    expires: datetime


def verify_request(
    *,
    method: str,
    url: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    resolve_key: ResolveKey,
    check_replay: CheckReplay,
    now: datetime,
) -> VerifiedRequest:
    """Verify a signed request; raise a typed error for every failure.

    *resolve_key* maps a key id to a pinned public key or raises
    (:class:`~protocol.errors.UnknownKey` and friends).  *check_replay*
    receives ``(key_id, nonce, expires)`` after the signature verified and
    raises :class:`ReplayedNonce` for a nonce it has seen.
    """
    message = Message(method.upper(), url, Headers(headers))
    parsed = parse_signature(message.headers, has_body=bool(body))
    parsed.check_window(now)
    check_digest(message.headers, body)
    key = resolve_key(parsed.key_id)
    check_signature(message, key, parsed)
    check_replay(parsed.key_id, parsed.nonce, parsed.expires)
    return VerifiedRequest(parsed.key_id, parsed.nonce, parsed.created, parsed.expires)


class MemoryNonceStore:
    """A replay check for tests and single-process tools: remembers nonces."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()

    def __call__(self, key_id: str, nonce: str, expires: datetime) -> None:
        if (key_id, nonce) in self._seen:
            raise ReplayedNonce("nonce has been used before")
        self._seen.add((key_id, nonce))
