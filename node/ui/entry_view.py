"""How the pages show a catalogue entry or a reservation: dates, formats, languages, seats.

Everything here is presentation only; what an entry *is* comes from
:mod:`node.db.catalogue`.  Times are shown in the session's own timezone,
with the zone named when it is not the alliance's usual Europe/Berlin.
Partners' texts are passed on as plain strings: the templates escape them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from node.catalogue.entry import CatalogueEntry
from node.ui.i18n import Message, Translator
from protocol.models.announcement import SessionFormat
from protocol.models.reservation import RejectReason

USUAL_ZONE = "Europe/Berlin"
FORMATS: tuple[str, ...] = get_args(SessionFormat)
# Languages offered in the filter; others still show with their code.
LANGUAGES = ("de", "en", "fr", "es", "it", "nl", "pl")
REASONS = frozenset(get_args(RejectReason))
STATES = frozenset({"requested", "held", "confirmed", "pending", "rejected", "cancelled"})
WEEKDAYS = (
    "catalogue.monday",
    "catalogue.tuesday",
    "catalogue.wednesday",
    "catalogue.thursday",
    "catalogue.friday",
    "catalogue.saturday",
    "catalogue.sunday",
)
# The labels are the prefixes of their values' keys (catalogue.format_impulse …).
FORMAT_KEY, LANGUAGE_KEY = "catalogue.format", "catalogue.language"
STATE_KEY, REASON_KEY = "reserve.state", "reserve.reason"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def when(t: Translator, start: datetime, end: datetime, timezone: str) -> str:
    """``Di., 12.03.2026, 10:00–11:00 Uhr`` / ``Tue 2026-03-12, 10:00–11:00``."""
    zone = _zone(timezone)
    start, end = start.astimezone(zone), end.astimezone(zone)
    day = start.strftime("%d.%m.%Y") if t.lang == "de" else start.strftime("%Y-%m-%d")
    text = t(
        "catalogue.when",
        weekday=t(WEEKDAYS[start.weekday()]),
        date=day,
        start=start.strftime("%H:%M"),
        end=end.strftime("%H:%M"),
    )
    return text if timezone == USUAL_ZONE else f"{text} ({timezone})"


def format_label(fmt: str) -> str:
    return f"{FORMAT_KEY}_{fmt if fmt in FORMATS else 'other'}"


def language_label(t: Translator, code: str) -> str:
    return t(f"{LANGUAGE_KEY}_{code}") if code in LANGUAGES else code


def seats_message(entry: CatalogueEntry) -> Message:
    if entry.is_local:
        return Message("catalogue.seats_local")
    if entry.status == "cancelled":
        return Message("catalogue.seats_cancelled")
    if entry.seats_remaining > 0:
        return Message("catalogue.seats_left", {"n": entry.seats_remaining})
    if entry.waitlist:
        return Message("catalogue.seats_waitlist")
    return Message("catalogue.seats_full")


def can_reserve(entry: CatalogueEntry, now: datetime) -> bool:
    """Whether the page offers "Platz reservieren" (the host still decides)."""
    return (
        not entry.is_local
        and entry.status != "cancelled"
        and entry.seats_open > 0
        and (entry.seats_remaining > 0 or entry.waitlist)
        and entry.start_at > now
    )


def safe_link(url: str | None) -> str | None:
    """A partner's link, only if it is plain http(s)."""
    if url and url.lower().startswith(("https://", "http://")):
        return url
    return None


@dataclass(frozen=True)
class EntryView:
    entry: CatalogueEntry
    when: str
    format_key: str
    languages: tuple[str, ...]
    seats: Message
    reservable: bool
    details_url: str | None


def entry_view(t: Translator, entry: CatalogueEntry, now: datetime) -> EntryView:
    return EntryView(
        entry=entry,
        when=when(t, entry.start_at, entry.end_at, entry.timezone),
        format_key=format_label(entry.format),
        languages=tuple(language_label(t, code) for code in entry.languages),
        seats=seats_message(entry),
        reservable=can_reserve(entry, now),
        details_url=safe_link(entry.details_url),
    )


def state_message(state: str, position: int | None, cancelled_by: str | None) -> Message:
    """The reservation's state in words: angefragt, bestätigt, Warteliste (Platz N) …"""
    if state == "waitlisted":
        return Message("reserve.state_waitlisted", {"position": position or "?"})
    if state == "cancelled" and cancelled_by == "host":
        return Message("reserve.state_cancelled_by_host")
    return Message(f"{STATE_KEY}_{state if state in STATES else 'requested'}")


def reason_message(reason: str | None) -> Message:
    return Message(f"{REASON_KEY}_{reason if reason in REASONS else 'other'}")
