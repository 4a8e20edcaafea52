"""What an import reports, and the one place where a record becomes a session.

Both parsers gather a record's fields into a plain dict and hand it to
:func:`check_session`, which runs :class:`SessionInput` and turns pydantic's
errors into :class:`ImportProblem` codes an admin can act on.  The small
vocabularies shared by CSV and ICS (formats, languages, Windows timezone
names) live here too, so both channels accept the same words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import ValidationError

from node.publishing.input import SessionInput
from protocol.models.announcement import MAX_DURATION_MINUTES, SessionFormat, is_known_timezone

ProblemCode = Literal[
    "all_day_event",
    "bad_date",
    "bad_duration",
    "bad_row",
    "bad_rrule",
    "bad_value",
    "duplicate_key",
    "missing_dtstart",
    "missing_host",
    "missing_title",
    "no_usable_instance",
    "start_in_past",
    "too_many_instances",
    "unknown_timezone",
]
FileErrorCode = Literal[
    "bad_encoding", "bad_ics", "duplicate_column", "empty", "missing_column", "not_csv"
]


@dataclass(frozen=True)
class ImportedSession:
    """One session read from a file, to be upserted by ``key``."""

    key: str
    session: SessionInput
    cancelled: bool


@dataclass(frozen=True)
class ImportProblem:
    """Why one record (CSV line, ICS event) was skipped; the rest still imports."""

    where: str
    code: ProblemCode
    message: str


@dataclass
class ParseResult:
    sessions: list[ImportedSession] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)
    skipped_past: int = 0


class ImportFileError(Exception):
    """The whole file is unusable; nothing from it should be imported."""

    def __init__(self, code: FileErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: FileErrorCode = code
        self.message = message


class RecordRejected(Exception):
    """Internal: one record cannot become a session (carries its problems)."""

    def __init__(self, code: ProblemCode, message: str) -> None:
        super().__init__(message)
        self.problems: list[tuple[ProblemCode, str]] = [(code, message)]

    @classmethod
    def of(cls, problems: list[tuple[ProblemCode, str]]) -> RecordRejected:
        rejected = cls(*problems[0])
        rejected.problems = list(problems)
        return rejected


def require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")


def check_session(fields: Mapping[str, object], *, now: datetime) -> SessionInput:
    """Validate ``fields`` as a :class:`SessionInput` or raise :class:`RecordRejected`."""
    try:
        return SessionInput.model_validate(dict(fields), context={"now": now})
    except ValidationError as exc:
        raise RecordRejected.of(
            [_explain(err["loc"], err["type"], err["msg"], fields) for err in exc.errors()]
        ) from None


def _explain(
    loc: tuple[int | str, ...], kind: str, msg: str, fields: Mapping[str, object]
) -> tuple[ProblemCode, str]:
    name = str(loc[0]) if loc else ""
    value = fields.get(name)
    if name == "title":
        if kind in {"string_too_short", "missing"}:
            return "missing_title", "Titel fehlt / title is missing"
        return "bad_value", "Titel ungültig oder zu lang (max. 200) / title invalid or too long"
    if name == "duration_minutes":
        return "bad_duration", (
            f"Dauer muss zwischen 1 und {MAX_DURATION_MINUTES} Minuten liegen (ist: {value}) / "
            f"duration must be 1 to {MAX_DURATION_MINUTES} minutes (got: {value})"
        )
    if name == "start":
        return "bad_date", "Beginn ungültig / start is invalid"
    if name == "timezone":
        return "unknown_timezone", f"Unbekannte Zeitzone / unknown timezone: {value!r}"
    if name == "host_name":
        if kind in {"string_too_short", "missing"}:
            return "missing_host", "Referent*in fehlt / host is missing"
        return "bad_value", "Name der Referent*in zu lang (max. 120) / host name too long"
    labels = {
        "description": "Beschreibung zu lang (max. 8000 Zeichen) / description too long",
        "languages": "Sprache ungültig (z. B. de, en) / invalid language (e.g. de, en)",
        "tags": "Schlagworte ungültig (max. 20, je max. 40 Zeichen) / invalid tags",
        "join_url": "Teilnahmelink ungültig (http/https) / invalid join link",
        "details_url": "Detail-Link ungültig (http/https) / invalid details link",
        "format": "Unbekanntes Format / unknown format",
    }
    if name in labels:
        return "bad_value", labels[name]
    text = msg.removeprefix("Value error, ")
    if "Vergangenheit" in text:
        return "start_in_past", "Beginn liegt in der Vergangenheit / start lies in the past"
    if "Zeitzone" in text:
        return "unknown_timezone", text
    return "bad_value", text


# --- shared vocabulary -------------------------------------------------------


def _word(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


_FORMATS: dict[str, SessionFormat] = {
    **dict.fromkeys(("impulse", "impuls", "impulsvortrag", "vortrag", "talk"), "impulse"),
    **dict.fromkeys(("ama", "askmeanything", "fragmichalles"), "ama"),
    **dict.fromkeys(("exchange", "erfahrungsaustausch", "austausch"), "exchange"),
    **dict.fromkeys(("workshop", "werkstatt"), "workshop"),
    **dict.fromkeys(
        ("opengroup", "offenesgruppentreffen", "gruppentreffen", "offenegruppe"), "open_group"
    ),
    **dict.fromkeys(("other", "sonstiges", "andere", "anderes"), "other"),
}


def parse_format(text: str) -> SessionFormat | None:
    """Map an English or German format word to a :data:`SessionFormat`."""
    return _FORMATS.get(_word(text))


def format_from_title(title: str) -> SessionFormat | None:
    """``"Impuls: KI-Prompting"`` -> impulse, ``"AMA mit …"`` -> ama."""
    head = re.split(r"[:|–-]", title, maxsplit=1)[0]
    return parse_format(head) or parse_format(title.split(maxsplit=1)[0] if title.split() else "")


_LANGUAGE_WORDS = {
    "deutsch": "de",
    "german": "de",
    "englisch": "en",
    "english": "en",
    "französisch": "fr",
    "franzosisch": "fr",
    "french": "fr",
    "spanisch": "es",
    "spanish": "es",
    "italienisch": "it",
    "italian": "it",
}


def parse_languages(text: str) -> list[str]:
    """``"de, en"``, ``"Deutsch Englisch"``, ``"de-DE"`` -> normalised tags."""
    tags: list[str] = []
    for part in re.split(r"[,;/\s]+", text.strip()):
        if not part:
            continue
        primary, _, rest = part.partition("-")
        tag = _LANGUAGE_WORDS.get(part.casefold()) or (
            primary.lower() + (f"-{rest}" if rest else "")
        )
        if tag not in tags:
            tags.append(tag)
    return tags


_MEETING_LINK = re.compile(
    r"https://(?:[\w-]+\.)*(?:teams\.microsoft\.com|teams\.live\.com|zoom\.us|"
    r"meet\.google\.com|webex\.com|meet\.jit\.si)/[^\s<>\"'\]]+"
)
_CANCEL_PREFIX = re.compile(r"^(abgesagt|cancell?ed|storniert)\s*:\s*", re.IGNORECASE)


def meeting_link(text: str) -> str | None:
    """The first Teams/Zoom/Meet/Webex/Jitsi link in free text (invitation bodies)."""
    found = _MEETING_LINK.search(text)
    return found.group(0) if found else None


def strip_cancel_prefix(title: str) -> tuple[str, bool]:
    """Outlook renames cancelled meetings "Abgesagt: …" / "Canceled: …"."""
    stripped, count = _CANCEL_PREFIX.subn("", title)
    return stripped, count > 0


def split_tags(text: str) -> list[str]:
    tags: list[str] = []
    for part in re.split(r"[,;]", text):
        tag = part.strip().lstrip("#").strip()
        if tag and tag not in tags:
            tags.append(tag)
    return tags


# Outlook and Exchange write Windows zone names (or their display names) as
# TZID.  The German-speaking countries all use "W. Europe Standard Time".
_WINDOWS_ZONES = {
    "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw",
    "Romance Standard Time": "Europe/Paris",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "UTC": "UTC",
    "Coordinated Universal Time": "UTC",
}
_DISPLAY_NAME_HINTS = (
    (("berlin", "bern", "wien", "vienna"), "Europe/Berlin"),
    (("london", "dublin", "edinburgh"), "Europe/London"),
    (("koordinierte weltzeit", "coordinated universal time"), "UTC"),
)


def resolve_timezone(name: str) -> str | None:
    """An IANA name for ``name`` (IANA, Windows or Outlook display name), else None."""
    name = name.strip().strip('"')
    if is_known_timezone(name):
        return name
    if name in _WINDOWS_ZONES:
        return _WINDOWS_ZONES[name]
    lowered = name.casefold()
    if lowered.startswith("(utc"):
        for hints, zone in _DISPLAY_NAME_HINTS:
            if any(hint in lowered for hint in hints):
                return zone
    return None
