"""CSV import: good files in their common shapes, and each kind of bad row."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from node.imports import ImportFileError, ParseResult, parse_csv
from tests.node.imports.conftest import NOW, read_data

BERLIN = ZoneInfo("Europe/Berlin")
HEADER = "Titel;Beginn;Dauer;Referent(in)\n"


def parse(text: str, **kwargs: object) -> ParseResult:
    return parse_csv(text.encode(), now=NOW, **kwargs)  # type: ignore[arg-type]


def codes(result: ParseResult) -> list[tuple[str, str]]:
    return [(p.where, p.code) for p in result.problems]


# --- good files ----------------------------------------------------------------


def test_english_comma_file() -> None:
    result = parse_csv(read_data("lex_sessions_en.csv"), now=NOW)

    assert result.problems == []
    assert result.skipped_past == 0
    assert [s.key for s in result.sessions] == ["lex-2026-101", "lex-2026-102", "lex-2026-103"]
    first, second, third = (s.session for s in result.sessions)
    assert first.title == "Prompting for beginners"
    assert first.description == "Hands-on intro, bring a laptop"
    assert first.languages == ["en", "de"]
    assert first.start == datetime(2026, 12, 3, 10, 0, tzinfo=BERLIN)
    assert first.duration_minutes == 60
    assert first.tags == ["AI", "Prompting"]
    assert first.join_url == "https://teams.microsoft.com/l/meetup-join/19%3ameeting_lex101"
    # An explicit offset is kept as the instant and shown in the session's zone.
    assert second.start == datetime(2026, 12, 8, 13, 0, tzinfo=UTC)
    assert second.start.tzinfo == BERLIN
    assert second.format == "ama"
    assert third.timezone == "Europe/Vienna"
    assert third.start.utcoffset() is not None
    assert [s.cancelled for s in result.sessions] == [False, False, True]


def test_german_excel_file_with_bom_semicolons_and_crlf() -> None:
    data = read_data("wdw_excel_de.csv")
    assert data.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in data

    result = parse_csv(data, now=NOW)

    assert result.problems == []
    by_key = {s.key: s for s in result.sessions}
    prompting = by_key["wdw-0815"].session
    assert prompting.title == "Impuls: KI-Prompting für Einsteiger"
    assert prompting.description == (
        "Wie formuliere ich gute Prompts?\nMit Beispielen aus dem Arbeitsalltag."
    )
    assert prompting.format == "impulse"
    assert prompting.languages == ["de"]  # "Deutsch"
    assert prompting.start == datetime(2026, 12, 3, 10, 0, tzinfo=BERLIN)
    assert prompting.host_name == "Anna Schmidt"
    assert by_key["wdw-0816"].session.format == "ama"
    workshop = by_key["wdw-0817"]
    assert workshop.cancelled is True  # "abgesagt"
    assert workshop.session.format == "workshop"  # "Werkstatt"
    assert workshop.session.duration_minutes == 90  # "90 Minuten"
    assert workshop.session.tags == ["Barrierefreiheit", "PDF"]
    assert workshop.session.start == datetime(2026, 12, 10, 13, 0, tzinfo=BERLIN)  # "… Uhr"
    # The row without a key gets a derived one; the empty trailing row is ignored.
    assert len(result.sessions) == 4
    (wol,) = (s for s in result.sessions if s.key.startswith("csv-"))
    assert wol.session.format == "open_group"  # "offenes Gruppentreffen"
    assert wol.session.languages == ["de", "en"]
    assert wol.session.duration_minutes == 60  # "1:00"


def test_excel_sep_line_and_tabs() -> None:
    result = parse("sep=;\nTitel;Beginn;Dauer;Referent\nImpuls: A;03.12.2026 10:00;60;Anna\n")
    assert [s.session.title for s in result.sessions] == ["Impuls: A"]

    tabbed = parse("title\tstart\tduration\thost\nImpuls: B\t2026-12-03T10:00\t30\tAnna\n")
    assert [s.session.duration_minutes for s in tabbed.sessions] == [30]


def test_headers_are_matched_without_case_or_punctuation() -> None:
    result = parse(
        "TITEL,Beginn,Dauer (Minuten),Referent*in,Schlag-Worte\nA,2026-12-03 10:00,45,B,x\n"
    )
    assert result.problems == []
    assert result.sessions[0].session.tags == ["x"]


def test_format_is_taken_from_the_title_when_there_is_no_format_column() -> None:
    result = parse(HEADER + "Werkstatt: Barrierefreie PDFs;03.12.2026 10:00;90;Petra\n")
    assert result.sessions[0].session.format == "workshop"


def test_outlook_cancel_prefix_and_teams_link_in_description() -> None:
    text = (
        "Titel;Beginn;Dauer;Referent;Beschreibung\n"
        "Abgesagt: Impuls: A;03.12.2026 10:00;60;Anna;"
        '"Teams-Besprechung <https://teams.microsoft.com/l/meetup-join/19%3am_a@thread.v2/0>"\n'
    )
    (imported,) = parse(text).sessions
    assert imported.cancelled is True
    assert imported.session.title == "Impuls: A"
    assert (
        imported.session.join_url
        == "https://teams.microsoft.com/l/meetup-join/19%3am_a@thread.v2/0"
    )


def test_derived_key_is_stable_across_date_spellings_and_reimports() -> None:
    german = parse(HEADER + "Impuls: A;03.12.2026 10:00;60;Anna\n")
    iso = parse("title,start,duration,host\nImpuls: A,2026-12-03T10:00,60,Anna\n")
    assert german.sessions[0].key == iso.sessions[0].key
    assert (
        german.sessions[0].key
        == parse(HEADER + "Impuls: A;03.12.2026 10:00;60;Anna\n").sessions[0].key
    )
    moved = parse(HEADER + "Impuls: A;03.12.2026 11:00;60;Anna\n")
    assert moved.sessions[0].key != german.sessions[0].key


# --- bad rows ------------------------------------------------------------------


def test_each_bad_row_is_reported_with_its_line_and_the_rest_imports() -> None:
    result = parse_csv(read_data("wdw_fehlerhaft.csv"), now=NOW)

    assert codes(result) == [
        ("line 3", "bad_date"),  # 31.02.
        ("line 4", "bad_duration"),  # 0 minutes
        ("line 5", "bad_duration"),  # 600 minutes
        ("line 6", "unknown_timezone"),  # Europe/Nürnberg
        ("line 7", "missing_title"),
        ("line 8", "start_in_past"),
        ("line 9", "bad_duration"),  # "eine Stunde"
        ("line 10", "bad_date"),  # no time of day
        ("line 11", "missing_host"),
    ]
    assert [s.session.title for s in result.sessions] == [
        "Impuls: Gute Zeile",
        "AMA: Noch eine gute Zeile",
    ]
    assert result.sessions[1].session.timezone == "Europe/Zurich"


def test_messages_are_german_first_and_never_raw_pydantic() -> None:
    result = parse_csv(read_data("wdw_fehlerhaft.csv"), now=NOW)
    for problem in result.problems:
        german, _, english = problem.message.partition(" / ")
        assert german, problem
        assert english, problem
        assert "pydantic" not in problem.message
        assert "Input should" not in problem.message
        assert "validation error" not in problem.message.lower()
    durations = [p.message for p in result.problems if p.code == "bad_duration"]
    assert "(ist: 600)" in durations[1]


def test_line_numbers_count_physical_lines_of_multiline_cells() -> None:
    text = HEADER + 'Impuls: A;03.12.2026 10:00;60;"Anna\nSchmidt"\nImpuls: B;kaputt;60;Anna\n'
    assert codes(parse(text)) == [("line 4", "bad_date")]


def test_a_row_can_have_several_problems() -> None:
    result = parse(HEADER + ";gestern;null;Anna\n")
    assert {p.code for p in result.problems} == {"bad_date", "bad_duration"}
    assert {p.where for p in result.problems} == {"line 2"}


@pytest.mark.parametrize(
    ("row", "code"),
    [
        ("A;03.12.2026 10:00;60;Anna;Plauderei;;", "bad_value"),  # unknown format
        ("A;03.12.2026 10:00;60;Anna;;vielleicht;", "bad_value"),  # unknown status
        ("A;03.12.2026 10:00;60;Anna;;;teams-link", "bad_value"),  # not http(s)
        ("A;28.03.2027 02:30;60;Anna;;;", "bad_date"),  # skipped by the clock change
        ("A;03.12.2026 10:00;60;Anna;;;;Überzählig", "bad_row"),  # unquoted delimiter
    ],
)
def test_bad_values(row: str, code: str) -> None:
    result = parse("Titel;Beginn;Dauer;Referent;Format;Status;Link\n" + row + "\n")
    assert codes(result) == [("line 2", code)]
    assert result.sessions == []


def test_repeated_key_keeps_the_first_row() -> None:
    text = (
        "key,title,start,duration,host\n"
        "k1,A,2026-12-03T10:00,60,Anna\n"
        "k1,B,2026-12-04T10:00,60,Anna\n"
    )
    result = parse(text)
    assert [s.session.title for s in result.sessions] == ["A"]
    assert codes(result) == [("line 3", "duplicate_key")]


# --- unusable files ------------------------------------------------------------


def file_error(data: bytes) -> ImportFileError:
    with pytest.raises(ImportFileError) as caught:
        parse_csv(data, now=NOW)
    return caught.value


def test_missing_required_columns_are_named() -> None:
    error = file_error(b"Titel;Beschreibung;Beginn\nA;B;03.12.2026 10:00\n")
    assert error.code == "missing_column"
    assert "Dauer" in error.message
    assert "Referent" in error.message
    assert "Titel" not in error.message


def test_latin1_is_refused_not_guessed() -> None:
    data = (HEADER + "Impuls: Größenwahn;03.12.2026 10:00;60;Jörg\n").encode("latin-1")
    error = file_error(data)
    assert error.code == "bad_encoding"
    assert "UTF-8" in error.message


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (HEADER.encode("utf-16"), "bad_encoding"),
        (b"PK\x03\x04\x14\x00\x06\x00", "not_csv"),  # an .xlsx workbook
        (read_data("kiwi_nextcloud_berlin.ics"), "not_csv"),
        (b"", "empty"),
        (b"\xef\xbb\xbf  \r\n", "empty"),
        (b"Titel;Titel;Beginn;Dauer;Referent\n", "duplicate_column"),
    ],
)
def test_unusable_files(data: bytes, code: str) -> None:
    assert file_error(data).code == code


def test_header_only_file_is_empty_result() -> None:
    result = parse(HEADER)
    assert result == ParseResult(sessions=[], problems=[], skipped_past=0)


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_csv(HEADER.encode(), now=datetime(2026, 11, 23, 9))
    with pytest.raises(ValueError, match="default timezone"):
        parse_csv(HEADER.encode(), now=NOW, default_timezone="Mitteleuropa")
