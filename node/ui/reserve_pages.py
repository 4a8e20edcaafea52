"""Reserving a partner's seat from the session page, and the reservation's own page.

``POST /sessions/{id}/reserve`` takes a display name and, when the host
asks for it, an email.  The node makes the attendee's pseudonymous ``ref``
itself (``web-`` and 16 hex digits, never the email) and hands the request
to :meth:`node.reservations.requester.Requests.create`, which queues it to
the host.  A hidden ``form_id`` makes the ref and the idempotency key, so
a double submit books once.  Mistakes are field errors in the visitor's
language, with the input kept.

The reservation's page ``/reservations/{uuid}?k=…`` shows the host's
answer (angefragt, bestätigt, Warteliste, wartet auf Freigabe, abgelehnt
with the reason, storniert) and reloads itself with ``<meta
http-equiv="refresh">`` while the host has not answered.  ``k`` is a
capability: an HMAC of the uuid with a key derived from the node's signing
key, so only whoever got the link can read the page, fetch the personal
``.ics`` or cancel; a wrong ``k`` is a 404, like an unknown uuid.  Links
stay valid across a key rotation while the old key is in its grace period.
Cancelling asks first (``ui.confirm``) and then asks the host.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from node.db import catalogue as catalogue_repo
from node.reservations.host import ReservationError
from node.reservations.invite import is_cancelled, render_invite
from node.reservations.requester import FINAL, OutgoingRow
from node.runtime import NodeServices
from node.ui.catalogue_access import Access, catalogue_view
from node.ui.catalogue_pages import find_entry, session_page_response
from node.ui.entry_view import can_reserve, reason_message, safe_link, state_message, when
from node.ui.errors import PageError
from node.ui.forms import FieldErrors, confirmed, read_form
from node.ui.i18n import Message, translator_for
from node.ui.render import redirect, render
from node.web.protocol_routes import NODE
from protocol.models.common import DisplayName
from protocol.models.reservation import Email

UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
MAX_NAME = 120
REFRESH_SECONDS = 10
_FORM_ID = re.compile(r"[A-Za-z0-9_-]{22,64}")
_NAME = TypeAdapter(DisplayName)
_EMAIL = TypeAdapter(Email)
# Errors of Requests.create that are not about a field, by code.
FORM_ERRORS = {
    "unknown_session": "reserve.error_unknown_session",
    "local_session": "reserve.error_local_session",
    "host_unavailable": "reserve.error_host_unavailable",
}


# --- the capability --------------------------------------------------------------------


def _keys(node: NodeServices) -> list[bytes]:
    """The primary key's derived key first, then those of keys still in their grace period."""
    keys = node.identity.keys
    now = node.clock.now()
    signing = [keys.primary, *keys.current[:-1], *(k for k, until in keys.old if until > now)]
    return [
        hashlib.sha256(
            b"openseats-reservation-page\x00" + key.private_key.private_bytes_raw()
        ).digest()
        for key in signing
    ]


def _mac(key: bytes, reservation_id: str) -> str:
    digest = hmac.new(key, reservation_id.encode("ascii"), "sha256").digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def capability(node: NodeServices, reservation_id: str) -> str:
    return _mac(_keys(node)[0], reservation_id)


def _holds(node: NodeServices, reservation_id: str, k: str) -> bool:
    return bool(k) and any(
        hmac.compare_digest(_mac(key, reservation_id).encode(), k.encode("ascii", "replace"))
        for key in _keys(node)
    )


async def _reservation(request: web.Request, k: str) -> OutgoingRow:
    """The reservation in the path, if *k* is its capability; else a 404 page."""
    node: NodeServices = request.app[NODE]
    reservation_id = request.match_info["id"]
    if not _holds(node, reservation_id, k):
        raise PageError(404, "reserve.not_found")
    try:
        return await node.requests.get(reservation_id)
    except ReservationError:
        raise PageError(404, "reserve.not_found") from None


def status_path(node: NodeServices, reservation_id: str) -> str:
    return f"/reservations/{reservation_id}?k={capability(node, reservation_id)}"


# --- reserving -------------------------------------------------------------------------


def check_fields(form: dict[str, str], email_required: bool) -> FieldErrors:
    errors: FieldErrors = {}
    name = form.get("display_name", "")
    if not name:
        errors["display_name"] = Message("reserve.name_missing")
    elif len(name) > MAX_NAME:
        errors["display_name"] = Message("reserve.name_too_long", {"max": MAX_NAME})
    else:
        try:
            _NAME.validate_python(name)
        except ValidationError:
            errors["display_name"] = Message("reserve.name_invalid")
    if email_required:
        email = form.get("email", "")
        if not email:
            errors["email"] = Message("reserve.email_missing")
        else:
            try:
                _EMAIL.validate_python(email)
            except ValidationError:
                errors["email"] = Message("reserve.email_invalid")
    return errors


@catalogue_view
async def reserve(request: web.Request, access: Access) -> web.StreamResponse:
    node: NodeServices = request.app[NODE]
    entry = await find_entry(node, request.match_info["entry_id"])
    form = await read_form(request)
    values = {name: form.get(name, "") for name in ("display_name", "email", "form_id")}
    if entry.is_local:
        return await session_page_response(
            request, entry, form_error=Message("reserve.error_local_session"), status=409
        )
    if not can_reserve(entry, node.clock.now()):
        return await session_page_response(
            request, entry, form_error=Message("reserve.not_possible"), status=409
        )
    errors = check_fields(form, entry.email_required)
    if errors:
        return await session_page_response(request, entry, values=values, errors=errors, status=400)
    form_id = values["form_id"]
    if not _FORM_ID.fullmatch(form_id):
        form_id = values["form_id"] = secrets.token_urlsafe(16)
    attendee: dict[str, Any] = {"display_name": values["display_name"]}
    if entry.email_required:
        attendee["email"] = values["email"]
    try:
        row = await _create(node, entry.id, attendee, form_id)
    except ReservationError as exc:
        errors = {}
        if exc.field == "attendee.display_name":
            errors = {"display_name": Message("reserve.name_invalid")}
        elif exc.field == "attendee.email":
            key = (
                "reserve.email_missing" if exc.code == "email_required" else "reserve.email_invalid"
            )
            errors = {"email": Message(key)}
        if errors:
            return await session_page_response(
                request, entry, values=values, errors=errors, status=400
            )
        message = Message(FORM_ERRORS.get(exc.code, "reserve.error_generic"))
        return await session_page_response(
            request, entry, values=values, form_error=message, status=exc.status
        )
    return redirect(request, status_path(node, row.id), flash=("success", "reserve.sent"))


async def _create(
    node: NodeServices, entry_id: str, attendee: dict[str, Any], form_id: str
) -> OutgoingRow:
    """Ask the host; the same form sent twice is one reservation."""
    for _ in range(2):
        ref = "web-" + hashlib.sha256(form_id.encode()).hexdigest()[:16]
        data = {"attendee": {"ref": ref, **attendee}}
        try:
            row, _created = await node.requests.create(entry_id, data, f"web-form:{form_id}")
            return row
        except ReservationError as exc:
            if exc.code != "idempotency_conflict":
                raise
            form_id = secrets.token_urlsafe(16)  # the same form, changed: a new request
    raise ReservationError("idempotency_conflict", "retry failed", status=409)


# --- the reservation's page ------------------------------------------------------------


async def status_page(request: web.Request) -> web.StreamResponse:
    node: NodeServices = request.app[NODE]
    k = request.query.get("k", "")
    row = await _reservation(request, k)
    t = translator_for(request)
    async with node.db.read() as conn:
        entry = await catalogue_repo.get(
            conn, row.host, row.session_id, node.settings.registration_template
        )
    start, end, zone = (
        (entry.start_at, entry.end_at, entry.timezone)
        if entry
        else (row.start_at, row.end_at, row.timezone)
    )
    context = {
        "row": row,
        "k": k,
        "when": when(t, start, end, zone),
        "state": state_message(row.state, row.position, row.cancelled_by),
        "reason": reason_message(row.reason) if row.state == "rejected" else None,
        "session_cancelled": entry is not None and entry.status == "cancelled",
        "join_url": safe_link(row.join_url) if row.state == "confirmed" else None,
        "refresh": REFRESH_SECONDS if row.state == "requested" else None,
        "cancel_pending": row.cancel_requested and row.state not in FINAL,
        "can_cancel": row.state not in FINAL and not row.cancel_requested,
        "ics_href": f"/reservations/{row.id}.ics?k={k}",
        "cancelled": is_cancelled(row, entry),
    }
    return await render(
        request, "catalogue/reservation.html", context, headers={"Cache-Control": "no-store"}
    )


async def invite(request: web.Request) -> web.StreamResponse:
    """The personal invitation, as ``/api/v1/reservations/{id}.ics`` gives it to portals."""
    node: NodeServices = request.app[NODE]
    row = await _reservation(request, request.query.get("k", ""))
    async with node.db.read() as conn:
        entry = await catalogue_repo.get(
            conn, row.host, row.session_id, node.settings.registration_template
        )
    return web.Response(
        body=render_invite(row, entry, node.settings.node_id),
        content_type="text/calendar",
        charset="utf-8",
        headers={"Cache-Control": "private, no-store"},
    )


async def cancel(request: web.Request) -> web.StreamResponse:
    node: NodeServices = request.app[NODE]
    form = await read_form(request)
    k = form.get("k") or request.query.get("k", "")
    row = await _reservation(request, k)
    back = status_path(node, row.id)
    if row.state in FINAL or row.cancel_requested:
        return redirect(request, back)
    if not confirmed(form):
        context = {"row": row, "k": k, "back": back}
        return await render(request, "catalogue/cancel.html", context)
    await node.requests.cancel(row.id)
    return redirect(request, back, flash=("success", "reserve.cancel_sent"))


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/sessions/{entry_id}/reserve", reserve)
    r.add_get(f"/reservations/{{id:{UUID}}}.ics", invite)
    r.add_get(f"/reservations/{{id:{UUID}}}", status_page)
    r.add_post(f"/reservations/{{id:{UUID}}}/cancel", cancel)
