"""ICS rendering: parsed back with icalendar and, independently, vobject."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import vobject
from icalendar import Calendar, Event

from node.catalogue.entry import CatalogueEntry
from node.catalogue.ics import PRODID, ics_status, render_calendar

BERLIN = ZoneInfo("Europe/Berlin")
MODIFIED = datetime(2026, 11, 20, 8, 15, 0, tzinfo=UTC)


def make_entry(**changes: Any) -> CatalogueEntry:
    """A realistic partner session; ``start``/``minutes`` derive the times."""
    session_id = changes.pop("session_id", "s-0001")
    origin = changes.pop("origin", "lex.example.org")
    tz = changes.pop("timezone", "Europe/Berlin")
    start = changes.pop("start", None) or datetime(2026, 12, 3, 10, 0, tzinfo=ZoneInfo(tz))
    minutes = changes.pop("minutes", 90)
    values: dict[str, Any] = {
        "id": f"{session_id}@{origin}",
        "origin": origin,
        "session_id": session_id,
        "org_name": "LEX – Lernen im Netzwerk",
        "is_local": False,
        "version": 3,
        "title": "KI-Prompting für Einsteiger",
        "description": "Wie formuliere ich gute Prompts? Übungen zum Mitmachen.",
        "format": "workshop",
        "languages": ("de",),
        "start_at": start.astimezone(UTC),
        "end_at": (start + timedelta(minutes=minutes)).astimezone(UTC),
        "timezone": tz,
        "duration_minutes": minutes,
        "host_name": "Jörg Weiß",
        "tags": ("KI", "Prompting"),
        "status": "scheduled",
        "seats_open": 5,
        "seats_remaining": 3,
        "registration_mode": "auto",
        "waitlist": True,
        "email_required": False,
        "details_url": None,
        "registration_url": f"https://portal.example.org/sitzungen/{session_id}@{origin}",
        "sequence": 2,
        "modified_at": MODIFIED,
    }
    values.update(changes)
    return CatalogueEntry(**values)


@pytest.fixture(autouse=True)
def fresh_vobject_timezones() -> Iterator[None]:
    """vobject keeps parsed VTIMEZONEs in a module-global map; isolate tests."""
    registry: dict[str, Any] = vars(vobject.icalendar)["__tzidMap"]
    saved = dict(registry)
    registry.clear()
    registry.update({k: v for k, v in saved.items() if k == "UTC"})
    yield
    registry.clear()
    registry.update(saved)


def render(entries: list[CatalogueEntry], **kwargs: Any) -> bytes:
    kwargs.setdefault("name", "OpenSeats-Katalog")
    return render_calendar(entries, **kwargs)


def events(data: bytes) -> list[Event]:
    return list(Calendar.from_ical(data).walk("VEVENT"))


def vevent_block(text: str) -> str:
    return text[text.index("BEGIN:VEVENT") : text.rindex("END:VEVENT")]


def test_calendar_header() -> None:
    data = render([make_entry()], description="Offene Sitzungen der Allianz", refresh_minutes=30)
    cal = Calendar.from_ical(data)
    assert str(cal["PRODID"]) == PRODID
    assert str(cal["VERSION"]) == "2.0"
    assert str(cal["CALSCALE"]) == "GREGORIAN"
    assert str(cal["METHOD"]) == "PUBLISH"
    assert str(cal["NAME"]) == "OpenSeats-Katalog"
    assert str(cal["X-WR-CALNAME"]) == "OpenSeats-Katalog"
    assert str(cal["X-WR-CALDESC"]) == "Offene Sitzungen der Allianz"
    text = data.decode()
    assert "\r\nREFRESH-INTERVAL;VALUE=DURATION:PT30M\r\n" in text
    assert "\r\nX-PUBLISHED-TTL:PT30M\r\n" in text
    assert "\r\nNAME;LANGUAGE=de:OpenSeats-Katalog\r\n" in text
    assert "X-WR-CALDESC" not in render([make_entry()]).decode()


def test_event_properties() -> None:
    entry = make_entry()
    data = render([entry])
    (event,) = events(data)
    assert str(event["UID"]) == "s-0001@lex.example.org"
    assert int(event["SEQUENCE"]) == 2
    assert event["DTSTAMP"].dt == MODIFIED
    assert event["LAST-MODIFIED"].dt == MODIFIED
    assert event["DTSTART"].dt == datetime(2026, 12, 3, 10, 0, tzinfo=BERLIN)
    assert event["DTEND"].dt == datetime(2026, 12, 3, 11, 30, tzinfo=BERLIN)
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert event["DTEND"].params["TZID"] == "Europe/Berlin"
    assert "DURATION" not in event
    assert str(event["SUMMARY"]) == "KI-Prompting für Einsteiger"
    assert event["SUMMARY"].params["LANGUAGE"] == "de"
    assert str(event["URL"]) == entry.registration_url
    assert str(event["STATUS"]) == "CONFIRMED"
    assert str(event["CONTACT"]) == "LEX – Lernen im Netzwerk"
    assert str(event["TRANSP"]) == "OPAQUE"
    assert str(event["CLASS"]) == "PUBLIC"
    assert event["CATEGORIES"].cats == ["Werkstatt", "KI", "Prompting"]
    assert "ORGANIZER" not in event
    description = str(event["DESCRIPTION"])
    assert description == (
        "Wie formuliere ich gute Prompts? Übungen zum Mitmachen.\n\n"
        "Gastgeber:in / Host: Jörg Weiß\n"
        "Organisation: LEX – Lernen im Netzwerk\n"
        "Freie Partnerplätze / open partner seats: 3 von 5\n"
        f"Anmeldung / Registration: {entry.registration_url}"
    )
    text = data.decode()
    assert "DTSTAMP:20261120T081500Z\r\n" in text
    assert "LAST-MODIFIED:20261120T081500Z\r\n" in text
    assert "DTSTART;TZID=Europe/Berlin:20261203T100000\r\n" in text
    assert "DTEND;TZID=Europe/Berlin:20261203T113000\r\n" in text


def test_no_seat_line_without_open_seats() -> None:
    (event,) = events(render([make_entry(seats_open=0, seats_remaining=0)]))
    assert "Partnerplätze" not in str(event["DESCRIPTION"])


def test_vobject_parses_the_same_event() -> None:
    entry = make_entry()
    cal = vobject.readOne(render([entry]).decode("utf-8"))
    (event,) = cal.vevent_list
    assert event.uid.value == entry.id
    assert event.sequence.value == "2"
    assert event.dtstamp.value == MODIFIED
    assert event.last_modified.value == MODIFIED
    assert event.dtstart.value == datetime(2026, 12, 3, 10, 0, tzinfo=BERLIN)
    assert event.dtstart.value.utcoffset() == timedelta(hours=1)
    assert event.dtend.value - event.dtstart.value == timedelta(minutes=90)
    assert not hasattr(event, "duration")
    assert event.summary.value == "KI-Prompting für Einsteiger"
    assert event.url.value == entry.registration_url
    assert entry.registration_url in event.description.value
    assert event.status.value == "CONFIRMED"
    assert [tz.tzid.value for tz in cal.vtimezone_list] == ["Europe/Berlin"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("scheduled", "CONFIRMED"),
        ("rescheduled", "CONFIRMED"),
        ("postponed", "TENTATIVE"),
        ("cancelled", "CANCELLED"),
        ("something-new", "TENTATIVE"),
    ],
)
def test_status(status: str, expected: str) -> None:
    assert ics_status(status) == expected
    (event,) = events(render([make_entry(status=status)]))
    assert str(event["STATUS"]) == expected


def test_cancelled_is_never_confirmed() -> None:
    entries = [
        make_entry(session_id="s-1", status="cancelled"),
        make_entry(
            session_id="s-2", status="scheduled", start=datetime(2026, 12, 4, 9, tzinfo=BERLIN)
        ),
    ]
    data = render(entries)
    by_uid = {str(e["UID"]): str(e["STATUS"]) for e in events(data)}
    assert by_uid == {"s-1@lex.example.org": "CANCELLED", "s-2@lex.example.org": "CONFIRMED"}
    cal = vobject.readOne(data.decode())
    assert sorted(e.status.value for e in cal.vevent_list) == ["CANCELLED", "CONFIRMED"]


def test_vtimezones_only_for_zones_in_use() -> None:
    entries = [
        make_entry(session_id="b"),
        make_entry(session_id="l", timezone="Europe/London"),
        make_entry(session_id="u", timezone="UTC"),
    ]
    data = render(entries)
    cal = Calendar.from_ical(data)
    assert sorted(tz.tz_name for tz in cal.timezones) == ["Europe/Berlin", "Europe/London"]
    assert cal.get_missing_tzids() == set()
    text = data.decode()
    assert "DTSTART:20261203T100000Z\r\n" in text  # UTC: Z suffix, no TZID
    assert "TZID=UTC" not in text
    assert "TZID:UTC" not in text
    # VTIMEZONEs come before the events that use them.
    assert text.index("END:VTIMEZONE") < text.index("BEGIN:VEVENT")
    vcal = vobject.readOne(text)
    assert sorted(tz.tzid.value for tz in vcal.vtimezone_list) == ["Europe/Berlin", "Europe/London"]


def test_utc_only_calendar_has_no_vtimezone() -> None:
    data = render([make_entry(timezone="UTC")])
    assert b"VTIMEZONE" not in data


def test_unknown_timezone_falls_back_to_utc() -> None:
    entry = make_entry(timezone="Mars/Olympus_Mons", start=datetime(2026, 12, 3, 9, tzinfo=UTC))
    data = render([entry])
    assert b"VTIMEZONE" not in data
    (event,) = events(data)
    assert event["DTSTART"].dt == datetime(2026, 12, 3, 9, tzinfo=UTC)


def test_vtimezone_is_limited_to_the_years_in_use() -> None:
    data = render([make_entry()])
    (tz,) = Calendar.from_ical(data).timezones
    assert "2026-01-01 to 2027-01-01" in str(tz["COMMENT"])
    text = data.decode()
    assert "2025" not in text
    assert "2028" not in text
    # The whole year, so a winter session still carries the summer-time rule.
    assert {c.name for c in tz.subcomponents} == {"STANDARD", "DAYLIGHT"}


def test_session_across_new_year_covers_both_years() -> None:
    entry = make_entry(start=datetime(2026, 12, 31, 23, 30, tzinfo=BERLIN), minutes=60)
    (tz,) = Calendar.from_ical(render([entry])).timezones
    assert "2026-01-01 to 2028-01-01" in str(tz["COMMENT"])


def vtimezone_bytes(data: bytes) -> bytes:
    return data[data.index(b"BEGIN:VTIMEZONE") : data.rindex(b"END:VTIMEZONE")]


def test_same_year_gives_same_vtimezone_bytes() -> None:
    winter = make_entry(session_id="winter")
    summer = make_entry(session_id="sommer", start=datetime(2026, 7, 2, 10, tzinfo=BERLIN))
    single = render_calendar([winter], name=winter.title)
    feed = render([winter, summer])
    assert vtimezone_bytes(single) == vtimezone_bytes(feed)


def test_vobject_tzid_cache_still_knows_summer_time() -> None:
    """Why the range is whole years: vobject caches VTIMEZONE by TZID."""
    winter = make_entry(session_id="winter")
    summer = make_entry(session_id="sommer", start=datetime(2026, 7, 2, 10, tzinfo=BERLIN))
    vobject.readOne(render_calendar([winter], name="Einzeltermin").decode())
    vcal = vobject.readOne(render([summer]).decode())
    assert vcal.vevent.dtstart.value.utcoffset() == timedelta(hours=2)


def test_dst_summer_and_winter_keep_local_wall_time() -> None:
    summer = make_entry(
        session_id="sommer", start=datetime(2026, 7, 2, 10, tzinfo=BERLIN), minutes=60
    )
    winter = make_entry(
        session_id="winter", start=datetime(2026, 12, 3, 10, tzinfo=BERLIN), minutes=60
    )
    data = render([winter, summer])
    text = data.decode()
    assert "DTSTART;TZID=Europe/Berlin:20260702T100000\r\n" in text
    assert "DTSTART;TZID=Europe/Berlin:20261203T100000\r\n" in text
    (tz,) = Calendar.from_ical(data).timezones
    kinds = {c.name for c in tz.subcomponents}
    assert kinds == {"STANDARD", "DAYLIGHT"}
    # vobject resolves the times through the VTIMEZONE we emitted.
    vcal = vobject.readOne(text)
    starts = {e.uid.value: e.dtstart.value for e in vcal.vevent_list}
    assert starts["sommer@lex.example.org"].utcoffset() == timedelta(hours=2)
    assert starts["winter@lex.example.org"].utcoffset() == timedelta(hours=1)
    assert starts["sommer@lex.example.org"].astimezone(UTC) == datetime(2026, 7, 2, 8, tzinfo=UTC)
    assert starts["winter@lex.example.org"].astimezone(UTC) == datetime(2026, 12, 3, 9, tzinfo=UTC)
    assert all((s.hour, s.minute) == (10, 0) for s in starts.values())


def test_byte_identical_for_same_input_in_any_order() -> None:
    entries = [
        make_entry(session_id="a", start=datetime(2026, 12, 3, 10, tzinfo=BERLIN)),
        make_entry(session_id="b", start=datetime(2026, 12, 3, 10, tzinfo=BERLIN)),
        make_entry(session_id="c", timezone="Europe/London"),
        make_entry(session_id="d", start=datetime(2026, 6, 1, 14, tzinfo=BERLIN)),
    ]
    first = render(entries)
    assert render(entries) == first
    assert render(list(reversed(entries))) == first
    assert render([entries[2], entries[0], entries[3], entries[1]]) == first
    uids = [str(e["UID"]) for e in events(first)]
    assert uids == [
        "d@lex.example.org",
        "a@lex.example.org",
        "b@lex.example.org",
        "c@lex.example.org",
    ]


def test_does_not_read_the_wall_clock() -> None:
    data = render([make_entry()]).decode()
    stamps = re.findall(r"^(?:DTSTAMP|LAST-MODIFIED):(\S+)\r$", data, flags=re.M)
    assert stamps == ["20261120T081500Z", "20261120T081500Z"]
    assert str(datetime.now(UTC).year + 5) not in data


def test_no_join_link_anywhere() -> None:
    data = render([make_entry(), make_entry(session_id="x", status="cancelled")]).decode().lower()
    for needle in ("conference", "location", "teams", "meet", "zoom", "webex", "join"):
        assert needle not in data, needle


def test_umlauts_and_long_description_fold_and_round_trip() -> None:
    long_text = ("Größere Übungen mit Äpfeln, Öl und Straßenkarten – " * 12).strip()
    entry = make_entry(
        title="Über Ängste & Öffentlichkeit: ß ist kein Problem", description=long_text
    )
    data = render([entry])
    for line in data.split(b"\r\n"):
        assert len(line) <= 75
        line.decode("utf-8")  # folding never splits a multi-byte character
    assert b"\n" not in data.replace(b"\r\n", b"")
    (event,) = events(data)
    assert str(event["SUMMARY"]) == entry.title
    assert str(event["DESCRIPTION"]).startswith(long_text + "\n\n")
    vevent = vobject.readOne(data.decode("utf-8")).vevent
    assert vevent.summary.value == entry.title
    assert vevent.description.value.startswith(long_text + "\n\n")


@pytest.mark.parametrize(
    "title",
    [
        "Evil\r\nEND:VEVENT\r\nBEGIN:VEVENT",
        "Evil\nEND:VEVENT\nBEGIN:VEVENT\nUID:x@y",
        "Evil\rEND:VCALENDAR",
        'Semi;colon,comma\\back "quote" <script>alert(1)</script>',
    ],
)
def test_injection_in_text_cannot_create_components(title: str) -> None:
    entry = make_entry(title=title, description=title, tags=(title,), host_name=title)
    data = render([entry])
    text = data.decode()
    lines = text.split("\r\n")
    assert lines.count("BEGIN:VEVENT") == 1
    assert lines.count("END:VEVENT") == 1
    assert lines.count("END:VCALENDAR") == 1
    # Every physical line is a property, a component boundary or a fold.
    assert all(re.match(r"^([A-Z-]+[;:]| |$)", line) for line in lines)
    (event,) = events(data)
    assert str(event["UID"]) == entry.id
    vcal = vobject.readOne(text)
    assert len(vcal.vevent_list) == 1
    assert vcal.vevent.uid.value == entry.id
    # The title survives as text (line breaks normalised to \n).
    assert vcal.vevent.summary.value.replace("\r\n", "\n").replace("\r", "\n") == str(
        event["SUMMARY"]
    )


def test_empty_catalogue() -> None:
    cal = Calendar.from_ical(render([]))
    assert cal.walk("VEVENT") == []
    assert cal.timezones == []


def test_single_session_file() -> None:
    entry = make_entry()
    data = render_calendar([entry], name=entry.title)
    cal = vobject.readOne(data.decode())
    assert cal.vevent.uid.value == entry.id
    assert Calendar.from_ical(data)["X-WR-CALNAME"] == entry.title


def test_entry_without_languages_tags_or_description() -> None:
    entry = make_entry(languages=(), tags=(), description="", format="other")
    (event,) = events(render([entry]))
    assert "LANGUAGE" not in event["SUMMARY"].params
    assert "CATEGORIES" not in event
    assert str(event["DESCRIPTION"]).startswith("Gastgeber:in / Host: Jörg Weiß\n")


def test_refresh_must_be_positive() -> None:
    with pytest.raises(ValueError, match="refresh_minutes"):
        render([make_entry()], refresh_minutes=0)


def test_dataclass_is_rendered_not_mutated() -> None:
    entry = make_entry()
    before = dataclasses.asdict(entry)
    render([entry])
    assert dataclasses.asdict(entry) == before
    assert date(2026, 12, 3) == entry.start_at.astimezone(BERLIN).date()
