"""What a portal may post to ``/api/v1/sessions/{id}/reservations``.

Each kind of mistake has its own error code (``invalid_seats``,
``attendee_ref_missing``, ``invalid_email`` …), so a portal can show the
right message next to the right field.  The attendee types are the wire
types of SPEC.md §12, so whatever passes here is also valid on the wire.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from node.reservations.host import ReservationError
from protocol.models.common import DisplayName
from protocol.models.reservation import MAX_SEATS_PER_REQUEST, AttendeeRef, Email


class _Attendee(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ref: AttendeeRef
    display_name: DisplayName
    email: Email | None = None


class PortalRequest(BaseModel):
    """What a portal posts to ``/api/v1/sessions/{id}/reservations``."""

    model_config = ConfigDict(extra="forbid")
    attendee: _Attendee
    seats: StrictInt = Field(default=1, ge=1, le=MAX_SEATS_PER_REQUEST)
    hold: StrictBool = False


_FIELD_CODES = {
    ("attendee",): "attendee_missing",
    ("attendee", "ref"): "invalid_attendee_ref",
    ("attendee", "display_name"): "invalid_display_name",
    ("attendee", "email"): "invalid_email",
    ("seats",): "invalid_seats",
    ("hold",): "invalid_hold",
}


def read_portal_request(data: Any) -> PortalRequest:
    """Validate a portal's body; each kind of mistake has its own code."""
    if not isinstance(data, dict):
        raise ReservationError("invalid_body", "Ein JSON-Objekt erwartet / expected a JSON object")
    try:
        return PortalRequest.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(str(part) for part in error["loc"])
        field = ".".join(loc)
        if error["type"] == "extra_forbidden":
            raise ReservationError(
                "unknown_field", f"Unbekanntes Feld / unknown field: {field}", field=field
            ) from None
        code = _FIELD_CODES.get(loc, "invalid_body")
        if loc == ("attendee", "ref") and error["type"] == "missing":
            code = "attendee_ref_missing"
        raise ReservationError(
            code, f"{field}: {_MESSAGES.get(code, error['msg'])}", field=field
        ) from None


_MESSAGES = {
    "attendee_missing": "Teilnehmende Person fehlt / attendee missing",
    "attendee_ref_missing": "Pseudonym (ref) fehlt / attendee ref missing",
    "invalid_attendee_ref": "1–128 Zeichen aus A-Z a-z 0-9 . _ ~ : - / 1-128 characters",
    "invalid_display_name": "Name: 1–120 Zeichen / name: 1-120 characters",
    "invalid_email": "Keine gültige E-Mail-Adresse / not a valid email address",
    "invalid_seats": f"Plätze: 1–{MAX_SEATS_PER_REQUEST} / seats: 1-{MAX_SEATS_PER_REQUEST}",
    "invalid_hold": "hold: true oder false / true or false",
}
