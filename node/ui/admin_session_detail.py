"""``/admin/sessions/{id}``: one session, its opening, its reservations.

The page shows the session, the form that opens it to partners (seats,
audience, registration mode), the seat gauge, the reservations grouped by
partner, the waitlist and the pending approvals with their buttons.
Opening, closing and cancelling go through
:class:`~node.publishing.service.SessionService`; approving and declining
through :class:`~node.reservations.host.HostDesk`, as the admin API does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from node.db.sessions import SessionRow
from node.publishing.service import SessionError
from node.reservations.host import ReservationError
from node.ui.admin_common import LABELS, node_of, not_found_for, peer_names, when_for
from node.ui.admin_session_form import (
    FORMAT_OPTIONS,
    MODE_OPTIONS,
    blank_opening,
    opening_values,
    parse_opening,
)
from node.ui.admin_sessions import LIST_PATH
from node.ui.auth import require_admin
from node.ui.errors import PageError
from node.ui.forms import FieldErrors, confirmed, read_form
from node.ui.i18n import Message
from node.ui.render import redirect, render

# Peers a session can be opened to (the service refuses declined and pending_in).
AUDIENCE_STATES = ("active", "suspended", "pending_out")
SHOWN_STATES = ("confirmed", "held", "pending", "waitlisted", "requested")


@dataclass(frozen=True)
class PartnerLine:
    node_id: str
    name: str
    counts: dict[str, int]
    cap: int | None


async def _session(request: web.Request) -> SessionRow:
    try:
        return await node_of(request).sessions.get(request.match_info["id"])
    except SessionError as exc:
        raise not_found_for(exc) from None


async def render_detail(
    request: web.Request,
    row: SessionRow,
    *,
    opening: dict[str, Any] | None = None,
    errors: FieldErrors | None = None,
    form_error: Message | None = None,
    status: int = 200,
) -> web.Response:
    node = node_of(request)
    reservations = await node.host.for_session(row.id)
    caps = await node.host.caps(row.id)
    names = await peer_names(request)
    counts: dict[str, Counter[str]] = {}
    for item in reservations:
        counts.setdefault(item.requester, Counter())[item.state] += item.seats
    partners = [
        PartnerLine(
            node_id,
            names.get(node_id, node_id),
            dict(found),
            caps[node_id]["cap"] if node_id in caps else None,
        )
        for node_id, found in sorted(counts.items())
    ]
    audience_peers = [p for p in await node.peering.list() if p.state in AUDIENCE_STATES]
    context = {
        "session": row,
        "partners": partners,
        "states": SHOWN_STATES,
        "names": names,
        "waitlist": [r for r in reservations if r.state == "waitlisted"],
        "pending": [r for r in reservations if r.state == "pending"],
        "audience_peers": audience_peers,
        "values": opening or blank_opening(row),
        "errors": errors or {},
        "form_error": form_error,
        "mode_options": MODE_OPTIONS,
        "when": when_for(request),
        "labels": LABELS,
        "formats": dict(FORMAT_OPTIONS),
    }
    return await render(request, "admin/session_detail.html", context, status=status)


async def detail_page(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    return await render_detail(request, await _session(request))


_OPEN_ERRORS = {
    "join_url_required": ("form", "admin.err_join_url_required"),
    "session_cancelled": ("form", "admin.err_session_cancelled"),
    "quota_below_taken": ("seats", "admin.err_quota_below_taken"),
    "unknown_peer": ("audience", "admin.err_unknown_partner"),
}


async def open_session(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    row = await _session(request)
    form = await read_form(request)
    partners = [v for v in (await request.post()).getall("partner", []) if isinstance(v, str)]
    values = opening_values(form, partners)
    parsed = parse_opening(values)
    if isinstance(parsed, dict):
        return await render_detail(request, row, opening=values, errors=parsed, status=400)
    try:
        await node_of(request).sessions.open(row.id, parsed)
    except SessionError as exc:
        if exc.status == 404:
            raise not_found_for(exc) from None
        where, key = _OPEN_ERRORS.get(exc.code, ("form", "admin.err_invalid"))
        if where == "form":
            return await render_detail(
                request, row, opening=values, form_error=Message(key), status=400
            )
        errors = {where: Message(key)}
        return await render_detail(request, row, opening=values, errors=errors, status=400)
    return redirect(request, f"{LIST_PATH}/{row.id}", flash=("success", "admin.session_opened"))


async def close_session(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    row = await _session(request)
    await node_of(request).sessions.close(row.id)
    return redirect(request, f"{LIST_PATH}/{row.id}", flash=("success", "admin.session_closed"))


async def cancel_session(request: web.Request) -> web.StreamResponse:
    """GET asks; POST with ``confirmed=yes`` cancels, without it asks too."""
    await require_admin(request)
    row = await _session(request)
    if request.method == "POST" and confirmed(await read_form(request)):
        await node_of(request).sessions.cancel(row.id)
        return redirect(
            request, f"{LIST_PATH}/{row.id}", flash=("success", "admin.session_cancelled")
        )
    return await render(request, "admin/session_cancel.html", {"session": row})


async def decide(request: web.Request) -> web.StreamResponse:
    """Approve or decline a pending reservation, then back to its session."""
    await require_admin(request)
    host = node_of(request).host
    reservation = await host.get(request.match_info["uuid"])
    if reservation is None:
        raise PageError(404)
    approve = request.match_info["action"] == "approve"
    target = f"{LIST_PATH}/{reservation.session_id}"
    try:
        await host.decide(reservation.id, approve=approve)
    except ReservationError:
        return redirect(request, target, flash=("error", "admin.reservation_not_pending"))
    key = "admin.reservation_approved" if approve else "admin.reservation_declined"
    return redirect(request, target, flash=("success", key))


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{LIST_PATH}/{{id}}", detail_page)
    r.add_post(f"{LIST_PATH}/{{id}}/open", open_session)
    r.add_post(f"{LIST_PATH}/{{id}}/close", close_session)
    r.add_get(f"{LIST_PATH}/{{id}}/cancel", cancel_session)
    r.add_post(f"{LIST_PATH}/{{id}}/cancel", cancel_session)
    r.add_post("/admin/reservations/{uuid}/{action:approve|decline}", decide)
