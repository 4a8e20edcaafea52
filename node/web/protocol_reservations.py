"""``/protocol/v1/reservations/{uuid}``: the host side of SPEC.md §9.

The protocol middleware has already verified the request signature and
that the signer is an active peer; these handlers check the body against
the path and the signer, and leave every decision to the host's desk.
"""

from __future__ import annotations

import re

from aiohttp import web

from node.web.errors import ApiError
from node.web.protocol_auth import VERIFIED
from node.web.protocol_routes import NODE
from protocol.models import ReservationRequest, parse

PATH = "/protocol/v1/reservations/{uuid}"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _target(request: web.Request) -> tuple[str, str]:
    """The reservation uuid of the path and the verified requesting node."""
    reservation_id = request.match_info["uuid"]
    if not UUID.match(reservation_id):
        raise ApiError(
            404, "unknown_reservation", "Keine solche Reservierung / no such reservation"
        )
    verified = request[VERIFIED]
    assert verified.peer is not None
    return reservation_id, verified.peer.node_id


async def put_reservation(request: web.Request) -> web.Response:
    """``PUT``: decide a request, or repeat the current answer (idempotent)."""
    reservation_id, requester = _target(request)
    if request.content_type != "application/json":
        raise ApiError(
            415, "unsupported_media_type", "Erwartet application/json / expected application/json"
        )
    body = parse(ReservationRequest, request[VERIFIED].body)
    if body.id != reservation_id:
        raise ApiError(
            400, "schema_violation", "id passt nicht zum Pfad / id differs from path", field="id"
        )
    answer, created = await request.app[NODE].host.reserve(body, requester)
    return web.json_response(answer, status=201 if created else 200)


async def get_reservation(request: web.Request) -> web.Response:
    reservation_id, requester = _target(request)
    return web.json_response(await request.app[NODE].host.current(reservation_id, requester))


async def delete_reservation(request: web.Request) -> web.Response:
    reservation_id, requester = _target(request)
    return web.json_response(await request.app[NODE].host.cancel(reservation_id, requester))


async def confirm_reservation(request: web.Request) -> web.Response:
    reservation_id, requester = _target(request)
    return web.json_response(await request.app[NODE].host.confirm(reservation_id, requester))


def setup(app: web.Application) -> None:
    app.router.add_put(PATH, put_reservation)
    app.router.add_get(PATH, get_reservation)
    app.router.add_delete(PATH, delete_reservation)
    app.router.add_post(PATH + "/confirm", confirm_reservation)
