"""The catalogue as an RFC 5545 calendar (a feed, or one session's ``.ics``).

Rules, so that portals and calendar clients can rely on them:

- ``UID`` is the catalogue id ``"{session_id}@{origin}"``: stable across
  nodes, renders and the life of the session.  ``SEQUENCE`` is the entry's
  change counter for time and status.
- ``DTSTAMP`` and ``LAST-MODIFIED`` are both ``modified_at`` in UTC.  The
  wall clock is never read, entries are sorted by ``(start_at, id)`` and
  properties are added in a fixed order, so the same catalogue always
  renders to the same bytes (stable ETag).
- ``DTSTART``/``DTEND`` carry ``TZID`` and the local wall time of the
  session's own timezone (a session at 10:00 in Berlin stays at 10:00 across
  DST).  ``DURATION`` is never used.  UTC sessions are written with ``Z``.
  A timezone name this machine does not know falls back to UTC rather than
  breaking the whole feed.
- One ``VTIMEZONE`` per TZID in use (sorted, before the events), generated
  from zoneinfo and limited to the whole calendar years in use for that zone:
  from 1 January of the first start to 1 January after the last end.  None
  for UTC.  Whole years rather than "first start minus a day" because some
  consumers (vobject, so Radicale and friends) keep the first VTIMEZONE they
  see per TZID for the whole process: a single winter session's ``.ics``
  must not teach them a Berlin without summer time.  Every file touching
  the same years therefore carries the same VTIMEZONE bytes.
- ``STATUS``: cancelled -> ``CANCELLED`` (Gancio marks cancelled events
  CONFIRMED; we must not), postponed -> ``TENTATIVE`` (a new date is not
  known yet), scheduled and rescheduled -> ``CONFIRMED``.  Anything unknown
  is ``TENTATIVE``, never ``CONFIRMED``.
- ``ORGANIZER`` needs a mailto URI, which the catalogue does not have, so the
  organisation goes into ``CONTACT`` and ``DESCRIPTION`` instead.
- There is never a join link: no ``CONFERENCE`` and no ``LOCATION``.  The
  join link is only in the personal invite after a confirmed reservation.
  ``URL`` is the registration page.
- The calendar carries ``NAME``/``X-WR-CALNAME``, ``REFRESH-INTERVAL`` and
  ``X-PUBLISHED-TTL`` (RFC 7986) as ``PT{minutes}M``.

CRLF line endings, escaping (a title cannot inject ``END:VEVENT``) and
75-octet folding come from the ``icalendar`` library.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Event, Timezone, vText

from node.catalogue.entry import CatalogueEntry

__all__ = ["FORMAT_LABELS", "entry_zone", "ics_status", "local_span", "render_calendar"]

PRODID = "-//OpenSeats//OpenSeats 0.1//DE"

#: German label of each session format, used as an extra CATEGORIES value.
FORMAT_LABELS: dict[str, str] = {
    "impulse": "Impuls",
    "ama": "AMA",
    "exchange": "Erfahrungsaustausch",
    "workshop": "Werkstatt",
    "open_group": "Offenes Gruppentreffen",
}

_STATUS = {
    "scheduled": "CONFIRMED",
    "rescheduled": "CONFIRMED",
    "postponed": "TENTATIVE",
    "cancelled": "CANCELLED",
}

_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Zulu", "Zulu", "GMT", "Etc/GMT"})


def ics_status(status: str) -> str:
    """The ICS ``STATUS`` for a session status (see the module docstring)."""
    return _STATUS.get(status, "TENTATIVE")


def entry_zone(entry: CatalogueEntry) -> tzinfo:
    """The session's own timezone; UTC for UTC names and unknown names."""
    if entry.timezone in _UTC_NAMES:
        return UTC
    try:
        return ZoneInfo(entry.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _aware(moment: datetime) -> datetime:
    """Treat a naive datetime (as some database drivers return) as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def local_span(entry: CatalogueEntry) -> tuple[datetime, datetime]:
    """Start and end as wall time in the session's own timezone."""
    zone = entry_zone(entry)
    return _aware(entry.start_at).astimezone(zone), _aware(entry.end_at).astimezone(zone)


def _duration(minutes: int) -> vText:
    # icalendar would normalise 60 minutes to "PT1H" (and serialises a bare
    # timedelta on an X- property as "1:00:00"); keep the documented form.
    return vText(f"PT{minutes}M")


def _description(entry: CatalogueEntry) -> str:
    lines = [
        f"Gastgeber:in / Host: {entry.host_name}",
        f"Organisation: {entry.org_name}",
    ]
    if entry.seats_open > 0:
        lines.append(
            "Freie Partnerplätze / open partner seats: "
            f"{entry.seats_remaining} von {entry.seats_open}"
        )
    lines.append(f"Anmeldung / Registration: {entry.registration_url}")
    footer = "\n".join(lines)
    text = entry.description.strip()
    return f"{text}\n\n{footer}" if text else footer


def _categories(entry: CatalogueEntry) -> list[str]:
    values: list[str] = []
    label = FORMAT_LABELS.get(entry.format)
    for value in (label, *entry.tags):
        if value and value not in values:
            values.append(value)
    return values


def _event(entry: CatalogueEntry) -> Event:
    start, end = local_span(entry)
    stamp = _aware(entry.modified_at).astimezone(UTC)
    event = Event()
    event.add("UID", entry.id)
    event.add("SEQUENCE", entry.sequence)
    event.add("DTSTAMP", stamp)
    event.add("LAST-MODIFIED", stamp)
    event.add("DTSTART", start)
    event.add("DTEND", end)
    if entry.languages:
        event.add("SUMMARY", entry.title, parameters={"LANGUAGE": entry.languages[0]})
    else:
        event.add("SUMMARY", entry.title)
    event.add("DESCRIPTION", _description(entry))
    event.add("URL", entry.registration_url)
    event.add("STATUS", ics_status(entry.status))
    categories = _categories(entry)
    if categories:
        event.add("CATEGORIES", categories)
    event.add("CONTACT", entry.org_name)
    event.add("TRANSP", "OPAQUE")
    event.add("CLASS", "PUBLIC")
    return event


def _zone_ranges(entries: Sequence[CatalogueEntry]) -> dict[str, tuple[date, date]]:
    """Per TZID in use (not UTC): 1 January of the first year to 1 January after."""
    years: dict[str, tuple[int, int]] = {}
    for entry in entries:
        start, end = local_span(entry)
        if start.tzinfo is UTC:
            continue
        first, last = start.year, max(start, end).year
        if entry.timezone in years:
            old_first, old_last = years[entry.timezone]
            first, last = min(first, old_first), max(last, old_last)
        years[entry.timezone] = (first, last)
    return {
        tzid: (date(first, 1, 1), date(last + 1, 1, 1)) for tzid, (first, last) in years.items()
    }


def render_calendar(
    entries: Sequence[CatalogueEntry],
    *,
    name: str,
    description: str | None = None,
    refresh_minutes: int = 60,
    lang: str = "de",
) -> bytes:
    """Render ``entries`` as one VCALENDAR; byte-identical for the same input.

    For ``/sessions/{id}.ics`` pass the one entry.  ``lang`` is the LANGUAGE
    of the calendar's NAME and DESCRIPTION.
    """
    if refresh_minutes <= 0:
        raise ValueError(f"refresh_minutes must be positive, not {refresh_minutes}")
    calendar = Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("METHOD", "PUBLISH")
    calendar.add("NAME", name, parameters={"LANGUAGE": lang})
    calendar.add("X-WR-CALNAME", name)
    if description:
        calendar.add("DESCRIPTION", description, parameters={"LANGUAGE": lang})
        calendar.add("X-WR-CALDESC", description)
    calendar.add("REFRESH-INTERVAL", _duration(refresh_minutes), parameters={"VALUE": "DURATION"})
    calendar.add("X-PUBLISHED-TTL", _duration(refresh_minutes))

    ordered = sorted(entries, key=lambda e: (_aware(e.start_at), e.id))
    # Calendar.add_missing_timezones() walks a set (random order per process),
    # so build the VTIMEZONEs ourselves, sorted, before the events.
    for tzid, (first, last) in sorted(_zone_ranges(ordered).items()):
        calendar.add_component(Timezone.from_tzid(tzid, first_date=first, last_date=last))
    for entry in ordered:
        calendar.add_component(_event(entry))
    rendered: bytes = calendar.to_ical()
    return rendered
