"""Sessions from an iCalendar file (Outlook, SharePoint, Google, Nextcloud).

A VEVENT becomes one session keyed by its UID.  A recurring one (RRULE or
RDATE) becomes one session per instance in ``[now, now + horizon]``, keyed
``"{uid}#{instance start in UTC}"`` (``abc@datev#20261203T090000Z``).
EXDATEs drop instances; a VEVENT with the same UID and a RECURRENCE-ID
replaces the instance it names and keeps that key even when it moves.
Properties an override lacks are taken from its series.

How vague calendar data is read (timezones, host, format, join link,
cancellation, the past) is described in the package docstring.  icalendar
caches custom VTIMEZONEs process-wide by TZID, so for a value with a TZID
we keep only the wall-clock time and resolve the TZID ourselves: one
uploaded calendar can never change how another one is read.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rruleset, rrulestr  # type: ignore[import-untyped]
from icalendar import Calendar, Component, vBroken, vRecur
from icalendar.timezone import tzp

from node.imports.report import (
    ImportedSession,
    ImportFileError,
    ImportProblem,
    ParseResult,
    RecordRejected,
    check_session,
    format_from_title,
    meeting_link,
    parse_format,
    parse_languages,
    require_aware,
    resolve_timezone,
    strip_cancel_prefix,
)
from protocol.models.announcement import is_known_timezone

MAX_INSTANCES = 500
_UNSUPPORTED_FREQ = {"SECONDLY", "MINUTELY", "HOURLY"}
_CONFERENCE_PROPS = (
    "X-MICROSOFT-ONLINEMEETINGURL",
    "X-MICROSOFT-SKYPETEAMSMEETINGURL",
    "X-GOOGLE-CONFERENCE",
    "CONFERENCE",
)
_URL = re.compile(r"https?://[^\s/?#]+\S*")
_ALL_DAY = (
    "Ganztägiger Termin ohne Uhrzeit wird nicht importiert "
    "/ all-day event without a time of day is not imported"
)


def parse_ics(
    data: bytes,
    *,
    now: datetime,
    horizon_days: int = 365,
    default_timezone: str = "Europe/Berlin",
) -> ParseResult:
    """Parse a calendar; bad events become problems, the rest sessions."""
    require_aware(now)
    if horizon_days < 0:
        raise ValueError("horizon_days must not be negative")
    if not is_known_timezone(default_timezone):
        raise ValueError(f"unknown default timezone {default_timezone!r}")
    calendar = _load(data)
    events = [c for c in calendar.subcomponents if c.name == "VEVENT"]
    if not events:
        raise ImportFileError("empty", "Kalender enthält keine Termine / calendar has no events")
    reader = _Reader(calendar, now, now + timedelta(days=horizon_days), default_timezone)
    reader.read(events)
    reader.result.sessions.sort(key=lambda s: (s.session.start.astimezone(UTC), s.key))
    return reader.result


def _load(data: bytes) -> Calendar:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFileError(
            "bad_encoding", "Kalenderdatei ist nicht UTF-8 / calendar file is not UTF-8"
        ) from None
    if "\x00" in text:  # no text holds one, and PostgreSQL could not store it
        raise ImportFileError(
            "bad_encoding", "Kalenderdatei enthält NUL-Zeichen / calendar file contains NUL"
        )
    if not text.strip():
        raise ImportFileError("empty", "Datei ist leer / file is empty")
    calendar: object = None
    if text.lstrip().upper().startswith("BEGIN:VCALENDAR"):
        with (
            warnings.catch_warnings(),
            suppress(ValueError, TypeError, KeyError, IndexError, AttributeError),
        ):
            warnings.simplefilter("ignore")
            calendar = Calendar.from_ical(text)
    if not isinstance(calendar, Calendar) or calendar.name != "VCALENDAR":
        raise ImportFileError(
            "bad_ics",
            "Keine gültige iCalendar-Datei (.ics), evtl. unvollständig "
            "/ not a valid iCalendar (.ics) file, possibly truncated",
        )
    return calendar


def _text(value: Any) -> str:
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None or isinstance(value, vBroken):
        return ""
    return (value.decode() if isinstance(value, bytes) else str(value)).strip()


def _all(value: Any) -> list[Any]:
    return [] if value is None else value if isinstance(value, list) else [value]


def _stamp(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _in_zone(value: datetime, zone: str) -> datetime:
    tz = ZoneInfo(zone)
    return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)


@dataclass
class _Series:
    """The master VEVENT of a recurring series, as overrides inherit from it."""

    event: Component
    minutes: int


class _Reader:
    def __init__(self, calendar: Calendar, now: datetime, until: datetime, zone: str) -> None:
        self.calendar = calendar
        self.now = now
        self.until = until
        self.default_zone = zone
        self.cancel_all = _text(calendar.get("METHOD")).upper() == "CANCEL"
        self.result = ParseResult()
        self.keys: set[str] = set()
        self.zones: dict[str, str] = {}

    def read(self, events: list[Component]) -> None:
        overrides: dict[str, list[Component]] = {}
        recurring: set[str] = set()
        for event in events:
            uid = _text(event.get("UID"))
            if uid and "RECURRENCE-ID" in event:
                overrides.setdefault(uid, []).append(event)
            elif uid and ("RRULE" in event or "RDATE" in event):
                recurring.add(uid)
        for number, event in enumerate(events, 1):
            uid = _text(event.get("UID"))
            where = f"UID {uid}" if uid else f"VEVENT #{number}"
            try:
                if "RECURRENCE-ID" in event:
                    if uid not in recurring:  # an override without its series stands alone
                        instant = self._rid_instant(event, None)
                        key = f"{uid or self._hashed(event)}#{_stamp(instant)}"
                        self._single(event, f"UID {key}", key, series=None)
                elif "RRULE" in event or "RDATE" in event:
                    self._series(event, where, uid, overrides.get(uid, []) if uid else [])
                else:
                    self._single(event, where, uid or self._hashed(event), series=None)
            except RecordRejected as rejected:
                self._problems(where, rejected)

    def _problems(self, where: str, rejected: RecordRejected) -> None:
        self.result.problems += [ImportProblem(where, c, m) for c, m in rejected.problems]

    def _hashed(self, event: Component) -> str:
        start: Any = next(iter(_all(event.get("DTSTART"))), None)
        basis = f"{start.params.to_ical().decode()}:{start.to_ical().decode()}\n" if start else ""
        basis += _text(event.get("SUMMARY"))
        return "ics-" + hashlib.sha256(basis.encode()).hexdigest()[:16]

    def _emit(self, where: str, key: str, session: ImportedSession) -> None:
        if key in self.keys:
            raise RecordRejected(
                "duplicate_key",
                f"UID {key!r} kommt mehrfach vor; nur der erste Termin zählt "
                f"/ UID {key!r} is repeated; only the first event counts",
            )
        self.keys.add(key)
        self.result.sessions.append(session)

    # --- dates and timezones ---------------------------------------------------

    def _start(self, event: Component) -> date | datetime:
        value = self._moment(event, "DTSTART")
        if value is None:
            raise RecordRejected("missing_dtstart", "DTSTART fehlt / DTSTART is missing")
        return value

    def _moment(self, event: Component, name: str) -> date | datetime | None:
        prop = event.get(name)
        if isinstance(prop, list):
            raise RecordRejected("bad_value", f"{name} mehrfach / {name} given more than once")
        if prop is None or isinstance(prop, vBroken):
            return None if prop is None else self._aware(None, {}, name)
        return self._aware(getattr(prop, "dt", None), prop.params, name)

    def _aware(self, value: Any, params: Any, name: str) -> date | datetime:
        """A date as is; a datetime made aware in the IANA zone its TZID names."""
        value = value[0] if isinstance(value, tuple) else value  # PERIOD
        if not isinstance(value, date):
            raise RecordRejected(
                "bad_date", f"{name} ist kein gültiges Datum / {name} is not a valid date"
            )
        if not isinstance(value, datetime):
            return value
        if tzid := str(params.get("TZID", "")).strip():
            wall = value.replace(tzinfo=None)
            return wall.replace(tzinfo=ZoneInfo(self._zone_named(tzid, wall)))
        return _in_zone(value, self.default_zone) if value.tzinfo is None else value

    def _zone(self, event: Component) -> str:
        """The zone a session is shown in: DTSTART's TZID, else the default."""
        tzid = str(event["DTSTART"].params.get("TZID", "")).strip()
        return self.zones[tzid] if tzid else self.default_zone

    def _zone_named(self, tzid: str, wall: datetime) -> str:
        if tzid not in self.zones:
            known = getattr(tzp.timezone(tzid), "key", None)  # vendor prefixes, CLDR names
            zone = resolve_timezone(tzid) or (known if is_known_timezone(str(known)) else None)
            if zone is None and self._like_default(tzid, wall):
                zone = self.default_zone
            if zone is None:
                raise RecordRejected(
                    "unknown_timezone", f"Unbekannte Zeitzone {tzid!r} / unknown timezone {tzid!r}"
                )
            self.zones[tzid] = zone
        return self.zones[tzid]

    def _like_default(self, tzid: str, wall: datetime) -> bool:
        """Does this calendar's VTIMEZONE ``tzid`` keep the default zone's offsets?"""
        components = [c for c in self.calendar.subcomponents if c.name == "VTIMEZONE"]
        component: Any = next((c for c in components if _text(c.get("TZID")) == tzid), None)
        try:
            custom = component.to_tz(lookup_tzid=False)  # uncached, from this file only
        except (AttributeError, ValueError, TypeError, KeyError, IndexError):
            return False
        reference = ZoneInfo(self.default_zone)
        samples = [wall, wall.replace(month=1, day=15), wall.replace(month=7, day=15)]
        return all(
            s.replace(tzinfo=custom).utcoffset() == s.replace(tzinfo=reference).utcoffset()
            for s in samples
        )

    def _rid_instant(self, event: Component, dtstart: datetime | None) -> datetime:
        """The original start of the instance an override replaces."""
        rid = self._moment(event, "RECURRENCE-ID")
        if isinstance(rid, datetime):
            return rid
        at = dtstart or datetime.min.replace(tzinfo=ZoneInfo(self.default_zone))
        return datetime.combine(rid or at.date(), at.timetz())

    # --- one event ----------------------------------------------------------------

    def _single(self, event: Component, where: str, key: str, series: _Series | None) -> bool:
        """Import one event (or one override); True when it yielded a session."""
        value = self._start(event)
        if not isinstance(value, datetime):
            if value < self.now.astimezone(ZoneInfo(self.default_zone)).date():
                self.result.skipped_past += 1
                return False
            raise RecordRejected("all_day_event", _ALL_DAY)
        if value <= self.now:
            self.result.skipped_past += 1
            return False
        if series is not None and value > self.until:
            return False  # a later import picks it up
        zone = self._zone(event)
        start = value.astimezone(ZoneInfo(zone))
        fields, cancelled = self._fields(event, series.event if series else None)
        fields.update(start=start, timezone=zone, duration_minutes=self._duration(event, series))
        session = check_session(fields, now=self.now)
        self._emit(where, key, ImportedSession(key, session, cancelled))
        return True

    def _duration(self, event: Component, series: _Series | None) -> int:
        if "DTEND" in event:
            end, start = self._moment(event, "DTEND"), self._moment(event, "DTSTART")
            if not isinstance(end, datetime) or not isinstance(start, datetime):
                raise RecordRejected("bad_duration", "DTEND ohne Uhrzeit / DTEND has no time")
            delta = end.astimezone(UTC) - start.astimezone(UTC)
        elif "DURATION" in event:
            prop = event["DURATION"]
            duration = None if isinstance(prop, vBroken) else getattr(prop, "dt", None)
            if not isinstance(duration, timedelta):
                raise RecordRejected("bad_duration", "DURATION ungültig / DURATION is invalid")
            delta = duration
        elif series is not None:
            return series.minutes
        else:
            raise RecordRejected(
                "bad_duration",
                "Weder DTEND noch DURATION angegeben / neither DTEND nor DURATION given",
            )
        return round(delta.total_seconds() / 60)

    def _fields(self, event: Component, master: Component | None) -> tuple[dict[str, object], bool]:
        def get(name: str) -> Any:
            if name in event or master is None:
                return event.get(name)
            return master.get(name)

        summary = get("SUMMARY")
        title, prefixed = strip_cancel_prefix(_text(summary))
        tags: list[str] = []
        for prop in _all(get("CATEGORIES")):
            for tag in [] if isinstance(prop, vBroken) else getattr(prop, "cats", []):
                if str(tag).strip() and str(tag).strip() not in tags:
                    tags.append(str(tag).strip())
        fmt = (
            parse_format(_text(get("X-OPENSEATS-FORMAT")))
            or format_from_title(title)
            or next((f for f in map(parse_format, tags) if f), None)
        )
        fields: dict[str, object] = {
            "title": title,
            "description": _text(get("DESCRIPTION")),
            "host_name": self._host(
                get("X-OPENSEATS-HOST"), next(iter(_all(get("ORGANIZER"))), None)
            ),
            "tags": tags,
        }
        if fmt:
            fields["format"] = fmt
        language = getattr(summary, "params", {}).get("LANGUAGE")
        if language:
            fields["languages"] = parse_languages(str(language))
        if details := _text(get("URL")):
            fields["details_url"] = details
        if join := self._join_url(get):
            fields["join_url"] = join
        status = _text(get("STATUS")).upper()
        return fields, status == "CANCELLED" or prefixed or self.cancel_all

    @staticmethod
    def _host(explicit: Any, organizer: Any) -> str:
        if name := _text(explicit):
            return name
        if organizer is None or isinstance(organizer, vBroken):
            return ""
        if cn := str(organizer.params.get("CN", "")).strip().strip('"'):
            return cn
        address = re.sub(r"^mailto:", "", _text(organizer), flags=re.IGNORECASE)
        return address.partition("@")[0]

    @staticmethod
    def _join_url(get: Any) -> str | None:
        for name in _CONFERENCE_PROPS:
            for value in _all(get(name)):
                if _URL.fullmatch(_text(value)):
                    return _text(value)
        location = _text(get("LOCATION"))
        if _URL.fullmatch(location):
            return location
        return meeting_link(location) or meeting_link(_text(get("DESCRIPTION")))

    # --- recurring series -----------------------------------------------------------

    def _series(self, event: Component, where: str, uid: str, overrides: list[Component]) -> None:
        dtstart = self._start(event)
        if not isinstance(dtstart, datetime):
            raise RecordRejected("all_day_event", _ALL_DAY)
        if dtstart.year < 1900:  # expanding from year 1 takes seconds per event
            raise RecordRejected("bad_date", "DTSTART vor 1900 / DTSTART before 1900")
        zone = self._zone(event)
        dtstart = dtstart.astimezone(ZoneInfo(zone))
        series = _Series(event, self._duration(event, None))
        base = uid or self._hashed(event)
        rules, skip_dates = self._ruleset(event, dtstart, zone)

        replaced: set[datetime] = set()
        emitted = False
        for override in overrides:
            try:
                instant = self._rid_instant(override, dtstart)
                replaced.add(instant.astimezone(UTC))
                key = f"{base}#{_stamp(instant)}"
                emitted |= self._single(override, f"UID {key}", key, series)
            except RecordRejected as rejected:
                self._problems(f"UID {uid} (RECURRENCE-ID)", rejected)

        fields, cancelled = self._fields(event, None)
        fields.update(timezone=zone, duration_minutes=series.minutes)
        instances: list[ImportedSession] = []
        for instant in self._instances(rules, where):
            if instant.date() in skip_dates or instant.astimezone(UTC) in replaced:
                continue
            key = f"{base}#{_stamp(instant)}"
            session = check_session({**fields, "start": instant}, now=self.now)
            instances.append(ImportedSession(key, session, cancelled))
        for imported in instances:
            self._emit(f"UID {imported.key}", imported.key, imported)
        if instances or emitted:
            return
        if rules.after(self.until) is None and rules.before(self.now, inc=True) is not None:
            self.result.skipped_past += 1
            return
        raise RecordRejected(
            "no_usable_instance",
            "Serie hat keinen Termin zwischen jetzt und dem Importhorizont (EXDATE/UNTIL?) "
            "/ series has no instance between now and the import horizon (EXDATE/UNTIL?)",
        )

    def _instances(self, rules: Any, where: str) -> Iterable[datetime]:
        for count, instant in enumerate(rules.xafter(self.now, inc=False)):
            if instant > self.until:
                return
            if count == MAX_INSTANCES:
                message = f"Nur die ersten {MAX_INSTANCES} Termine / only the first {MAX_INSTANCES}"
                self.result.problems.append(ImportProblem(where, "too_many_instances", message))
                return
            yield instant

    def _ruleset(self, event: Component, dtstart: datetime, zone: str) -> tuple[Any, set[date]]:
        rules = rruleset()
        rules.rdate(dtstart)
        for prop in _all(event.get("RRULE")):
            rules.rrule(_rrule(prop, dtstart, zone))
        skip_dates: set[date] = set()
        for name, add in (("RDATE", rules.rdate), ("EXDATE", rules.exdate)):
            for prop in _all(event.get(name)):
                if isinstance(prop, vBroken):
                    raise RecordRejected("bad_date", f"{name} ungültig / {name} is invalid")
                for item in getattr(prop, "dts", []):
                    value = self._aware(item.dt, prop.params, name)
                    if isinstance(value, datetime):
                        add(value.astimezone(ZoneInfo(zone)))
                    elif name == "EXDATE":
                        skip_dates.add(value)
                    else:
                        add(datetime.combine(value, dtstart.timetz()))
        return rules, skip_dates


def _rrule(prop: Any, dtstart: datetime, zone: str) -> Any:
    bad = RecordRejected(
        "bad_rrule",
        f"RRULE ungültig oder öfter als täglich / RRULE invalid or more than daily: {_text(prop)}",
    )
    parts = dict(prop) if isinstance(prop, vRecur) else {}
    if str(parts.get("FREQ", ["SECONDLY"])[0]).upper() in _UNSUPPORTED_FREQ:
        raise bad
    until = (parts.pop("UNTIL", None) or [None])[0]
    try:
        recur: Any = vRecur(parts)
        rule = rrulestr(recur.to_ical().decode(), dtstart=dtstart)
        if isinstance(until, datetime):
            rule = rule.replace(until=_in_zone(until, zone))
        elif isinstance(until, date):
            rule = rule.replace(until=_in_zone(datetime.combine(until, time.max), zone))
    except (ValueError, TypeError):
        raise bad from None
    return rule
