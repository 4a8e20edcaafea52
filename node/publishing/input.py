"""What an admin, the CLI or an import may say about a local session.

Validate with ``SessionInput.model_validate(data, context={"now": now})``
to also refuse a start in the past (the clock is injected, never read here).

:class:`SessionInput` is the one validation point for session data coming
from people or files, whatever the channel (admin API, CLI, CSV, ICS).  It
is stricter than the wire model where people make mistakes: a start in the
past, a duration of 0 or beyond 8 hours, a timezone that does not exist.
Messages are German first, with English after a slash, because admins read
them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from protocol.models.announcement import (
    MAX_DURATION_MINUTES,
    MAX_SEATS,
    LanguageTag,
    RegistrationMode,
    SessionFormat,
    Tag,
    is_known_timezone,
)
from protocol.models.common import NodeId, Url

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(max_length=8000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
MIN_YEAR, MAX_YEAR = 1900, 9000
MAX_AUDIENCE = 500  # partners named in one opening


class SessionInput(BaseModel):
    """A local session as entered; becomes an announcement once opened."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: Title
    description: Text = ""
    format: SessionFormat = "impulse"
    languages: list[LanguageTag] = Field(default_factory=lambda: ["de"], min_length=1, max_length=5)
    start: datetime
    timezone: str = "Europe/Berlin"
    duration_minutes: int = Field(ge=1, le=MAX_DURATION_MINUTES)
    host_name: Name
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    join_url: Url | None = None
    details_url: Url | None = None

    @field_validator("start")
    @classmethod
    def _plausible_year(cls, start: datetime) -> datetime:
        # Far outside this range, moving to UTC or adding the duration leaves
        # what datetime can represent.
        if not MIN_YEAR <= start.year <= MAX_YEAR:
            raise ValueError(
                f"Beginn: Jahr {MIN_YEAR}–{MAX_YEAR} / start: year {MIN_YEAR}-{MAX_YEAR}"
            )
        return start

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> Self:
        if not is_known_timezone(self.timezone):
            raise ValueError(
                f"Unbekannte Zeitzone / unknown timezone: {self.timezone!r} (z. B. Europe/Berlin)"
            )
        if self.start.tzinfo is None:
            # A naive time means wall-clock time in the session's timezone.
            object.__setattr__(self, "start", self.start.replace(tzinfo=ZoneInfo(self.timezone)))
        now = (info.context or {}).get("now")
        if isinstance(now, datetime) and self.start.astimezone(UTC) <= now:
            raise ValueError("Beginn liegt in der Vergangenheit / start lies in the past")
        return self


class OpeningInput(BaseModel):
    """Opening a session to partners: how many seats, for whom, how to register."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seats: int = Field(ge=1, le=MAX_SEATS)
    audience: Literal["all"] | Annotated[list[NodeId], Field(max_length=MAX_AUDIENCE)] = "all"
    registration_mode: RegistrationMode = "auto"
    waitlist: bool = True
    email_required: bool = False

    @model_validator(mode="after")
    def _check_audience(self) -> Self:
        if isinstance(self.audience, list) and not self.audience:
            raise ValueError("Zielgruppe leer / audience is empty: use 'all' or name partners")
        return self
