"""Shared field types and the base class of every wire model.

Wire models are frozen value objects (``frozen=True``), refuse unknown
members (``extra="forbid"``) and never coerce (``strict=True``): ``"5"`` is
not an integer and ``true`` is not ``1``.  That keeps pydantic and the
published JSON Schemas in agreement, which a test checks on every example.

Every constrained string carries its pattern in the schema.  Rules that JSON
Schema cannot express (a real IANA timezone, ``remaining <= open``, a
descriptor valid for at most seven days, no U+0000 in any string) are model
validators; SPEC.md lists them as normative, and the schemas say so in their
descriptions.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from protocol.canonical import MAX_SAFE_INTEGER
from protocol.keys import KEY_ID_PATTERN, PUBLIC_KEY_PATTERN, SIGNATURE_PATTERN

PROTOCOL_VERSION = "openseats/1"

RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
# Explicit character classes instead of \s and \S: regex engines disagree on
# which characters are whitespace (Python counts U+001C..U+001F, Rust and
# ECMAScript do not), and the schemas must mean the same everywhere.
NOT_BLANK = r"[^ \t\n\r]"
_RFC3339 = re.compile(RFC3339_PATTERN)


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False


class WireModel(BaseModel):
    """Base of every protocol message."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        """No U+0000 anywhere (SPEC.md conventions): no database stores it in text."""
        if _has_nul(data):
            raise ValueError("strings must not contain U+0000")
        return data

    def to_json_dict(self) -> dict[str, Any]:
        """The wire form: JSON types only, absent optional members left out."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


def _parse_timestamp(value: object) -> datetime:
    if isinstance(value, datetime):
        offset = value.utcoffset()
        if offset is None:
            raise ValueError("timestamp needs a UTC offset")
        if offset.total_seconds() % 60:
            raise ValueError("UTC offset must be whole minutes")
        return value
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("timestamp must be RFC 3339, e.g. 2026-12-03T10:00:00+01:00")
    return datetime.fromisoformat(value)


def format_timestamp(value: datetime) -> str:
    """RFC 3339 with seconds; UTC is written ``Z``, other offsets are kept."""
    timespec = "microseconds" if value.microsecond else "seconds"
    if value.utcoffset() == UTC.utcoffset(None):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec=timespec) + "Z"
    return value.isoformat(timespec=timespec)


Timestamp = Annotated[
    datetime,
    PlainValidator(_parse_timestamp),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": RFC3339_PATTERN}),
]

SafeInt = Annotated[int, Field(ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)]
Version = Annotated[int, Field(ge=1, le=MAX_SAFE_INTEGER)]
ChangeNumber = Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)]

NODE_ID_PATTERN = (
    r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$"
)
NodeId = Annotated[str, StringConstraints(min_length=3, max_length=253, pattern=NODE_ID_PATTERN)]
SessionId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._~-]*$")
]
Uuid = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
]
Url = Annotated[
    str,
    StringConstraints(
        min_length=8, max_length=2048, pattern=r"^https?://[A-Za-z0-9.:\[\]-]+([/?#][!-~]*)?$"
    ),
]
KeyId = Annotated[str, StringConstraints(pattern=KEY_ID_PATTERN)]
PublicKeyB64 = Annotated[str, StringConstraints(pattern=PUBLIC_KEY_PATTERN)]
SignatureB64 = Annotated[str, StringConstraints(pattern=SIGNATURE_PATTERN)]
DisplayName = Annotated[str, StringConstraints(min_length=1, max_length=120, pattern=NOT_BLANK)]
Nonce = Annotated[str, StringConstraints(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]

Signatures = Annotated[
    dict[NodeId, Annotated[dict[KeyId, SignatureB64], Field(min_length=1)]],
    Field(min_length=1),
    WithJsonSchema(
        {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": NODE_ID_PATTERN, "minLength": 3, "maxLength": 253},
            "additionalProperties": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": KEY_ID_PATTERN},
                "additionalProperties": {"type": "string", "pattern": SIGNATURE_PATTERN},
            },
            "description": "Signer node id -> key id -> unpadded base64url Ed25519 "
            "signature over the signing input (SPEC.md §3).",
        }
    ),
]
Unsigned = Annotated[
    dict[str, Any],
    Field(description="Data added by relays; not covered by any signature."),
]


class SignedModel(WireModel):
    """A wire model that carries its own object signatures.

    Each signed message is declared twice: ``XBody`` with the content, and
    ``X(SignedModel, XBody)`` adding the required ``signatures``.  Code builds
    and validates a body, then :func:`protocol.models.seal` signs it.
    """

    signatures: Signatures
    unsigned: Unsigned | None = None
