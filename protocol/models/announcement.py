"""The open-session announcement: what a node publishes about one session.

An announcement is a complete, signed snapshot of one session as partners
may see it.  Every change a partner can see produces a new ``version``;
receivers keep only a strictly greater version per ``(origin, id)``.

The join link never appears here: it travels only in the answer to a
confirmed reservation.  Neither does the audience (which partners may see
the session): the feed simply leaves the session out for everyone else.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Literal, Self
from zoneinfo import available_timezones

from pydantic import Field, StringConstraints, field_validator, model_validator

from protocol.models.common import (
    NOT_BLANK,
    DisplayName,
    NodeId,
    SessionId,
    SignedModel,
    Timestamp,
    Url,
    Version,
    WireModel,
)

SessionFormat = Literal["impulse", "ama", "exchange", "workshop", "open_group", "other"]
SessionStatus = Literal["scheduled", "cancelled", "postponed", "rescheduled"]
RegistrationMode = Literal["auto", "approval"]
LinkRel = Literal["details", "registration", "materials", "recording"]

MAX_SEATS = 10_000
MAX_DURATION_MINUTES = 480

LanguageTag = Annotated[
    str, StringConstraints(max_length=35, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=NOT_BLANK)]
Timezone = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$"
    ),
]


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_known_timezone(name: str) -> bool:
    return name in _timezones()


class Host(WireModel):
    """The person who runs the session, as partners may see them."""

    display_name: DisplayName


class Seats(WireModel):
    """The seats opened to partners, not the session's whole capacity."""

    open: int = Field(ge=0, le=MAX_SEATS, description="Seats opened to partners.")
    remaining: int = Field(
        ge=0, le=MAX_SEATS, description="Partner seats still free; at most open (checked)."
    )
    registration_mode: RegistrationMode
    waitlist: bool = Field(description="Whether a full session takes waitlist entries.")
    email_required: bool = Field(
        description="Whether the host requires the attendee's email address."
    )

    @model_validator(mode="after")
    def _remaining_within_open(self) -> Self:
        if self.remaining > self.open:
            raise ValueError("remaining seats cannot exceed open seats")
        return self


class Link(WireModel):
    rel: LinkRel
    href: Url
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


class AnnouncementBody(WireModel):
    type: Literal["session_announcement"]
    origin: NodeId = Field(description="The host node; must equal the signer.")
    id: SessionId = Field(description="Stable id of the session at its origin.")
    version: Version = Field(description="Strictly increases with every visible change.")
    issued_at: Timestamp
    title: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NOT_BLANK)]
    description: Annotated[str, StringConstraints(max_length=8000)] = ""
    format: SessionFormat
    languages: list[LanguageTag] = Field(min_length=1, max_length=5)
    start: Timestamp = Field(description="Start instant, with the offset in force there.")
    timezone: Timezone = Field(description="IANA timezone name, e.g. Europe/Berlin (checked).")
    duration_minutes: int = Field(ge=1, le=MAX_DURATION_MINUTES)
    host: Host
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    seats: Seats
    status: SessionStatus
    links: list[Link] = Field(default_factory=list, max_length=10)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        if not is_known_timezone(value):
            raise ValueError(f"unknown IANA timezone {value!r}")
        return value


class Announcement(SignedModel, AnnouncementBody):
    """A signed announcement, as it appears in ``data`` of a feed item."""
