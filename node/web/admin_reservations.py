"""``/admin/api/v1``: reservations as the admins see them, privacy, dead letters.

Host side (partners' employees in our sessions):

- ``GET /sessions/{id}/reservations``: quota, seats taken, per-partner
  counts and caps, the waitlist in order, pending approvals, every row.
- ``PUT|DELETE /sessions/{id}/caps/{node_id}``: a partner's cap.
- ``GET /reservations/pending``; ``POST /reservations/incoming/{uuid}/approve``,
  ``…/decline`` and ``…/cancel`` (the host cancels one reservation).

Requester side (our employees at partners): ``GET /reservations/outgoing``.

Privacy: ``GET /privacy/{ref}`` exports, ``DELETE /privacy/{ref}`` erases
everything held for a person's ref on both sides.

Outbox: ``GET /outbox`` lists dead letters; ``POST /outbox/{id}/retry``
queues one again; ``DELETE /outbox/{id}`` discards it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from node.db import outbox as outbox_repo
from node.federation.outbox import State
from node.reservations.host import UNKNOWN
from node.reservations.requester import OutgoingRow
from node.web.admin_api import PREFIX, json_body, node_of, validate
from node.web.errors import ApiError, plain_int
from node.web.portal_reservations import STATES
from protocol.models import format_timestamp


class CapInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    cap: int = Field(ge=0, le=10_000)


async def session_reservations(request: web.Request) -> web.Response:
    node = node_of(request)
    session = await node.sessions.get(request.match_info["id"])
    rows = await node.host.for_session(session.id)
    partners: dict[str, Counter[str]] = {}
    for row in rows:
        partners.setdefault(row.requester, Counter())[row.state] += row.seats
    return web.json_response(
        {
            "session_id": session.id,
            "title": session.title,
            "quota": session.open_seats,
            "taken": session.seats_taken,
            "caps": await node.host.caps(session.id),
            "by_partner": {node_id: dict(counts) for node_id, counts in sorted(partners.items())},
            "waitlist": [row.to_json() for row in rows if row.state == "waitlisted"],
            "pending": [row.to_json() for row in rows if row.state == "pending"],
            "reservations": [row.to_json() for row in rows],
        }
    )


async def set_cap(request: web.Request) -> web.Response:
    node = node_of(request)
    session = await node.sessions.get(request.match_info["id"])
    node_id = request.match_info["node_id"]
    if request.method == "DELETE":
        await node.host.set_cap(session.id, node_id, None)
    else:
        cap = validate(CapInput, await json_body(request))
        await node.peering.get(node_id)  # 404 for an unknown partner
        await node.host.set_cap(session.id, node_id, cap.cap)
    return web.json_response({"caps": await node.host.caps(session.id)})


async def pending(request: web.Request) -> web.Response:
    rows = await node_of(request).host.pending()
    return web.json_response({"items": [row.to_json() for row in rows]})


async def incoming(request: web.Request) -> web.Response:
    row = await node_of(request).host.get(request.match_info["uuid"])
    if row is None:
        raise UNKNOWN
    return web.json_response(row.to_json())


async def act(request: web.Request) -> web.Response:
    host = node_of(request).host
    reservation_id, action = request.match_info["uuid"], request.match_info["action"]
    if await host.get(reservation_id) is None:
        raise UNKNOWN
    if action == "cancel":
        row = await host.cancel_by_host(reservation_id)
    else:
        row = await host.decide(reservation_id, approve=action == "approve")
    return web.json_response(row.to_json())


async def outgoing(request: web.Request) -> web.Response:
    allowed = {"ref", "state", "host"}
    if unknown := set(request.query) - allowed:
        name = sorted(unknown)[0]
        raise ApiError(400, "invalid_query", f"Unbekannter Parameter / unknown: {name}", field=name)
    state = request.query.get("state")
    if state is not None and state not in STATES:
        raise ApiError(400, "invalid_query", f"state: {', '.join(sorted(STATES))}", field="state")
    rows: list[OutgoingRow] = await node_of(request).requests.find(
        ref=request.query.get("ref"), state=state, host=request.query.get("host"), limit=1000
    )
    return web.json_response({"items": [row.to_json() for row in rows]})


async def privacy(request: web.Request) -> web.Response:
    node = node_of(request)
    ref = request.match_info["ref"]
    if request.method == "DELETE":
        incoming_count = await node.host.erase(ref)
        outgoing_count = await node.requests.erase(ref)
        return web.json_response(
            {"ref": ref, "deleted": {"incoming": incoming_count, "outgoing": outgoing_count}}
        )
    return web.json_response(
        {
            "ref": ref,
            "exported_at": format_timestamp(node.clock.now()),
            "incoming": await node.host.export(ref),
            "outgoing": await node.requests.export(ref),
        }
    )


def _message_json(message: outbox_repo.OutboxRow) -> dict[str, Any]:
    return {
        "id": message.id,
        "peer": message.peer_node_id,
        "kind": message.kind,
        "state": message.state,
        "attempts": message.attempts,
        "error": message.last_error,
        "created_at": format_timestamp(message.created_at),
        "updated_at": format_timestamp(message.updated_at),
    }


async def dead_letters(request: web.Request) -> web.Response:
    node = node_of(request)
    async with node.db.read() as conn:
        messages = await outbox_repo.list_messages(conn, state=State.DEAD)
    return web.json_response({"items": [_message_json(m) for m in messages]})


async def dead_letter(request: web.Request) -> web.Response:
    node = node_of(request)
    message_id = plain_int(request.match_info["message_id"])
    async with node.db.read() as conn:
        message = await outbox_repo.get(conn, message_id) if message_id is not None else None
    if message is None or message.state != State.DEAD:
        raise ApiError(
            404, "not_found", "Keine solche unzustellbare Nachricht / no such dead letter"
        )
    if request.method == "DELETE":
        async with node.db.write() as conn:
            await outbox_repo.discard(conn, message.id)
        return web.Response(status=204)
    await node.deliverer.handle_dead(message)
    await node.deliverer.deliver_peer(message.peer_node_id)
    async with node.db.read() as conn:
        now_message = await outbox_repo.get(conn, message.id)
    assert now_message is not None
    return web.json_response(_message_json(now_message))


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{PREFIX}/sessions/{{id}}/reservations", session_reservations)
    r.add_put(f"{PREFIX}/sessions/{{id}}/caps/{{node_id}}", set_cap)
    r.add_delete(f"{PREFIX}/sessions/{{id}}/caps/{{node_id}}", set_cap)
    r.add_get(f"{PREFIX}/reservations/pending", pending)
    r.add_get(f"{PREFIX}/reservations/outgoing", outgoing)
    r.add_get(f"{PREFIX}/reservations/incoming/{{uuid}}", incoming)
    r.add_post(f"{PREFIX}/reservations/incoming/{{uuid}}/{{action:approve|decline|cancel}}", act)
    r.add_get(f"{PREFIX}/privacy/{{ref}}", privacy)
    r.add_delete(f"{PREFIX}/privacy/{{ref}}", privacy)
    r.add_get(f"{PREFIX}/outbox", dead_letters)
    r.add_post(f"{PREFIX}/outbox/{{message_id}}/retry", dead_letter)
    r.add_delete(f"{PREFIX}/outbox/{{message_id}}", dead_letter)
