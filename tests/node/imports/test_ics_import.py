"""ICS import: real-world exports, recurrence, timezones, and each kind of bad event."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from node.imports import ImportFileError, ParseResult, parse_ics
from tests.node.imports.conftest import NOW, read_data

BERLIN = ZoneInfo("Europe/Berlin")
DEFAULTS = (
    "SUMMARY:Impuls: Test",
    "ORGANIZER;CN=Anna Schmidt:mailto:anna.schmidt@example.org",
    "DTSTART;TZID=Europe/Berlin:20261203T100000",
    "DURATION:PT1H",
)


def vevent(*lines: str, uid: str | None = "e1@test") -> str:
    """A VEVENT from DEFAULTS, where ``lines`` replace properties of the same name."""
    names = {line.split(":")[0].split(";")[0] for line in lines}
    kept = [line for line in DEFAULTS if line.split(":")[0].split(";")[0] not in names]
    uid_line = [f"UID:{uid}"] if uid else []
    return "\r\n".join(["BEGIN:VEVENT", *uid_line, *kept, *lines, "END:VEVENT"])


def calendar(*parts: str) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//OpenSeats Test//DE", *parts]
    return "\r\n".join([*lines, "END:VCALENDAR", ""]).encode()


def parse(*parts: str, **kwargs: object) -> ParseResult:
    return parse_ics(calendar(*parts), now=NOW, **kwargs)  # type: ignore[arg-type]


def codes(result: ParseResult) -> list[tuple[str, str]]:
    return [(p.where, p.code) for p in result.problems]


# --- real exports ----------------------------------------------------------------

DATEV_UIDS = {
    "prompting": "040000008200E00074C5B7101A82E00800000000A0B1C2D3E4F5A6010000000000000000"
    "1000000011223344556677889900AABBCCDDEEFF",
    "wol": "040000008200E00074C5B7101A82E00800000000D3E4F5A6B7C8D9010000000000000000"
    "1000000044556677889900AABBCCDDEEFF1122",
}


def test_outlook_export_with_windows_timezone() -> None:
    result = parse_ics(read_data("datev_outlook_export.ics"), now=NOW)

    assert result.problems == []
    assert result.skipped_past == 1  # "Pivot-Tabellen" in October
    by_title = {s.session.title: s for s in result.sessions}
    prompting = by_title["Impuls: KI-Prompting für Einsteiger"]
    assert prompting.key == DATEV_UIDS["prompting"]
    session = prompting.session
    assert session.timezone == "Europe/Berlin"  # from "W. Europe Standard Time"
    assert session.start == datetime(2026, 12, 3, 10, 0, tzinfo=BERLIN)
    assert session.duration_minutes == 60
    assert session.format == "impulse"
    assert session.languages == ["de"]
    assert session.host_name == "Schmidt, Anna"
    assert session.tags == ["KI", "Prompting"]
    assert session.join_url is not None
    assert session.join_url.startswith("https://teams.microsoft.com/l/meetup-join/19%3ameeting_")
    assert "Microsoft Teams-Besprechung" in session.description

    ama = by_title["AMA mit der Personalabteilung"]
    assert ama.session.format == "ama"
    assert ama.session.duration_minutes == 30
    assert ama.session.join_url == (
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_AmAhR@thread.v2/0"
    )

    workshop = by_title["Werkstatt: Barrierefreie PDFs"]  # "Abgesagt: " removed
    assert workshop.cancelled is True
    assert workshop.session.format == "workshop"
    assert [s.cancelled for s in result.sessions].count(True) == 1


def test_outlook_weekly_series_with_exdates_and_a_moved_instance() -> None:
    result = parse_ics(read_data("datev_outlook_export.ics"), now=NOW)
    uid = DATEV_UIDS["wol"]
    series = [s for s in result.sessions if s.key.startswith(uid)]

    # 26.11. … 28.01. without the EXDATEs 24.12. and 31.12.; 05.–19.11. lie before now.
    assert [s.key.removeprefix(uid) for s in series] == [
        "#20261126T150000Z",
        "#20261203T150000Z",
        "#20261210T150000Z",
        "#20261217T150000Z",
        "#20270107T150000Z",
        "#20270114T150000Z",
        "#20270121T150000Z",
        "#20270128T150000Z",
    ]
    moved = series[2].session
    assert moved.start == datetime(2026, 12, 11, 9, 0, tzinfo=BERLIN)  # keeps its key
    assert moved.title.endswith("(Freitag, ausnahmsweise vormittags)")
    assert moved.host_name == "Berger, Ina"  # inherited from the series
    assert moved.join_url == series[0].session.join_url
    assert moved.format == "open_group"
    for instance in series[:2] + series[3:]:
        assert instance.session.start.astimezone(BERLIN).hour == 16
        assert instance.session.duration_minutes == 60
        assert instance.session.tags == ["Working Out Loud"]


def test_reimport_yields_the_same_keys() -> None:
    data = read_data("datev_outlook_export.ics")
    first = [s.key for s in parse_ics(data, now=NOW).sessions]
    assert first == [s.key for s in parse_ics(data, now=NOW).sessions]
    assert len(first) == len(set(first)) == 11  # 3 single events and 8 instances


def test_nextcloud_export_with_europe_berlin_vtimezone() -> None:
    result = parse_ics(read_data("kiwi_nextcloud_berlin.ics"), now=NOW)

    assert result.problems == []
    exchange, ama, circles = (s.session for s in result.sessions)  # sorted by start
    assert exchange.format == "exchange"
    assert exchange.start == datetime(2026, 12, 2, 9, 30, tzinfo=BERLIN)
    assert exchange.host_name == "lena.wagner"  # organizer without CN
    assert exchange.join_url == "https://meet.jit.si/kiwi-e-akte-im-alltag"  # from LOCATION
    assert exchange.details_url == "https://kiwi.example/sessions/e-akte-im-alltag"
    assert exchange.tags == ["E-Akte", "Verwaltung", "Digitalisierung"]
    # A UTC time is kept as the instant and shown in the default timezone.
    assert ama.start == datetime(2026, 12, 9, 13, 0, tzinfo=UTC)
    assert (ama.timezone, ama.start.tzinfo) == ("Europe/Berlin", BERLIN)
    assert ama.host_name == "Dr. Kemal Yılmaz"
    # Summer time: 10:00 in Berlin is 08:00 UTC.
    assert circles.start.astimezone(UTC) == datetime(2027, 6, 15, 8, 0, tzinfo=UTC)
    assert circles.duration_minutes == 90
    assert (circles.host_name, circles.format) == ("Jordan Lee", "open_group")
    assert circles.languages == ["en"]


# --- timezones ---------------------------------------------------------------------

CUSTOM_ZONE = """BEGIN:VTIMEZONE
TZID:Customized Time Zone
BEGIN:STANDARD
DTSTART:16010101T030000
TZOFFSETFROM:{summer}
TZOFFSETTO:{winter}
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010101T020000
TZOFFSETFROM:{winter}
TZOFFSETTO:{summer}
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
END:VTIMEZONE""".replace("\n", "\r\n")


def test_customized_time_zone_with_berlin_offsets_counts_as_berlin() -> None:
    zone = CUSTOM_ZONE.format(winter="+0100", summer="+0200")
    result = parse(zone, vevent("DTSTART;TZID=Customized Time Zone:20261203T100000"))
    assert result.problems == []
    assert result.sessions[0].session.start == datetime(2026, 12, 3, 10, 0, tzinfo=BERLIN)


def test_customized_time_zone_with_other_offsets_is_unknown() -> None:
    zone = CUSTOM_ZONE.format(winter="+0000", summer="+0100")
    result = parse(zone, vevent("DTSTART;TZID=Customized Time Zone:20261203T100000"))
    assert codes(result) == [("UID e1@test", "unknown_timezone")]


def test_one_calendar_cannot_change_how_another_is_read() -> None:
    # icalendar caches custom VTIMEZONEs process-wide by TZID; the first file
    # to define "Customized Time Zone" must not decide how later ones are read.
    event = vevent("DTSTART;TZID=Customized Time Zone:20261203T100000")
    london = CUSTOM_ZONE.format(winter="+0000", summer="+0100")
    berlin = CUSTOM_ZONE.format(winter="+0100", summer="+0200")
    for first, second in ((london, berlin), (berlin, london)):
        parse(first, event)
        result = parse(second, event)
        assert bool(result.sessions) == (second == berlin)
    bogus = CUSTOM_ZONE.format(winter="+0500", summer="+0600").replace(
        "Customized Time Zone", "W. Europe Standard Time"
    )
    parse(bogus, vevent("DTSTART;TZID=W. Europe Standard Time:20261203T100000"))
    outlook = parse_ics(read_data("datev_outlook_export.ics"), now=NOW)
    assert outlook.sessions[1].session.start.astimezone(UTC).hour == 9  # 10:00 CET


@pytest.mark.parametrize(
    ("tzid", "zone"),
    [
        ("W. Europe Standard Time", "Europe/Berlin"),
        ('"(UTC+01:00) Amsterdam, Berlin, Bern, Rom, Stockholm, Wien"', "Europe/Berlin"),
        ("GMT Standard Time", "Europe/London"),
        ("UTC", "UTC"),
        ("/mozilla.org/20050126_1/Europe/Zurich", "Europe/Zurich"),
        ("Europe/Vienna", "Europe/Vienna"),
    ],
)
def test_timezone_names(tzid: str, zone: str) -> None:
    result = parse(vevent(f"DTSTART;TZID={tzid}:20261203T100000"))
    assert result.problems == []
    session = result.sessions[0].session
    assert session.timezone == zone
    assert session.start == datetime(2026, 12, 3, 10, 0, tzinfo=ZoneInfo(zone))


def test_floating_time_is_read_in_the_default_timezone() -> None:
    result = parse(vevent("DTSTART:20261203T100000"), default_timezone="Europe/Vienna")
    assert result.sessions[0].session.start == datetime(
        2026, 12, 3, 10, tzinfo=ZoneInfo("Europe/Vienna")
    )


def test_weekly_series_keeps_wall_clock_time_across_the_clock_change() -> None:
    result = parse(
        vevent("DTSTART;TZID=Europe/Berlin:20270318T100000", "RRULE:FREQ=WEEKLY;COUNT=3")
    )
    assert [s.key for s in result.sessions] == [
        "e1@test#20270318T090000Z",
        "e1@test#20270325T090000Z",
        "e1@test#20270401T080000Z",  # summer time from 28 March
    ]
    assert {s.session.start.astimezone(BERLIN).hour for s in result.sessions} == {10}


# --- recurrence ------------------------------------------------------------------


def test_expansion_stops_at_the_horizon() -> None:
    result = parse(
        vevent("DTSTART;TZID=Europe/Berlin:20261126T100000", "RRULE:FREQ=WEEKLY"),
        horizon_days=30,
    )
    assert [s.session.start.day for s in result.sessions] == [26, 3, 10, 17]


def test_overridden_instance_can_be_cancelled() -> None:
    result = parse(
        vevent("DTSTART;TZID=Europe/Berlin:20261126T100000", "RRULE:FREQ=WEEKLY;COUNT=3"),
        vevent("RECURRENCE-ID;TZID=Europe/Berlin:20261203T100000", "STATUS:CANCELLED"),
    )
    assert [(s.key, s.cancelled) for s in result.sessions] == [
        ("e1@test#20261126T090000Z", False),
        ("e1@test#20261203T090000Z", True),
        ("e1@test#20261210T090000Z", False),
    ]


def test_rdate_until_as_date_and_exdate_as_date() -> None:
    result = parse(
        vevent(
            "DTSTART;TZID=Europe/Berlin:20261201T100000",
            "RRULE:FREQ=WEEKLY;UNTIL=20261215",
            "EXDATE;VALUE=DATE:20261208",
            "RDATE;TZID=Europe/Berlin:20261202T140000",
        )
    )
    assert [s.session.start for s in result.sessions] == [
        datetime(2026, 12, 1, 10, tzinfo=BERLIN),
        datetime(2026, 12, 2, 14, tzinfo=BERLIN),
        datetime(2026, 12, 15, 10, tzinfo=BERLIN),
    ]


def test_override_without_its_series_keeps_the_instance_key() -> None:
    result = parse(vevent("RECURRENCE-ID:20261203T090000Z"))
    assert [s.key for s in result.sessions] == ["e1@test#20261203T090000Z"]


def test_series_entirely_in_the_past_is_skipped_not_reported() -> None:
    result = parse(
        vevent("DTSTART;TZID=Europe/Berlin:20250902T100000", "RRULE:FREQ=WEEKLY;COUNT=3")
    )
    assert (result.sessions, result.problems, result.skipped_past) == ([], [], 1)


def test_series_beginning_after_the_horizon_has_no_usable_instance() -> None:
    result = parse(
        vevent("DTSTART;TZID=Europe/Berlin:20270301T100000", "RRULE:FREQ=WEEKLY"),
        horizon_days=30,
    )
    assert codes(result) == [("UID e1@test", "no_usable_instance")]


@pytest.mark.parametrize("rule", ["RRULE:FREQ=HOURLY;COUNT=5", "RRULE:FREQ=FORTNIGHTLY"])
def test_unusable_rules(rule: str) -> None:
    assert codes(parse(vevent(rule))) == [("UID e1@test", "bad_rrule")]


def test_expansion_is_capped() -> None:
    result = parse(
        vevent("DTSTART;TZID=Europe/Berlin:20261124T090000", "RRULE:FREQ=DAILY;BYHOUR=9,11")
    )
    assert len(result.sessions) == 500
    assert codes(result) == [("UID e1@test", "too_many_instances")]


# --- other properties ------------------------------------------------------------


def test_teams_link_is_found_in_the_description() -> None:
    description = (
        "DESCRIPTION:Hier klicken<https://teams.microsoft.com/l/meetup-join/19%3am_x@thread.v2/0>"
    )
    result = parse(vevent(description, "LOCATION:Raum 4.07"))
    assert result.sessions[0].session.join_url == (
        "https://teams.microsoft.com/l/meetup-join/19%3am_x@thread.v2/0"
    )


def test_method_cancel_cancels_every_event() -> None:
    result = parse("METHOD:CANCEL", vevent())
    assert result.sessions[0].cancelled is True


def test_event_without_uid_gets_a_stable_hashed_key() -> None:
    first = parse(vevent(uid=None))
    assert first.sessions[0].key.startswith("ics-")
    assert first.sessions[0].key == parse(vevent(uid=None)).sessions[0].key
    assert first.sessions[0].key != parse(vevent("SUMMARY:Anders", uid=None)).sessions[0].key


def test_repeated_uid_keeps_the_first_event() -> None:
    result = parse(vevent("SUMMARY:Erster"), vevent("SUMMARY:Zweiter"))
    assert [s.session.title for s in result.sessions] == ["Erster"]
    assert codes(result) == [("UID e1@test", "duplicate_key")]


# --- bad events and files ----------------------------------------------------------


def test_each_bad_event_is_reported_and_the_rest_imports() -> None:
    result = parse_ics(read_data("problem_events.ics"), now=NOW)

    assert codes(result) == [
        ("UID ohne-beginn@datev.example", "missing_dtstart"),
        ("UID ganztags@datev.example", "all_day_event"),
        ("UID serie-ohne-termin@datev.example", "no_usable_instance"),
        ("UID ohne-ende@datev.example", "bad_duration"),
        ("UID mars@datev.example", "unknown_timezone"),
        ("UID ohne-host@datev.example", "missing_host"),
        ("UID zu-lang@datev.example", "bad_duration"),
        ("VEVENT #8", "missing_title"),
    ]
    assert result.skipped_past == 2  # past all-day event and past series
    assert [s.key for s in result.sessions] == ["gut@datev.example"]
    for problem in result.problems:
        assert " / " in problem.message
        assert "Input should" not in problem.message


def test_broken_date_value_is_a_bad_date() -> None:
    assert codes(parse(vevent("DTSTART:morgen früh"))) == [("UID e1@test", "bad_date")]


def file_error(data: bytes) -> ImportFileError:
    with pytest.raises(ImportFileError) as caught:
        parse_ics(data, now=NOW)
    return caught.value


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (read_data("lex_sessions_en.csv"), "bad_ics"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "bad_encoding"),
        (b"%PDF-1.7\n1 0 obj\n", "bad_ics"),
        (read_data("datev_outlook_export.ics")[:2500], "bad_ics"),  # truncated download
        (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n", "empty"),
        (b"", "empty"),
        ("BEGIN:VCALENDAR\r\nX-WR-CALNAME:Gr\u00fc\u00dfe\r\n".encode("latin-1"), "bad_encoding"),
    ],
)
def test_unusable_files(data: bytes, code: str) -> None:
    assert file_error(data).code == code


def test_arguments_are_checked() -> None:
    data = calendar(vevent())
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_ics(data, now=datetime(2026, 11, 23, 9))
    with pytest.raises(ValueError, match="horizon_days"):
        parse_ics(data, now=NOW, horizon_days=-1)
    with pytest.raises(ValueError, match="default timezone"):
        parse_ics(data, now=NOW, default_timezone="Mitteleuropa")
