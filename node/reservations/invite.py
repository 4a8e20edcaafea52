"""The personal invitation (``/api/v1/reservations/{id}.ics``), RFC 5545/5546.

- ``METHOD:REQUEST`` while the reservation lives; ``METHOD:CANCEL`` with
  ``STATUS:CANCELLED`` once it was cancelled or rejected, or the host
  cancelled the session.
- ``UID`` is ``{reservation id}@{our node id}``: the attendee's own event,
  never merged with the catalogue's public event of the session.
- ``SEQUENCE`` is our count of state changes plus the catalogue entry's
  own change counter, so it grows with every change a calendar must apply
  (confirmation, cancellation, a new time).
- The join link (``CONFERENCE``, RFC 7986, and in ``DESCRIPTION`` for
  clients that ignore ``CONFERENCE``) appears only once the host confirmed.
- Times come from the catalogue when it still has the session (a new time
  reaches the invite), else from what the reservation remembered.
"""

from __future__ import annotations

from datetime import UTC, date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Event, Timezone, vCalAddress

from node.catalogue.entry import CatalogueEntry
from node.catalogue.ics import PRODID
from node.reservations.requester import FINAL, OutgoingRow

STATUS = {"confirmed": "CONFIRMED"}
PARTSTAT = {"confirmed": "ACCEPTED", "rejected": "DECLINED", "cancelled": "DECLINED"}


def is_cancelled(row: OutgoingRow, entry: CatalogueEntry | None) -> bool:
    return row.state in FINAL or (entry is not None and entry.status == "cancelled")


def _zone(name: str) -> ZoneInfo | None:
    if name in ("UTC", "Etc/UTC", "Z"):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def render_invite(row: OutgoingRow, entry: CatalogueEntry | None, node_id: str) -> bytes:
    cancelled = is_cancelled(row, entry)
    start, end = (entry.start_at, entry.end_at) if entry else (row.start_at, row.end_at)
    zone = _zone(entry.timezone if entry else row.timezone)
    if zone is not None:
        start, end = start.astimezone(zone), end.astimezone(zone)
    calendar = Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("METHOD", "CANCEL" if cancelled else "REQUEST")
    if zone is not None:
        calendar.add_component(
            Timezone.from_tzid(
                str(zone.key),
                first_date=date(start.year, 1, 1),
                last_date=date(end.year + 1, 1, 1),
            )
        )
    event = Event()
    event.add("UID", f"{row.id}@{node_id}")
    event.add("SEQUENCE", row.ics_sequence + (entry.sequence if entry else 0))
    event.add("DTSTAMP", row.updated_at.astimezone(UTC))
    event.add("DTSTART", start)
    event.add("DTEND", end)
    event.add("SUMMARY", entry.title if entry else row.title)
    confirmed = row.state == "confirmed" and not cancelled
    event.add("DESCRIPTION", _description(row, entry, confirmed))
    event.add("STATUS", "CANCELLED" if cancelled else STATUS.get(row.state, "TENTATIVE"))
    organizer = vCalAddress(f"mailto:noreply@{row.host}")
    organizer.params["CN"] = entry.org_name if entry else row.org_name
    event.add("ORGANIZER", organizer)
    if row.attendee_email:
        attendee = vCalAddress(f"mailto:{row.attendee_email}")
        attendee.params["CN"] = row.attendee_name
        attendee.params["PARTSTAT"] = PARTSTAT.get(row.state, "TENTATIVE")
        event.add("ATTENDEE", attendee)
    if confirmed and row.join_url:
        event.add(
            "CONFERENCE",
            row.join_url,
            parameters={"VALUE": "URI", "FEATURE": "AUDIO,VIDEO", "LABEL": "Teilnehmen / Join"},
        )
    event.add("TRANSP", "TRANSPARENT" if cancelled else "OPAQUE")
    calendar.add_component(event)
    rendered: bytes = calendar.to_ical()
    return rendered


def _description(row: OutgoingRow, entry: CatalogueEntry | None, confirmed: bool) -> str:
    lines = [f"Organisation: {entry.org_name if entry else row.org_name}"]
    if entry is not None:
        lines.append(f"Gastgeber:in / Host: {entry.host_name}")
    lines.append(f"Reservierung / reservation: {_state_label(row)}")
    if confirmed and row.join_url:
        lines.append(f"Teilnahme-Link / join: {row.join_url}")
    if entry is not None and entry.description:
        lines += ["", entry.description]
    return "\n".join(lines)


def _state_label(row: OutgoingRow) -> str:
    labels = {
        "requested": "angefragt / requested",
        "held": "vorgemerkt / held",
        "confirmed": "bestätigt / confirmed",
        "waitlisted": f"Warteliste, Platz {row.position} / waitlisted, position {row.position}",
        "pending": "wartet auf Freigabe / awaiting approval",
        "rejected": f"abgelehnt / rejected ({row.reason})",
        "cancelled": "storniert / cancelled",
    }
    return labels.get(row.state, row.state)
