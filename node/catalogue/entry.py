"""One session as the catalogue shows it: local or a partner's, never a join link."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CatalogueEntry:
    """A row of the merged catalogue, ready for the portal formats.

    ``id`` is ``"{session_id}@{origin}"``: unique across the alliance, stable
    for the life of the session, and the ICS UID.  ``sequence`` counts the
    changes of time or status (ICS SEQUENCE); ``modified_at`` is when this
    node last stored a change (ICS DTSTAMP and LAST-MODIFIED, so unchanged
    data renders byte-identical).
    """

    id: str
    origin: str
    session_id: str
    org_name: str
    is_local: bool
    version: int
    title: str
    description: str
    format: str
    languages: tuple[str, ...]
    start_at: datetime
    end_at: datetime
    timezone: str
    duration_minutes: int
    host_name: str
    tags: tuple[str, ...]
    status: str
    seats_open: int
    seats_remaining: int
    registration_mode: str
    waitlist: bool
    email_required: bool
    details_url: str | None
    registration_url: str
    sequence: int
    modified_at: datetime
