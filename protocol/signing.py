"""Object signatures: sign and verify JSON objects themselves.

An announcement or descriptor carries its own signatures, so it stays
verifiable however many relays or mirrors pass it on.

Signing input (byte for byte, see SPEC.md §3)::

    b"openseats-object-v1\\x00" || JCS(object without "signatures" and "unsigned")

The ``signatures`` member maps each signer (a node id) to a map of key id to
the unpadded base64url Ed25519 signature over the signing input.  Relays may
add data under ``unsigned``; it is not covered.

:func:`verify_object` is strict.  Every signature present must come from a
required signer and must verify with a key the injected resolver vouches for
at the given time; every required signer must have at least one signature.
An unverifiable signature is an error, never something to skip.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocol.canonical import JsonObject, canonical_bytes, check_signable, signable_part
from protocol.errors import MalformedSignature, MissingSignature, UnexpectedSigner
from protocol.keys import SigningKey, b64url_encode, decode_signature, verify_raw

SIGNING_PREFIX = b"openseats-object-v1\x00"


class KeyResolver(Protocol):
    """Finds the public key that *signer* held under *key_id* at time *at*.

    Implementations raise :class:`~protocol.errors.UnknownKey`,
    :class:`~protocol.errors.ExpiredKey` or :class:`~protocol.errors.RevokedKey`;
    they never return ``None``.
    """

    def resolve(self, signer: str, key_id: str, at: datetime) -> Ed25519PublicKey: ...


def signing_input(obj: Mapping[str, Any], *, profile_checked: bool = False) -> bytes:
    """The exact bytes that an object signature covers.

    *profile_checked* skips the walk of :func:`check_signable` when the
    caller has already guaranteed the profile: the object came through
    :func:`protocol.canonical.loads` (no floats or huge integers) and was
    validated by a wire model that declares every member (so every name is
    one of its snake_case fields).  That saves a tenth of the ingest time.
    """
    body = signable_part(obj)
    if not profile_checked:
        check_signable(body)
    return SIGNING_PREFIX + canonical_bytes(body)


def sign_object(obj: Mapping[str, Any], signer: str, keys: Collection[SigningKey]) -> JsonObject:
    """Return a copy of *obj* with signatures by *signer* under each of *keys* added.

    Signatures by other signers already on *obj* are kept, so several nodes
    can sign the same object in turn.  ``unsigned`` is kept as it is.
    """
    if not keys:
        raise ValueError("at least one key is needed to sign")
    message = signing_input(obj)
    result = dict(obj)
    existing = result.get("signatures") or {}
    signatures = {name: dict(by_key) for name, by_key in existing.items()}
    mine = signatures.setdefault(signer, {})
    for key in keys:
        mine[key.key_id] = b64url_encode(key.sign(message))
    result["signatures"] = signatures
    return result


def _signature_map(obj: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    if "signatures" not in obj:
        raise MissingSignature("object has no signatures member")
    raw = obj["signatures"]
    if not isinstance(raw, dict) or not raw:
        raise MalformedSignature("signatures must be a non-empty object")
    for signer, by_key in raw.items():
        if not isinstance(by_key, dict) or not by_key:
            raise MalformedSignature(
                "each signer maps to a non-empty object of key id to signature",
                field=f"signatures.{signer}",
            )
    return raw


def verify_object(
    obj: Mapping[str, Any],
    *,
    signers: Collection[str],
    resolver: KeyResolver,
    at: datetime,
    profile_checked: bool = False,
) -> list[tuple[str, str]]:
    """Verify every signature on *obj*; return the (signer, key id) pairs.

    *signers* are the nodes that must have signed, and the only ones that may.
    *at* is the time the object claims (``issued_at``); the resolver decides
    whether each key was valid then.
    """
    signatures = _signature_map(obj)
    for signer in signatures:
        if signer not in signers:
            raise UnexpectedSigner(
                f"signature by {signer!r}, expected only {sorted(signers)}",
                field="signatures",
            )
    for signer in signers:
        if signer not in signatures:
            raise MissingSignature(f"no signature by {signer!r}", field="signatures")
    message = signing_input(obj, profile_checked=profile_checked)
    verified: list[tuple[str, str]] = []
    for signer, by_key in signatures.items():
        for key_id, encoded in by_key.items():
            signature = decode_signature(encoded)
            key = resolver.resolve(signer, key_id, at)
            verify_raw(key, signature, message)
            verified.append((signer, key_id))
    return verified
