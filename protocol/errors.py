"""Typed protocol errors with stable codes.

Every way a message can fail has its own exception class, a stable
snake_case ``code`` that goes on the wire in an error body, and the HTTP
status a node answers with.  The split follows one rule:

* ``400`` family (:class:`MalformedError`): the bytes are not a well-formed
  message (bad JSON, duplicate keys, floats, schema violations).  Retrying
  the same bytes can never succeed.
* ``401`` family (:class:`AuthenticationError`): the message is well formed,
  but we cannot establish who sent it (missing, bad or replayed signature,
  unknown, expired or revoked key, wrong signer).

Verification raises; it never returns ``None`` or ``False``.  All classes
derive from :class:`Exception` so that ``except Exception`` in a task runner
catches them but ``KeyboardInterrupt`` still stops the process.
"""

from __future__ import annotations

from typing import ClassVar


class ProtocolError(Exception):
    """Base class of every error the protocol library raises."""

    code: ClassVar[str] = "protocol_error"
    status: ClassVar[int] = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        if self.field:
            return f"{self.code}: {self.message} (at {self.field})"
        return f"{self.code}: {self.message}"


# --- malformed input (400) -------------------------------------------------


class MalformedError(ProtocolError):
    """The bytes do not form a well-formed protocol message."""

    code = "malformed"
    status = 400


class InvalidEncoding(MalformedError):
    """The body is not valid UTF-8."""

    code = "invalid_encoding"


class InvalidJson(MalformedError):
    """The body is not one complete JSON text (truncated, trailing data, NaN)."""

    code = "invalid_json"


class DuplicateKey(MalformedError):
    """A JSON object has the same member name twice."""

    code = "duplicate_key"


class FloatNotAllowed(MalformedError):
    """A number with a fraction or exponent appears; the protocol has none."""

    code = "float_not_allowed"


class IntegerOutOfRange(MalformedError):
    """An integer lies outside ±(2^53−1), the range every JSON parser keeps exact."""

    code = "integer_out_of_range"


class InvalidKeyName(MalformedError):
    """A member name of a signed object is not ASCII snake_case."""

    code = "invalid_key_name"


class UnknownField(MalformedError):
    """A member that the schema does not define."""

    code = "unknown_field"


class SchemaViolation(MalformedError):
    """A member has the wrong type, or a value outside its allowed range or form."""

    code = "schema_violation"


class MalformedSignature(MalformedError):
    """A signature member or header is present but not in the specified form."""

    code = "malformed_signature"


class DigestMismatch(MalformedError):
    """The body does not match its ``Content-Digest`` header."""

    code = "digest_mismatch"


# --- authentication (401) --------------------------------------------------


class AuthenticationError(ProtocolError):
    """The message is well formed, but its sender cannot be established."""

    code = "unauthenticated"
    status = 401


class MissingSignature(AuthenticationError):
    """A required signature (object signer, or request signature) is absent."""

    code = "missing_signature"


class UnexpectedSigner(AuthenticationError):
    """A signature from a signer that this object must not carry."""

    code = "unexpected_signer"


class BadSignature(AuthenticationError):
    """The signature does not verify over the signing input."""

    code = "bad_signature"


class UnknownKey(AuthenticationError):
    """The key id is not pinned for the claimed signer."""

    code = "unknown_key"


class ExpiredKey(AuthenticationError):
    """The key was retired before the time the message claims."""

    code = "key_expired"


class RevokedKey(AuthenticationError):
    """The key has been revoked; nothing it signed is accepted."""

    code = "key_revoked"


class OriginMismatch(AuthenticationError):
    """The object's signer, origin or requesting node do not match."""

    code = "origin_mismatch"


class StaleSignature(AuthenticationError):
    """A request signature outside its ``created``/``expires`` window."""

    code = "stale_signature"


class InvalidSignatureParameters(AuthenticationError):
    """Request signature parameters break the profile (components, tag, window)."""

    code = "invalid_signature_parameters"


class ReplayedNonce(AuthenticationError):
    """The request nonce has been seen before for this key."""

    code = "replayed_nonce"


class DescriptorRejected(AuthenticationError):
    """A node descriptor fails the pinning, rotation or validity rules."""

    code = "descriptor_rejected"


def all_error_classes() -> list[type[ProtocolError]]:
    """Every concrete error class, for the spec table and the tests."""
    found: list[type[ProtocolError]] = []
    pending: list[type[ProtocolError]] = [ProtocolError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: (c.status, c.code))
