"""The catalogue as schema.org ``EducationEvent`` JSON-LD.

Rules:

- ``@id`` and ``url`` are the registration page; ``identifier`` is the
  catalogue id ``"{session_id}@{origin}"``.
- ``startDate``/``endDate`` are ISO 8601 with the offset of the session's
  own timezone (``2026-12-03T10:00:00+01:00`` in a Berlin winter,
  ``+02:00`` in summer); ``duration`` is ISO 8601 (``PT1H30M``);
  ``dateModified`` is ``modified_at`` in UTC.  The wall clock is never read.
- Sessions are online: ``eventAttendanceMode`` is
  ``OnlineEventAttendanceMode`` and ``location`` is a ``VirtualLocation``
  whose URL is the registration page.  Never the join link: it only travels
  in the answer to a confirmed reservation.
- ``eventStatus`` maps scheduled/cancelled/postponed/rescheduled to the
  schema.org ``Event*`` URLs; an unknown status is left out rather than
  guessed.
- ``organizer`` is the organisation (``identifier`` = node origin),
  ``performer`` the host.  ``inLanguage`` is a string for one language and a
  list for several; ``keywords`` are the tags joined with ``", "``.
- ``maximumAttendeeCapacity``/``remainingAttendeeCapacity`` describe the
  partner seats and appear only when ``seats_open > 0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any

from node.catalogue.entry import CatalogueEntry
from node.catalogue.ics import local_span

__all__ = ["CONTEXT", "education_event", "education_events", "iso_duration"]

CONTEXT = "https://schema.org"

_STATUS = {
    "scheduled": "https://schema.org/EventScheduled",
    "cancelled": "https://schema.org/EventCancelled",
    "postponed": "https://schema.org/EventPostponed",
    "rescheduled": "https://schema.org/EventRescheduled",
}


def iso_duration(minutes: int) -> str:
    """ISO 8601 duration: 30 -> ``PT30M``, 60 -> ``PT1H``, 95 -> ``PT1H35M``."""
    if minutes < 0:
        raise ValueError(f"duration must not be negative, not {minutes}")
    hours, rest = divmod(minutes, 60)
    if not hours and not rest:
        return "PT0M"
    return "PT" + (f"{hours}H" if hours else "") + (f"{rest}M" if rest else "")


def _node(entry: CatalogueEntry) -> dict[str, Any]:
    start, end = local_span(entry)
    modified = entry.modified_at
    if modified.tzinfo is None:
        modified = modified.replace(tzinfo=UTC)
    languages = list(entry.languages)
    node: dict[str, Any] = {
        "@type": "EducationEvent",
        "@id": entry.registration_url,
        "identifier": entry.id,
        "name": entry.title,
        "description": entry.description,
        "url": entry.registration_url,
        "startDate": start.isoformat(),
        "endDate": end.isoformat(),
        "duration": iso_duration(entry.duration_minutes),
        "eventAttendanceMode": "https://schema.org/OnlineEventAttendanceMode",
        "location": {"@type": "VirtualLocation", "url": entry.registration_url},
        "organizer": {
            "@type": "Organization",
            "name": entry.org_name,
            "identifier": entry.origin,
        },
        "performer": {"@type": "Person", "name": entry.host_name},
        "isAccessibleForFree": True,
        "dateModified": modified.astimezone(UTC).isoformat(),
    }
    if entry.status in _STATUS:
        node["eventStatus"] = _STATUS[entry.status]
    if languages:
        node["inLanguage"] = languages[0] if len(languages) == 1 else languages
    if entry.tags:
        node["keywords"] = ", ".join(entry.tags)
    if entry.seats_open > 0:
        node["maximumAttendeeCapacity"] = entry.seats_open
        node["remainingAttendeeCapacity"] = entry.seats_remaining
    return node


def education_event(entry: CatalogueEntry) -> dict[str, Any]:
    """One session as a standalone JSON-LD document."""
    return {"@context": CONTEXT, **_node(entry)}


def education_events(entries: Sequence[CatalogueEntry]) -> dict[str, Any]:
    """Several sessions as one ``@graph`` document, ordered by (start, id)."""
    ordered = sorted(entries, key=lambda e: (local_span(e)[0], e.id))
    return {"@context": CONTEXT, "@graph": [_node(entry) for entry in ordered]}
