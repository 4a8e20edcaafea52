"""The shared vocabulary and the mapping of validation errors to problem codes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from node.imports.report import (
    RecordRejected,
    check_session,
    format_from_title,
    meeting_link,
    parse_format,
    parse_languages,
    resolve_timezone,
    split_tags,
)
from tests.node.imports.conftest import NOW

GOOD = {
    "title": "Impuls: KI-Prompting für Einsteiger",
    "start": datetime(2026, 12, 3, 9, 0, tzinfo=UTC),
    "duration_minutes": 60,
    "host_name": "Anna Schmidt",
}


@pytest.mark.parametrize(
    ("word", "fmt"),
    [
        ("Impuls", "impulse"),
        ("AMA", "ama"),
        ("Erfahrungsaustausch", "exchange"),
        ("Werkstatt", "workshop"),
        ("offenes Gruppentreffen", "open_group"),
        ("open_group", "open_group"),
        ("Sonstiges", "other"),
        ("Kaffeeklatsch", None),
    ],
)
def test_format_words(word: str, fmt: str | None) -> None:
    assert parse_format(word) == fmt


@pytest.mark.parametrize(
    ("title", "fmt"),
    [
        ("Impuls: KI-Prompting für Einsteiger", "impulse"),
        ("AMA mit der Personalabteilung", "ama"),
        ("Werkstatt – Barrierefreie PDFs", "workshop"),
        ("KI-Prompting für Einsteiger", None),
        ("", None),
    ],
)
def test_format_from_title(title: str, fmt: str | None) -> None:
    assert format_from_title(title) == fmt


def test_languages_and_tags() -> None:
    assert parse_languages("Deutsch, English") == ["de", "en"]
    assert parse_languages("DE-at en en") == ["de-at", "en"]
    assert split_tags("KI, #Prompting;  ; KI") == ["KI", "Prompting"]


@pytest.mark.parametrize(
    ("name", "zone"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("(UTC+01:00) Amsterdam, Berlin, Bern, Rom, Stockholm, Wien", "Europe/Berlin"),
        ("(UTC+00:00) Dublin, Edinburgh, Lissabon, London", "Europe/London"),
        ("(UTC) Koordinierte Weltzeit", "UTC"),
        ("GMT Standard Time", "Europe/London"),
        ("Mitteleuropa", None),
    ],
)
def test_timezone_names(name: str, zone: str | None) -> None:
    assert resolve_timezone(name) == zone


def test_meeting_link() -> None:
    text = "Hier klicken<https://teams.microsoft.com/l/meetup-join/19%3ax@thread.v2/0>\n"
    assert meeting_link(text) == "https://teams.microsoft.com/l/meetup-join/19%3ax@thread.v2/0"
    assert meeting_link("https://example.org/agenda") is None


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"title": "  "}, "missing_title"),
        ({"title": "x" * 201}, "bad_value"),
        ({"duration_minutes": 0}, "bad_duration"),
        ({"duration_minutes": 481}, "bad_duration"),
        ({"timezone": "Europe/Nürnberg"}, "unknown_timezone"),
        ({"start": datetime(2026, 11, 23, 8, 0, tzinfo=UTC)}, "start_in_past"),
        ({"start": "bald"}, "bad_date"),
        ({"host_name": ""}, "missing_host"),
        ({"languages": ["Deutsch"]}, "bad_value"),
        ({"tags": ["x" * 41]}, "bad_value"),
        ({"join_url": "teams"}, "bad_value"),
        ({"description": "x" * 8001}, "bad_value"),
    ],
)
def test_validation_errors_become_codes(change: dict[str, object], code: str) -> None:
    with pytest.raises(RecordRejected) as caught:
        check_session({**GOOD, **change}, now=NOW)
    assert [c for c, _ in caught.value.problems] == [code]
    message = caught.value.problems[0][1]
    assert " / " in message
    assert "Input should" not in message
    assert "Value error" not in message


def test_valid_fields_pass() -> None:
    session = check_session(GOOD, now=NOW)
    assert session.format == "impulse"
    assert session.languages == ["de"]
