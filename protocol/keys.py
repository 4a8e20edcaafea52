"""Ed25519 keys, key ids and human-comparable fingerprints.

A public key is 32 raw bytes.  Everything people or protocols use to name
it derives from ``sha256(raw)``:

* the **key id** is ``ed25519:`` plus the first 10 bytes of the hash in
  lowercase base32 (16 characters), for example ``ed25519:3zqj6lq2c4xkvm7a``;
* the **fingerprint** is the first 20 bytes (160 bits) of the hash in
  uppercase base32, in eight groups of four separated by ``-``, for example
  ``3ZQJ-6LQ2-C4XK-VM7A-...``.  Base32 has no 0/1/8/9, so it reads aloud
  over the phone without confusing O and 0 or I and 1.  The first four
  groups of the fingerprint are the key id, upper-cased.

Public keys travel as unpadded base64url of the raw 32 bytes.  Private keys
are stored as unencrypted PKCS#8 PEM files, created with mode 0600.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from protocol.errors import BadSignature, MalformedError, MalformedSignature

KEY_ID_PREFIX = "ed25519:"
KEY_ID_PATTERN = r"^ed25519:[a-z2-7]{16}$"
FINGERPRINT_PATTERN = r"^[A-Z2-7]{4}(?:-[A-Z2-7]{4}){7}$"
PUBLIC_KEY_PATTERN = r"^[A-Za-z0-9_-]{43}$"
SIGNATURE_PATTERN = r"^[A-Za-z0-9_-]{86}$"
_FINGERPRINT_INPUT = re.compile(r"[\s\-:]+")


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url, as used for keys and signatures on the wire."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, *, length: int) -> bytes:
    """Decode unpadded base64url of exactly *length* bytes, or raise."""
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise MalformedError("not unpadded base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise MalformedError("not unpadded base64url") from None
    if len(raw) != length or b64url_encode(raw) != text:
        raise MalformedError(f"expected {length} bytes in canonical base64url")
    return raw


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(b64url_decode(text, length=32))


def key_id_for(key: Ed25519PublicKey) -> str:
    digest = hashlib.sha256(raw_public_key(key)).digest()
    return KEY_ID_PREFIX + base64.b32encode(digest[:10]).decode("ascii").lower()


def fingerprint_for(key: Ed25519PublicKey) -> str:
    digest = hashlib.sha256(raw_public_key(key)).digest()
    text = base64.b32encode(digest[:20]).decode("ascii")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def normalise_fingerprint(text: str) -> str:
    """Accept what a person types (spaces, lower case) and return the canonical form.

    Raises :class:`MalformedError` when the text cannot be a fingerprint.
    """
    compact = _FINGERPRINT_INPUT.sub("", text).upper()
    if not re.fullmatch(r"[A-Z2-7]{32}", compact):
        raise MalformedError(
            "a fingerprint is 32 characters A-Z and 2-7, usually in groups of four",
            field="fingerprint",
        )
    return "-".join(compact[i : i + 4] for i in range(0, 32, 4))


def decode_signature(text: object) -> bytes:
    if not isinstance(text, str):
        raise MalformedSignature("signature is not a string")
    try:
        return b64url_decode(text, length=64)
    except MalformedError:
        raise MalformedSignature("signature is not 64 bytes of unpadded base64url") from None


def verify_raw(key: Ed25519PublicKey, signature: bytes, message: bytes) -> None:
    """Verify an Ed25519 signature, raising :class:`BadSignature`."""
    try:
        key.verify(signature, message)
    except InvalidSignature:
        raise BadSignature("signature does not verify") from None


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key together with its derived public names."""

    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """A key from its 32-byte seed (RFC 8032 "secret key"), for test vectors."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_pem(cls, data: bytes) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise MalformedError(f"not an unencrypted PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise MalformedError("the PEM file holds a key that is not Ed25519")
        return cls(key)

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        return cls.from_pem(path.read_bytes())

    def save(self, path: Path) -> None:
        """Write the key as PKCS#8 PEM, readable by the owner only.

        The file is created with mode 0600 and never overwritten.
        """
        data = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id_for(self.public_key)

    @property
    def fingerprint(self) -> str:
        return fingerprint_for(self.public_key)

    @property
    def public_key_b64(self) -> str:
        return b64url_encode(raw_public_key(self.public_key))

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)
