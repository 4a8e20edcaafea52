"""Frozen pydantic models of every protocol message.

``parse`` turns raw bytes or a parsed JSON value into a model and maps
pydantic's errors onto the typed protocol errors; ``seal`` signs a body and
returns the signed model.  ``SCHEMA_MODELS`` lists what ``schemas/`` holds.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, TypeVar, overload

from pydantic import BaseModel, TypeAdapter, ValidationError

from protocol.canonical import loads
from protocol.errors import SchemaViolation, UnknownField
from protocol.keys import SigningKey
from protocol.models.announcement import Announcement, AnnouncementBody, Host, Link, Seats
from protocol.models.common import (
    PROTOCOL_VERSION,
    SignedModel,
    WireModel,
    format_timestamp,
)
from protocol.models.descriptor import (
    CurrentKey,
    Endpoints,
    NodeDescriptor,
    NodeDescriptorBody,
    OldKey,
    RevokedKey,
)
from protocol.models.error import ErrorBody
from protocol.models.feed import DeletedItem, FeedItem, FeedPage, UpdatedItem
from protocol.models.notices import FeedChanged, Notice, ReservationUpdated, SessionCancelled
from protocol.models.peering import PeeringAnswer, PeeringRequest
from protocol.models.reservation import (
    Attendee,
    Cancelled,
    Confirmed,
    Held,
    Pending,
    Rejected,
    ReservationAnswer,
    ReservationRequest,
    SessionRef,
    Waitlisted,
)
from protocol.signing import sign_object

__all__ = [
    "PROTOCOL_VERSION",
    "SCHEMA_MODELS",
    "Announcement",
    "AnnouncementBody",
    "Attendee",
    "Cancelled",
    "Confirmed",
    "CurrentKey",
    "DeletedItem",
    "Endpoints",
    "ErrorBody",
    "FeedChanged",
    "FeedItem",
    "FeedPage",
    "Held",
    "Host",
    "Link",
    "NodeDescriptor",
    "NodeDescriptorBody",
    "Notice",
    "OldKey",
    "PeeringAnswer",
    "PeeringRequest",
    "Pending",
    "Rejected",
    "ReservationAnswer",
    "ReservationRequest",
    "ReservationUpdated",
    "RevokedKey",
    "Seats",
    "SessionCancelled",
    "SessionRef",
    "SignedModel",
    "UpdatedItem",
    "Waitlisted",
    "WireModel",
    "format_timestamp",
    "parse",
    "seal",
]

M = TypeVar("M", bound=BaseModel)
S = TypeVar("S", bound=SignedModel)

#: Schema file name -> the type it describes.  ``python -m protocol.schemagen``
#: writes ``schemas/<name>.schema.json`` for each.
SCHEMA_MODELS: dict[str, Any] = {
    "node_descriptor": NodeDescriptor,
    "session_announcement": Announcement,
    "feed_page": FeedPage,
    "peering_request": PeeringRequest,
    "peering_answer": PeeringAnswer,
    "notice": Notice,
    "reservation_request": ReservationRequest,
    "reservation_answer": ReservationAnswer,
    "error": ErrorBody,
}

_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def adapter(kind: Any) -> TypeAdapter[Any]:
    """A cached TypeAdapter for a model class or an annotated union."""
    found = _ADAPTERS.get(kind)
    if found is None:
        found = _ADAPTERS[kind] = TypeAdapter(kind)
    return found


def _first_error(exc: ValidationError) -> SchemaViolation | UnknownField:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"]) or None
    if error["type"] == "extra_forbidden":
        return UnknownField("member is not defined by the schema", field=where)
    message = error["msg"].removeprefix("Value error, ")
    return SchemaViolation(message, field=where)


@overload
def parse(kind: type[M], data: bytes | str | Any) -> M: ...
@overload
def parse(kind: object, data: bytes | str | Any) -> Any: ...
def parse(kind: Any, data: bytes | str | Any) -> Any:
    """Validate *data* (raw JSON, or an already parsed value) as *kind*.

    Raw JSON goes through the strict parser first, so duplicate keys, floats
    and huge integers fail with their own errors.  Schema errors raise
    :class:`UnknownField` or :class:`SchemaViolation`, naming the first
    failing member.
    """
    value = loads(data) if isinstance(data, bytes | str) else data
    try:
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            return kind.model_validate(value)
        return adapter(kind).validate_python(value)
    except ValidationError as exc:
        raise _first_error(exc) from None


def seal(body: WireModel, signed: type[S], signer: str, keys: Collection[SigningKey]) -> S:
    """Sign *body* as *signer* with *keys* and return it as the signed model."""
    return signed.model_validate(sign_object(body.to_json_dict(), signer, keys))
