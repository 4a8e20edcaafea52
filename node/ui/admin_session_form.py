"""The session and opening forms: text fields in, validated inputs or field errors out.

Validation is :class:`~node.publishing.input.SessionInput` and
:class:`~node.publishing.input.OpeningInput`, the same as for the admin API
and imports; this module only turns form strings into their input and
pydantic's errors into :class:`~node.ui.i18n.Message` objects per field,
so the page shows them in the current language next to the field.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, get_args
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from node.db.sessions import SessionRow
from node.publishing.input import OpeningInput, SessionInput
from node.ui.admin_common import DEFAULT_TIMEZONE
from node.ui.forms import FieldErrors
from node.ui.i18n import Message
from protocol.models.announcement import MAX_DURATION_MINUTES, MAX_SEATS, SessionFormat

FORMATS: tuple[str, ...] = get_args(SessionFormat)
FORMAT_OPTIONS = [
    ("impulse", "admin.format_impulse"),
    ("ama", "admin.format_ama"),
    ("exchange", "admin.format_exchange"),
    ("workshop", "admin.format_workshop"),
    ("open_group", "admin.format_open_group"),
    ("other", "admin.format_other"),
]
assert {name for name, _ in FORMAT_OPTIONS} == set(FORMATS)
MODE_OPTIONS = [("auto", "admin.mode_auto"), ("approval", "admin.mode_approval")]
SESSION_FIELDS = (
    "title",
    "description",
    "format",
    "languages",
    "start",
    "timezone",
    "duration_minutes",
    "host_name",
    "tags",
    "join_url",
    "details_url",
)
_LIMITS = {"title": 200, "description": 8000, "host_name": 120}
_SPLIT = re.compile(r"[,;]+")
_LOCAL = "%Y-%m-%dT%H:%M"


def _split(text: str, separators: re.Pattern[str] = _SPLIT) -> list[str]:
    return [part.strip() for part in separators.split(text) if part.strip()]


def blank_session() -> dict[str, str]:
    return {
        **dict.fromkeys(SESSION_FIELDS, ""),
        "format": "impulse",
        "languages": "de",
        "timezone": DEFAULT_TIMEZONE,
        "duration_minutes": "60",
    }


def session_values(row: SessionRow) -> dict[str, str]:
    """A stored session as the form shows it (start as local wall-clock time)."""
    try:
        start = row.start_at.astimezone(ZoneInfo(row.timezone))
    except (KeyError, ValueError):
        start = row.start_at
    return {
        "title": row.title,
        "description": row.description,
        "format": row.format,
        "languages": ", ".join(row.languages),
        "start": start.strftime(_LOCAL),
        "timezone": row.timezone,
        "duration_minutes": str(row.duration_minutes),
        "host_name": row.host_name,
        "tags": ", ".join(row.tags),
        "join_url": row.join_url or "",
        "details_url": row.details_url or "",
    }


def _session_error(name: str, kind: str, text: str, form: dict[str, str]) -> tuple[str, Message]:
    if name == "":
        if "Vergangenheit" in text:
            return "start", Message("admin.err_start_past")
        if "Zeitzone" in text:
            return "timezone", Message("admin.err_timezone", {"value": form.get("timezone", "")})
        return "title", Message("admin.err_invalid")
    if name in _LIMITS and kind in {"string_too_short", "missing"}:
        return name, Message("admin.err_title_missing" if name == "title" else "form.required")
    if name in _LIMITS:
        return name, Message("admin.err_too_long", {"max": _LIMITS[name]})
    if name == "start":
        key = "form.required" if not form.get("start") else "admin.err_start_invalid"
        return name, Message(key)
    if name == "duration_minutes":
        return name, Message("admin.err_duration", {"max": MAX_DURATION_MINUTES})
    keys = {
        "format": "admin.err_format",
        "languages": "admin.err_languages",
        "tags": "admin.err_tags",
        "join_url": "admin.err_url",
        "details_url": "admin.err_url",
        "timezone": "admin.err_timezone",
    }
    return name, Message(keys.get(name, "admin.err_invalid"), {"value": form.get(name, "")})


def parse_session(form: dict[str, str], now: datetime) -> SessionInput | FieldErrors:
    """A :class:`SessionInput` from the form, or the errors per field."""
    data: dict[str, Any] = {
        "title": form.get("title", ""),
        "description": form.get("description", ""),
        "format": form.get("format", ""),
        "languages": _split(form.get("languages", ""), re.compile(r"[,;\s]+")),
        "start": form.get("start", ""),
        "timezone": form.get("timezone", ""),
        "duration_minutes": form.get("duration_minutes", ""),
        "host_name": form.get("host_name", ""),
        "tags": _split(form.get("tags", "")),
        "join_url": form.get("join_url") or None,
        "details_url": form.get("details_url") or None,
    }
    try:
        return SessionInput.model_validate(data, context={"now": now})
    except ValidationError as exc:
        errors: FieldErrors = {}
        for error in exc.errors(include_url=False):
            loc = error["loc"]
            text = str(error["msg"]).removeprefix("Value error, ")
            name, message = _session_error(str(loc[0]) if loc else "", error["type"], text, form)
            errors.setdefault(name, message)
        return errors


def blank_opening(row: SessionRow) -> dict[str, Any]:
    """The opening form for *row*: its current opening, or the defaults."""
    return {
        "seats": str(row.open_seats) if row.open_seats > 0 else "",
        "audience": "all" if row.audience_all or not row.audience else "some",
        "partner": list(row.audience),
        "registration_mode": row.registration_mode or "auto",
        "waitlist": row.waitlist if row.open_seats > 0 else True,
        "email_required": row.email_required,
    }


def opening_values(form: dict[str, str], partners: list[str]) -> dict[str, Any]:
    return {
        "seats": form.get("seats", ""),
        "audience": "some" if form.get("audience") == "some" else "all",
        "partner": partners,
        "registration_mode": form.get("registration_mode", "auto"),
        "waitlist": form.get("waitlist") == "yes",
        "email_required": form.get("email_required") == "yes",
    }


def parse_opening(values: dict[str, Any]) -> OpeningInput | FieldErrors:
    seats_text = str(values["seats"])
    if not re.fullmatch(r"-?\d{1,9}", seats_text):
        key = "form.required" if not seats_text else "admin.err_seats"
        return {"seats": Message(key, {"max": MAX_SEATS})}
    data = {
        "seats": int(seats_text),
        "audience": "all" if values["audience"] == "all" else list(values["partner"]),
        "registration_mode": values["registration_mode"],
        "waitlist": values["waitlist"],
        "email_required": values["email_required"],
    }
    try:
        return OpeningInput.model_validate(data)
    except ValidationError as exc:
        errors: FieldErrors = {}
        for error in exc.errors(include_url=False):
            loc = error["loc"]
            name = str(loc[0]) if loc else "audience"
            key = {
                "seats": "admin.err_seats",
                "audience": "admin.err_audience_empty",
                "registration_mode": "admin.err_registration_mode",
            }.get(name, "admin.err_invalid")
            errors.setdefault(name, Message(key, {"max": MAX_SEATS, "value": ""}))
        return errors
