"""``/api/v1``: the portal books partner seats for its employees.

- ``POST /sessions/{id}/reservations`` (optional ``Idempotency-Key``) queues
  the request to the host and answers 202 with the reservation, state
  ``requested``.  A retry with the same key and body returns the same
  reservation (``Idempotent-Replayed: true``); the same key with another
  body is 409.
- ``GET /reservations/{id}`` shows only what the host decided.
- ``DELETE /reservations/{id}`` asks the host to cancel (202).
- ``POST /reservations/{id}/confirm`` confirms a hold (202).
- ``GET /reservations/{id}.ics`` is the personal invitation.
- ``GET /reservations?ref=…&state=…`` lists reservations.

Reservations are personal: these routes always need a ``portal`` or
``admin`` token, even when the catalogue is public; the ``.ics`` also takes
``?token=`` (``portal`` or ``calendar``) for calendar apps.
"""

from __future__ import annotations

import re

from aiohttp import web

from node.db import catalogue as catalogue_repo
from node.reservations.invite import render_invite
from node.reservations.requester import OutgoingRow
from node.web.admin_api import json_body, require_role, token_role
from node.web.errors import ApiError, plain_int
from node.web.protocol_routes import NODE

PREFIX = "/api/v1"
STATES = {"requested", "held", "confirmed", "waitlisted", "pending", "rejected", "cancelled"}
LIST_QUERY = {"ref", "state", "host", "limit", "offset"}
IDEMPOTENCY_KEY = re.compile(r"[!-~]{1,200}")  # stored and compared as given


def _view(row: OutgoingRow, status: int = 200, **headers: str) -> web.Response:
    return web.json_response(
        row.to_json(),
        status=status,
        headers={"Location": f"{PREFIX}/reservations/{row.id}", **headers},
    )


async def create(request: web.Request) -> web.Response:
    await require_role(request, "portal", "admin")
    data = await json_body(request)
    key = request.headers.get("Idempotency-Key")
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        raise ApiError(
            400,
            "invalid_idempotency_key",
            "Idempotency-Key: 1–200 sichtbare ASCII-Zeichen / 1-200 visible ASCII characters",
            field="Idempotency-Key",
        )
    row, created = await request.app[NODE].requests.create(request.match_info["id"], data, key)
    extra = {} if created else {"Idempotent-Replayed": "true"}
    return _view(row, 202, **extra)


async def show(request: web.Request) -> web.StreamResponse:
    raw = request.match_info["id"]
    if raw.endswith(".ics"):
        return await invite(request, raw.removesuffix(".ics"))
    await require_role(request, "portal", "admin")
    return _view(await request.app[NODE].requests.get(raw))


async def invite(request: web.Request, reservation_id: str) -> web.Response:
    node = request.app[NODE]
    if "token" in request.query and "Authorization" not in request.headers:
        role = await token_role(request, request.query["token"])
        if role not in ("portal", "calendar", "admin"):
            raise ApiError(401, "unauthenticated", "Token ungültig / invalid token")
    else:
        await require_role(request, "portal", "admin")
    row = await node.requests.get(reservation_id)
    async with node.db.read() as conn:
        entry = await catalogue_repo.get(
            conn, row.host, row.session_id, node.settings.registration_template
        )
    body = render_invite(row, entry, node.settings.node_id)
    return web.Response(
        body=body,
        content_type="text/calendar",
        charset="utf-8",
        headers={"Cache-Control": "private, no-store"},
    )


async def cancel(request: web.Request) -> web.Response:
    await require_role(request, "portal", "admin")
    return _view(await request.app[NODE].requests.cancel(request.match_info["id"]), 202)


async def confirm(request: web.Request) -> web.Response:
    await require_role(request, "portal", "admin")
    return _view(await request.app[NODE].requests.confirm(request.match_info["id"]), 202)


def _query_int(request: web.Request, name: str, default: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    value = plain_int(raw, high)
    if value is None:
        raise ApiError(400, "invalid_query", f"{name}: 0..{high}", field=name)
    return value


async def find(request: web.Request) -> web.Response:
    await require_role(request, "portal", "admin")
    unknown = set(request.query) - LIST_QUERY
    if unknown:
        name = sorted(unknown)[0]
        raise ApiError(
            400, "invalid_query", f"Unbekannter Parameter / unknown parameter: {name}", field=name
        )
    state = request.query.get("state")
    if state is not None and state not in STATES:
        raise ApiError(400, "invalid_query", f"state: {', '.join(sorted(STATES))}", field="state")
    rows = await request.app[NODE].requests.find(
        ref=request.query.get("ref"),
        state=state,
        host=request.query.get("host"),
        limit=max(_query_int(request, "limit", 100, 1000), 1),
        offset=_query_int(request, "offset", 0, 10**9),
    )
    return web.json_response({"items": [row.to_json() for row in rows]})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post(f"{PREFIX}/sessions/{{id}}/reservations", create)
    r.add_get(f"{PREFIX}/reservations", find)
    r.add_get(f"{PREFIX}/reservations/{{id}}", show)
    r.add_delete(f"{PREFIX}/reservations/{{id}}", cancel)
    r.add_post(f"{PREFIX}/reservations/{{id}}/confirm", confirm)
