"""schema.org EducationEvent JSON-LD."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from node.catalogue.jsonld import education_event, education_events, iso_duration
from tests.node.catalogue.test_ics import make_entry

BERLIN = ZoneInfo("Europe/Berlin")


def test_structure() -> None:
    entry = make_entry(languages=("de", "en"))
    doc = education_event(entry)
    assert doc == {
        "@context": "https://schema.org",
        "@type": "EducationEvent",
        "@id": entry.registration_url,
        "identifier": "s-0001@lex.example.org",
        "name": "KI-Prompting für Einsteiger",
        "description": "Wie formuliere ich gute Prompts? Übungen zum Mitmachen.",
        "url": entry.registration_url,
        "startDate": "2026-12-03T10:00:00+01:00",
        "endDate": "2026-12-03T11:30:00+01:00",
        "duration": "PT1H30M",
        "eventAttendanceMode": "https://schema.org/OnlineEventAttendanceMode",
        "location": {"@type": "VirtualLocation", "url": entry.registration_url},
        "organizer": {
            "@type": "Organization",
            "name": "LEX – Lernen im Netzwerk",
            "identifier": "lex.example.org",
        },
        "performer": {"@type": "Person", "name": "Jörg Weiß"},
        "isAccessibleForFree": True,
        "dateModified": "2026-11-20T08:15:00+00:00",
        "eventStatus": "https://schema.org/EventScheduled",
        "inLanguage": ["de", "en"],
        "keywords": "KI, Prompting",
        "maximumAttendeeCapacity": 5,
        "remainingAttendeeCapacity": 3,
    }
    # Plain JSON, umlauts intact.
    assert json.loads(json.dumps(doc, ensure_ascii=False)) == doc


def test_single_language_is_a_string_and_empty_fields_are_left_out() -> None:
    doc = education_event(make_entry(tags=(), languages=("de",)))
    assert doc["inLanguage"] == "de"
    assert "keywords" not in doc
    assert "inLanguage" not in education_event(make_entry(languages=()))


@pytest.mark.parametrize(
    ("start", "offset"),
    [
        (datetime(2026, 1, 15, 10, tzinfo=BERLIN), "+01:00"),
        (datetime(2026, 7, 2, 10, tzinfo=BERLIN), "+02:00"),
        (datetime(2026, 3, 29, 10, tzinfo=BERLIN), "+02:00"),  # day of the switch
        (datetime(2026, 10, 25, 10, tzinfo=BERLIN), "+01:00"),
    ],
)
def test_offsets_follow_dst(start: datetime, offset: str) -> None:
    doc = education_event(make_entry(start=start, minutes=60))
    assert doc["startDate"] == start.strftime("%Y-%m-%dT10:00:00") + offset
    assert doc["endDate"] == start.strftime("%Y-%m-%dT11:00:00") + offset


def test_other_timezones() -> None:
    london = make_entry(
        timezone="Europe/London", start=datetime(2026, 7, 2, 9, tzinfo=ZoneInfo("Europe/London"))
    )
    assert education_event(london)["startDate"] == "2026-07-02T09:00:00+01:00"
    utc = make_entry(timezone="UTC", start=datetime(2026, 7, 2, 9, tzinfo=UTC))
    assert education_event(utc)["startDate"] == "2026-07-02T09:00:00+00:00"


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [(30, "PT30M"), (60, "PT1H"), (90, "PT1H30M"), (95, "PT1H35M"), (120, "PT2H"), (0, "PT0M")],
)
def test_duration(minutes: int, expected: str) -> None:
    assert iso_duration(minutes) == expected
    if minutes:
        assert education_event(make_entry(minutes=minutes))["duration"] == expected


def test_negative_duration_is_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        iso_duration(-5)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("scheduled", "https://schema.org/EventScheduled"),
        ("cancelled", "https://schema.org/EventCancelled"),
        ("postponed", "https://schema.org/EventPostponed"),
        ("rescheduled", "https://schema.org/EventRescheduled"),
    ],
)
def test_status_mapping(status: str, expected: str) -> None:
    assert education_event(make_entry(status=status))["eventStatus"] == expected


def test_unknown_status_is_not_guessed() -> None:
    assert "eventStatus" not in education_event(make_entry(status="something-new"))


def test_capacity_only_with_partner_seats() -> None:
    doc = education_event(make_entry(seats_open=4, seats_remaining=0))
    assert doc["maximumAttendeeCapacity"] == 4
    assert doc["remainingAttendeeCapacity"] == 0
    closed = education_event(make_entry(seats_open=0, seats_remaining=0))
    assert "maximumAttendeeCapacity" not in closed
    assert "remainingAttendeeCapacity" not in closed


def test_graph_is_sorted_and_has_one_context() -> None:
    late = make_entry(session_id="spaet", start=datetime(2026, 12, 4, 9, tzinfo=BERLIN))
    early = make_entry(session_id="frueh", start=datetime(2026, 12, 3, 9, tzinfo=BERLIN))
    doc = education_events([late, early])
    assert doc["@context"] == "https://schema.org"
    assert [node["identifier"] for node in doc["@graph"]] == [
        "frueh@lex.example.org",
        "spaet@lex.example.org",
    ]
    assert all("@context" not in node for node in doc["@graph"])
    assert education_events([early, late]) == doc
    assert education_events([]) == {"@context": "https://schema.org", "@graph": []}


def test_no_join_link_anywhere() -> None:
    doc = education_events([make_entry(), make_entry(session_id="x", status="cancelled")])
    text = json.dumps(doc).lower()
    for needle in ("teams", "meet", "zoom", "webex", "join", "conference"):
        assert needle not in text, needle
    for node in doc["@graph"]:
        assert node["location"]["url"] == node["url"] == node["@id"]
