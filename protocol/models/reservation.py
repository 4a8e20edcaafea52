"""Reservations: the requester asks, the host decides every seat.

The requester picks the UUID and sends ``PUT /protocol/v1/reservations/{uuid}``
with a :class:`ReservationRequest`.  The host always answers with a
:class:`ReservationAnswer`, discriminated by ``state``; later changes reach
the requester as ``reservation_updated`` notices carrying a newer answer.
``version`` orders the answers for one reservation.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from protocol.models.common import (
    DisplayName,
    NodeId,
    SessionId,
    Timestamp,
    Url,
    Uuid,
    Version,
    WireModel,
)

RejectReason = Literal[
    "full",
    "closed_to_partners",
    "not_in_audience",
    "session_cancelled",
    "session_ended",
    "registration_closed",
    "duplicate_attendee",
    "too_many_seats",
    "partner_cap_reached",
    "email_required",
    "unknown_session",
    "declined_by_host",
    "hold_expired",
]
CancelledBy = Literal["requester", "host"]
MAX_SEATS_PER_REQUEST = 10

AttendeeRef = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._~:-]+$")
]
Email = Annotated[
    str,
    StringConstraints(
        max_length=254,
        pattern=r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$",
    ),
]


class SessionRef(WireModel):
    origin: NodeId
    id: SessionId


class Attendee(WireModel):
    """All that crosses organisations about a person (SPEC.md §9)."""

    ref: AttendeeRef = Field(description="Pseudonymous, chosen by the requester's node.")
    display_name: DisplayName
    email: Email | None = Field(default=None, description="Only when the host requires it.")


class ReservationRequest(WireModel):
    type: Literal["reservation_request"]
    id: Uuid
    requester: NodeId
    session: SessionRef
    attendee: Attendee
    seats: int = Field(default=1, ge=1, le=MAX_SEATS_PER_REQUEST)
    hold: bool = Field(default=False, description="Ask for a short hold, confirmed later.")
    issued_at: Timestamp


class _Answer(WireModel):
    type: Literal["reservation_answer"]
    id: Uuid
    session: SessionRef
    version: Version
    issued_at: Timestamp


class Confirmed(_Answer):
    state: Literal["confirmed"]
    seats: int = Field(ge=1, le=MAX_SEATS_PER_REQUEST)
    join_url: Url = Field(description="The only place the join link ever travels.")


class Held(_Answer):
    state: Literal["held"]
    seats: int = Field(ge=1, le=MAX_SEATS_PER_REQUEST)
    hold_expires_at: Timestamp


class Waitlisted(_Answer):
    state: Literal["waitlisted"]
    position: int = Field(ge=1, le=100_000)


class Pending(_Answer):
    """Awaiting the host admin's approval."""

    state: Literal["pending"]


class Rejected(_Answer):
    state: Literal["rejected"]
    reason: RejectReason


class Cancelled(_Answer):
    state: Literal["cancelled"]
    cancelled_by: CancelledBy


ReservationAnswer = Annotated[
    Confirmed | Held | Waitlisted | Pending | Rejected | Cancelled,
    Field(discriminator="state"),
]
