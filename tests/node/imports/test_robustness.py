"""Whatever bytes arrive, a parser returns a result or raises ImportFileError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.imports import ImportFileError, ParseResult, parse_csv, parse_ics
from tests.node.imports.conftest import NOW, read_data

FIXED = settings(
    max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
CSV_LINE = st.lists(
    st.sampled_from(["Impuls: A", "03.12.2026 10:00", "60", "Anna", "", '"', ";", ",", "\n", "ä"]),
    max_size=12,
).map("".join)


def parses_or_refuses(parser: object, data: bytes) -> None:
    """Either a ParseResult, or an ImportFileError with a bilingual message."""
    outcome: object
    try:
        outcome = parser(data, now=NOW)  # type: ignore[operator]
    except ImportFileError as error:
        outcome = error
    if isinstance(outcome, ImportFileError):
        assert outcome.code
        assert " / " in outcome.message
    else:
        assert isinstance(outcome, ParseResult)


@FIXED
@given(st.binary(max_size=300))
def test_csv_never_crashes_on_arbitrary_bytes(data: bytes) -> None:
    parses_or_refuses(parse_csv, data)


@FIXED
@given(st.lists(CSV_LINE, max_size=6))
def test_csv_never_crashes_on_csv_like_text(rows: list[str]) -> None:
    parses_or_refuses(parse_csv, ("Titel;Beginn;Dauer;Referent\n" + "\n".join(rows)).encode())


@FIXED
@given(st.binary(max_size=300))
def test_ics_never_crashes_on_arbitrary_bytes(data: bytes) -> None:
    parses_or_refuses(parse_ics, b"BEGIN:VCALENDAR\r\n" + data)


@FIXED
@given(st.integers(min_value=0, max_value=5168), st.integers(min_value=0, max_value=200))
def test_ics_never_crashes_on_damaged_exports(cut: int, length: int) -> None:
    original = read_data("datev_outlook_export.ics")
    parses_or_refuses(parse_ics, original[:cut] + original[cut + length :])
