"""Sessions from a CSV table (Excel, SharePoint list export, hand-written).

German Excel writes ``;`` as separator and sometimes a ``sep=;`` first line;
both are understood.  The file must be UTF-8 (a BOM is fine): we never guess
another encoding, because a wrongly guessed one silently mangles umlauts in
titles that then go out to every partner.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from node.imports.report import (
    ImportedSession,
    ImportFileError,
    ImportProblem,
    ParseResult,
    ProblemCode,
    RecordRejected,
    check_session,
    format_from_title,
    meeting_link,
    parse_format,
    parse_languages,
    require_aware,
    resolve_timezone,
    split_tags,
    strip_cancel_prefix,
)

T = TypeVar("T")

# Column -> accepted header spellings, compared without case, spaces or punctuation.
COLUMNS: dict[str, tuple[str, ...]] = {
    "key": ("key", "schluessel", "schlüssel", "importkey", "id"),
    "title": ("title", "titel", "thema"),
    "description": ("description", "beschreibung", "kurzbeschreibung"),
    "format": ("format", "sessionformat", "art"),
    "languages": ("language", "languages", "sprache", "sprachen"),
    "start": ("start", "beginn", "begin", "startzeit"),
    "timezone": ("timezone", "zeitzone", "tz"),
    "duration": ("duration", "durationminutes", "dauer", "dauermin", "dauerminuten"),
    "host": (
        "host",
        "hostname",
        "referent",
        "referentin",
        "referentinnen",
        "gastgeber",
        "gastgeberin",
    ),
    "tags": ("tags", "schlagworte", "schlagwörter", "stichworte"),
    "join_url": ("joinurl", "link", "teilnahmelink", "meetinglink", "teamslink"),
    "details_url": ("detailsurl", "details", "infolink"),
    "status": ("status",),
}
REQUIRED = ("title", "start", "duration", "host")
_HEADER_NAMES = {
    "title": "title/Titel",
    "start": "start/Beginn",
    "duration": "duration/Dauer",
    "host": "host/Referent(in)",
}
_ALIASES = {alias: column for column, aliases in COLUMNS.items() for alias in aliases}

_CANCELLED = {"cancelled", "canceled", "abgesagt", "storniert", "entfällt", "entfaellt"}
_SCHEDULED = {"", "scheduled", "confirmed", "geplant", "bestätigt", "findetstatt", "aktiv"}
_GERMAN_DATE = re.compile(
    r"(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2}),?\s+(\d{1,2})[:.](\d{2})(?::(\d{2}))?(?:\s*Uhr)?",
    re.IGNORECASE,
)


def parse_csv(
    data: bytes, *, now: datetime, default_timezone: str = "Europe/Berlin"
) -> ParseResult:
    """Parse a session table; bad rows become problems, the rest sessions."""
    require_aware(now)
    if resolve_timezone(default_timezone) is None:
        raise ValueError(f"unknown default timezone {default_timezone!r}")
    text = _decode(data)
    first_lines = text.split("\n", 2)
    sep_line = re.fullmatch(r"sep=(.)", first_lines[0].strip())
    header_line = first_lines[1] if sep_line and len(first_lines) > 1 else first_lines[0]
    delimiter = sep_line[1] if sep_line else _sniff_delimiter(header_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    result = ParseResult()
    try:
        if sep_line:
            next(reader)
        header = next(reader, [])
        columns = _map_header(header)
        seen: set[str] = set()
        line = reader.line_num
        for row in reader:
            where, line = f"line {line + 1}", reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            try:
                imported = _row(row, columns, len(header), now=now, zone=default_timezone)
            except RecordRejected as rejected:
                result.problems += [ImportProblem(where, c, m) for c, m in rejected.problems]
                continue
            if imported.key in seen:
                result.problems.append(_duplicate(where, imported.key))
                continue
            seen.add(imported.key)
            result.sessions.append(imported)
    except csv.Error as exc:
        raise ImportFileError(
            "not_csv",
            f"CSV nicht lesbar ab Zeile {reader.line_num} / unreadable CSV near line "
            f"{reader.line_num}: {exc}",
        ) from None
    return result


def _duplicate(where: str, key: str) -> ImportProblem:
    return ImportProblem(
        where,
        "duplicate_key",
        f"Schlüssel {key!r} kommt mehrfach vor; nur die erste Zeile zählt "
        f"/ key {key!r} is repeated; only the first row counts",
    )


def _decode(data: bytes) -> str:
    if data.startswith(b"PK\x03\x04"):
        raise ImportFileError(
            "not_csv",
            "Das ist eine Excel-Datei, keine CSV; bitte als „CSV UTF-8“ speichern "
            "/ this is an Excel workbook, not CSV; save it as 'CSV UTF-8'",
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportFileError(
            "bad_encoding",
            "Datei ist UTF-16 kodiert; bitte als „CSV UTF-8“ speichern "
            "/ file is UTF-16 encoded; save it as 'CSV UTF-8'",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            "bad_encoding",
            f"Datei ist nicht UTF-8 (Byte {exc.start}); in Excel „CSV UTF-8“ wählen "
            f"/ file is not UTF-8 (byte {exc.start}); save it as 'CSV UTF-8'",
        ) from None
    if "\x00" in text:
        raise ImportFileError("not_csv", "Keine Textdatei / not a text file")
    if not text.strip():
        raise ImportFileError("empty", "Datei ist leer / file is empty")
    if text.lstrip().upper().startswith("BEGIN:VCALENDAR"):
        raise ImportFileError(
            "not_csv",
            "Das ist eine Kalenderdatei (ICS); bitte als ICS importieren "
            "/ this is a calendar (ICS) file; import it as ICS",
        )
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.casefold() if ch.isalnum())


def _sniff_delimiter(header_line: str) -> str:
    """Pick the delimiter under which the header names the most known columns."""

    def known(delimiter: str) -> int:
        cells = next(csv.reader([header_line], delimiter=delimiter))
        return sum(_normalise(cell) in _ALIASES for cell in cells)

    return max((",", ";", "\t"), key=known)


def _map_header(header: list[str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, cell in enumerate(header):
        column = _ALIASES.get(_normalise(cell))
        if column is None:
            continue  # extra export columns ("Erstellt von", ...) are ignored
        if column in columns:
            raise ImportFileError(
                "duplicate_column",
                f"Spalte {cell.strip()!r} kommt doppelt vor / column {cell.strip()!r} is repeated",
            )
        columns[column] = index
    missing = [_HEADER_NAMES[c] for c in REQUIRED if c not in columns]
    if missing:
        names = ", ".join(missing)
        raise ImportFileError(
            "missing_column",
            f"Pflichtspalten fehlen: {names} / required columns missing: {names}",
        )
    return columns


def _row(
    row: list[str], columns: Mapping[str, int], width: int, *, now: datetime, zone: str
) -> ImportedSession:
    if any(cell.strip() for cell in row[width:]):
        raise RecordRejected(
            "bad_row",
            "Mehr Zellen als Spalten; enthält ein Text das Trennzeichen ohne Anführungszeichen? "
            "/ more cells than columns; does a text contain the delimiter without quotes?",
        )
    cells = {name: row[i].strip() if i < len(row) else "" for name, i in columns.items()}
    problems: list[tuple[ProblemCode, str]] = []

    def attempt(parse: Callable[[str], T], raw: str) -> T | None:
        try:
            return parse(raw)
        except RecordRejected as rejected:
            problems.extend(rejected.problems)
            return None

    tz = attempt(lambda raw: _timezone(raw, zone), cells.get("timezone", ""))
    start = attempt(lambda raw: _start(raw, tz), cells["start"]) if tz else None
    duration = attempt(_duration, cells["duration"])
    title, prefixed = strip_cancel_prefix(cells["title"])  # "Abgesagt: …" from Outlook
    fmt = attempt(_format, cells.get("format", "")) or format_from_title(title)
    cancelled = attempt(_status, cells.get("status", ""))
    if problems:
        raise RecordRejected.of(problems)

    fields: dict[str, object] = {
        "title": title,
        "description": cells.get("description", ""),
        "start": start,
        "timezone": tz,
        "duration_minutes": duration,
        "host_name": cells["host"],
        "tags": split_tags(cells.get("tags", "")),
    }
    if fmt:
        fields["format"] = fmt
    if cells.get("languages"):
        fields["languages"] = parse_languages(cells["languages"])
    if join := cells.get("join_url") or meeting_link(cells.get("description", "")):
        fields["join_url"] = join
    if cells.get("details_url"):
        fields["details_url"] = cells["details_url"]
    session = check_session(fields, now=now)
    return ImportedSession(
        key=cells.get("key") or _derived_key(session.title, session.start),
        session=session,
        cancelled=bool(cancelled) or prefixed,
    )


def _derived_key(title: str, start: datetime) -> str:
    basis = f"{title}\n{start.astimezone(UTC).isoformat()}"
    return "csv-" + hashlib.sha256(basis.encode()).hexdigest()[:16]


def _timezone(raw: str, default: str) -> str:
    zone = resolve_timezone(raw or default)
    if zone is None:
        raise RecordRejected(
            "unknown_timezone",
            f"Unbekannte Zeitzone {raw or default!r} (z. B. Europe/Berlin) "
            f"/ unknown timezone {raw or default!r} (e.g. Europe/Berlin)",
        )
    return zone


def _start(raw: str, zone: str) -> datetime:
    if not raw:
        raise RecordRejected("bad_date", "Beginn fehlt / start is missing")
    start = _parse_datetime(raw)
    if start is None:
        raise RecordRejected(
            "bad_date",
            f"Beginn {raw!r} nicht lesbar; erwartet 03.12.2026 10:00 oder 2026-12-03T10:00 "
            f"/ cannot read start {raw!r}; expected 03.12.2026 10:00 or 2026-12-03T10:00",
        )
    if start.tzinfo is None:
        local = start.replace(tzinfo=ZoneInfo(zone))
        if local.astimezone(UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None) != start:
            raise RecordRejected(
                "bad_date",
                f"{raw} gibt es in {zone} nicht (Zeitumstellung) "
                f"/ {raw} does not exist in {zone} (clock change)",
            )
        return local
    return start.astimezone(ZoneInfo(zone))


def _parse_datetime(raw: str) -> datetime | None:
    german = _GERMAN_DATE.fullmatch(raw)
    try:
        if german:
            day, month, year, hour, minute, second = german.groups()
            full_year = int(year) + 2000 if len(year) == 2 else int(year)
            return datetime(
                full_year, int(month), int(day), int(hour), int(minute), int(second or 0)
            )
        if "T" not in raw and " " not in raw.strip():
            return None  # a date without a time of day
        return datetime.fromisoformat(raw)
    except ValueError:
        return None


def _duration(raw: str) -> int:
    text = re.sub(r"\s*(minuten|minutes|mins?\.?)$", "", raw.strip(), flags=re.IGNORECASE)
    if clock := re.fullmatch(r"(\d{1,2}):(\d{2})", text):
        return int(clock[1]) * 60 + int(clock[2])
    if re.fullmatch(r"\d{1,6}", text):
        return int(text)
    what = repr(raw) if raw else "fehlt / missing"
    raise RecordRejected(
        "bad_duration",
        f"Dauer in Minuten erwartet (z. B. 60), nicht {what} "
        f"/ expected duration in minutes (e.g. 60), not {what}",
    )


def _format(raw: str) -> str | None:
    if not raw:
        return None
    fmt = parse_format(raw)
    if fmt is None:
        raise RecordRejected(
            "bad_value",
            f"Unbekanntes Format {raw!r} (Impuls, AMA, Erfahrungsaustausch, Werkstatt, "
            f"offenes Gruppentreffen) / unknown format {raw!r}",
        )
    return fmt


def _status(raw: str) -> bool:
    word = _normalise(raw)
    if word in {_normalise(w) for w in _CANCELLED}:
        return True
    if word in {_normalise(w) for w in _SCHEDULED}:
        return False
    raise RecordRejected(
        "bad_value",
        f"Unbekannter Status {raw!r} (leer oder „abgesagt“) "
        f"/ unknown status {raw!r} (empty or 'cancelled')",
    )
