"""``/admin/api/v1``: what a node admin does, as JSON over HTTP.

Every route needs ``Authorization: Bearer <token>`` with the ``admin``
role (``openseats token create --role admin``).  Bodies are strict JSON
(:func:`protocol.canonical.loads`); every failure is a JSON error body with
a stable code, and a failed request changes nothing.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from node.db import outbox as outbox_repo
from node.db import sync as sync_repo
from node.db import tokens as token_repo
from node.db.peers import PeerRow
from node.db.sessions import SessionRow
from node.identity import RotationRefused
from node.publishing.input import OpeningInput, SessionInput
from node.runtime import NodeServices
from node.web.errors import ApiError, plain_int, read_body, validation_error
from node.web.protocol_routes import NODE
from protocol.canonical import loads
from protocol.errors import MalformedError
from protocol.models import format_timestamp

PREFIX = "/admin/api/v1"
M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if hmac.compare_digest(scheme.lower(), "bearer") and token.strip():
        return token.strip()
    return None


async def token_role(request: web.Request, token: str) -> str | None:
    """The role of a live token, or None.

    Every token this node issues is ASCII; a header with other bytes (which
    aiohttp hands over as surrogates) names no token and must not reach the
    hash, which would fail on it.
    """
    if not token.isascii():
        return None
    async with request.app[NODE].db.read() as conn:
        return await token_repo.role_of(conn, token)


async def require_role(request: web.Request, *roles: str) -> str:
    token = bearer_token(request)
    if token is None:
        raise ApiError(
            401,
            "unauthenticated",
            "Token fehlt / bearer token missing",
            headers={"WWW-Authenticate": 'Bearer realm="openseats"'},
        )
    role = await token_role(request, token)
    if role is None:
        raise ApiError(
            401,
            "unauthenticated",
            "Token ungültig / invalid or revoked token",
            headers={"WWW-Authenticate": 'Bearer realm="openseats"'},
        )
    if role not in roles:
        raise ApiError(403, "forbidden", f"Rolle {role} reicht nicht / role {role} not allowed")
    return role


@web.middleware
async def admin_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(PREFIX):
        await require_role(request, "admin")
    return await handler(request)


async def json_body(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise ApiError(
            415, "unsupported_media_type", "Erwartet application/json / expected application/json"
        )
    body = await read_body(request, request.app[NODE].settings.max_body_bytes)
    try:
        data = loads(body)
    except MalformedError as exc:
        raise ApiError(400, exc.code, exc.message, field=exc.field) from None
    if (where := _nul_at(data)) is not None:
        raise ApiError(
            400,
            "invalid_body",
            "NUL-Zeichen sind nicht erlaubt / NUL characters are not allowed",
            field=where or None,
        )
    return data


def _nul_at(value: Any, where: str = "") -> str | None:
    """Where a NUL character hides in parsed JSON ("" for the top level), else None.

    PostgreSQL cannot store one in text, so it is refused before anything is stored.
    """
    if isinstance(value, str):
        return where if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _nul_at(key, where) if "\x00" in key else _nul_at(item, f"{where}.{key}")
            if found is not None:
                return found.lstrip(".")
    if isinstance(value, list):
        for index, item in enumerate(value):
            if (found := _nul_at(item, f"{where}.{index}")) is not None:
                return found.lstrip(".")
    return None


def validate(model: type[M], data: Any, **context: Any) -> M:
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", "Ein JSON-Objekt erwartet / expected a JSON object")
    try:
        return model.model_validate(data, context=context or None)
    except ValidationError as exc:
        raise validation_error(exc) from None


def session_json(row: SessionRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": row.title,
        "description": row.description,
        "format": row.format,
        "languages": row.languages,
        "start": format_timestamp(row.start_at),
        "timezone": row.timezone,
        "duration_minutes": row.duration_minutes,
        "host_name": row.host_name,
        "tags": row.tags,
        "status": row.status,
        "join_url": row.join_url,
        "details_url": row.details_url,
        "import": {"source": row.import_source, "key": row.import_key}
        if row.import_source
        else None,
        "opening": {
            "seats": row.open_seats,
            "seats_taken": row.seats_taken,
            "audience": "all" if row.audience_all else list(row.audience),
            "registration_mode": row.registration_mode,
            "waitlist": row.waitlist,
            "email_required": row.email_required,
        }
        if row.open_seats > 0
        else None,
        "announcement_version": row.version,
        "created_at": format_timestamp(row.created_at),
        "updated_at": format_timestamp(row.updated_at),
    }


def _ts(value: datetime | None) -> str | None:
    return format_timestamp(value) if value is not None else None


def peer_json(row: PeerRow) -> dict[str, Any]:
    return {
        "node_id": row.node_id,
        "display_name": row.display_name,
        "base_url": row.base_url,
        "fingerprint": row.fingerprint,
        "state": row.state,
        "suspended_by": row.suspended_by,
        "created_at": format_timestamp(row.created_at),
        "updated_at": format_timestamp(row.updated_at),
    }


def node_of(request: web.Request) -> NodeServices:
    return request.app[NODE]


def _paging(request: web.Request) -> tuple[int, int]:
    allowed = {"q", "limit", "offset"}
    if unknown := set(request.query) - allowed:
        raise ApiError(400, "invalid_query", f"Unbekannter Parameter / unknown: {sorted(unknown)}")
    try:
        limit = int(request.query.get("limit", "200"))
        offset = int(request.query.get("offset", "0"))
    except ValueError:
        raise ApiError(400, "invalid_query", "limit/offset: ganze Zahlen / integers") from None
    if not (1 <= limit <= 1000 and 0 <= offset <= 10**9):
        raise ApiError(400, "invalid_query", "limit 1..1000, offset >= 0")
    return limit, offset


# --- sessions ----------------------------------------------------------------


async def list_sessions(request: web.Request) -> web.Response:
    limit, offset = _paging(request)
    rows = await node_of(request).sessions.list(
        q=request.query.get("q"), limit=limit, offset=offset
    )
    return web.json_response({"sessions": [session_json(row) for row in rows]})


async def create_session(request: web.Request) -> web.Response:
    node = node_of(request)
    data = validate(SessionInput, await json_body(request), now=node.clock.now())
    row = await node.sessions.create(data)
    return web.json_response(session_json(row), status=201)


async def get_session(request: web.Request) -> web.Response:
    row = await node_of(request).sessions.get(request.match_info["id"])
    return web.json_response(session_json(row))


def _input_of(row: SessionRow) -> dict[str, Any]:
    return {
        "title": row.title,
        "description": row.description,
        "format": row.format,
        "languages": row.languages,
        "start": row.start_at,
        "timezone": row.timezone,
        "duration_minutes": row.duration_minutes,
        "host_name": row.host_name,
        "tags": row.tags,
        "join_url": row.join_url,
        "details_url": row.details_url,
    }


async def update_session(request: web.Request) -> web.Response:
    """PATCH: the members given replace the stored ones."""
    node = node_of(request)
    changes = await json_body(request)
    if not isinstance(changes, dict):
        raise ApiError(400, "invalid_body", "Ein JSON-Objekt erwartet / expected a JSON object")
    current = await node.sessions.get(request.match_info["id"])
    data = validate(SessionInput, {**_input_of(current), **changes}, now=node.clock.now())
    row = await node.sessions.update(current.id, data)
    return web.json_response(session_json(row))


async def cancel_session(request: web.Request) -> web.Response:
    row = await node_of(request).sessions.cancel(request.match_info["id"])
    return web.json_response(session_json(row))


async def withdraw_session(request: web.Request) -> web.Response:
    await node_of(request).sessions.withdraw(request.match_info["id"])
    return web.Response(status=204)


async def open_session(request: web.Request) -> web.Response:
    node = node_of(request)
    opening = validate(OpeningInput, await json_body(request))
    row = await node.sessions.open(request.match_info["id"], opening)
    return web.json_response(session_json(row))


async def close_session(request: web.Request) -> web.Response:
    row = await node_of(request).sessions.close(request.match_info["id"])
    return web.json_response(session_json(row))


# --- peers ---------------------------------------------------------------------


class AddPeer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str = Field(min_length=8, max_length=2048, pattern=r"^https?://")
    fingerprint: str = Field(min_length=1, max_length=100)


async def list_peers(request: web.Request) -> web.Response:
    rows = await node_of(request).peering.list()
    return web.json_response({"peers": [peer_json(row) for row in rows]})


async def add_peer(request: web.Request) -> web.Response:
    node = node_of(request)
    data = validate(AddPeer, await json_body(request))
    result = await node.peering.add(data.url, data.fingerprint)
    return web.json_response(
        {
            **peer_json(result.peer),
            "request_delivered": result.delivered,
            "delivery_error": result.delivery_error,
        },
        status=201,
    )


async def get_peer(request: web.Request) -> web.Response:
    node = node_of(request)
    peer = await node.peering.get(request.match_info["node_id"])
    async with node.db.read() as conn:
        messages = await outbox_repo.list_messages(conn, peer_node_id=peer.node_id)
        sync = await sync_repo.load(conn, peer.id)
        rejected = await sync_repo.rejections(conn, peer.node_id)
    return web.json_response(
        {
            **peer_json(peer),
            "sync": {
                "cursor": sync.cursor,
                "last_attempt_at": _ts(sync.last_attempt_at),
                "last_success_at": _ts(sync.last_success_at),
                "last_error": sync.last_error,
                "failures": sync.failures,
                "backoff_until": _ts(sync.next_attempt_at),
            },
            "rejected_items": [
                {
                    "item_id": r.item_id,
                    "reason": r.reason,
                    "detail": r.detail,
                    "at": format_timestamp(r.created_at),
                }
                for r in rejected
            ],
            "outbox": {
                "pending": sum(1 for m in messages if m.state == "pending"),
                "dead_letters": [
                    {
                        "id": m.id,
                        "kind": m.kind,
                        "error": m.last_error,
                        "created_at": format_timestamp(m.created_at),
                    }
                    for m in messages
                    if m.state == "dead"
                ],
            },
        }
    )


def _peer_action(action: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        service = node_of(request).peering
        row = await getattr(service, action)(request.match_info["node_id"])
        return web.json_response(peer_json(row))

    return handler


async def remove_peer(request: web.Request) -> web.Response:
    await node_of(request).peering.remove(request.match_info["node_id"])
    return web.Response(status=204)


# --- node, keys, tokens ---------------------------------------------------------


async def node_info(request: web.Request) -> web.Response:
    node = node_of(request)
    return web.json_response(
        {
            "node_id": node.identity.node_id,
            "display_name": node.settings.display_name,
            "base_url": node.identity.base_url,
            "fingerprint": node.identity.fingerprint,
            "key_id": node.identity.signing_key.key_id,
        }
    )


async def rotate_key(request: web.Request) -> web.Response:
    node = node_of(request)
    try:
        key = await node.identity.rotate(node.clock.now())
    except RotationRefused as exc:
        raise ApiError(409, "too_many_old_keys", str(exc)) from None
    return web.json_response({"key_id": key.key_id, "fingerprint": key.fingerprint})


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    role: Literal["admin", "portal", "calendar"]
    label: str = Field(default="", max_length=200)


async def list_tokens(request: web.Request) -> web.Response:
    async with node_of(request).db.read() as conn:
        rows = await token_repo.list_tokens(conn)
    return web.json_response(
        {
            "tokens": [
                {
                    "id": r.id,
                    "role": r.role,
                    "label": r.label,
                    "created_at": format_timestamp(r.created_at),
                    "revoked_at": format_timestamp(r.revoked_at) if r.revoked_at else None,
                }
                for r in rows
            ]
        }
    )


async def create_token(request: web.Request) -> web.Response:
    node = node_of(request)
    data = validate(NewToken, await json_body(request))
    async with node.db.write() as conn:
        token = await token_repo.create(conn, data.role, data.label, node.clock.now())
    return web.json_response({"token": token, "role": data.role}, status=201)


async def revoke_token(request: web.Request) -> web.Response:
    node = node_of(request)
    raw = request.match_info["token_id"]
    if not (raw.isascii() and raw.isdigit()):
        raise ApiError(400, "invalid_path", "Token-ID ist eine Zahl / token id is a number")
    token_id = plain_int(raw)
    found = False
    if token_id is not None:
        async with node.db.write() as conn:
            found = await token_repo.revoke(conn, token_id, node.clock.now())
    if not found:
        raise ApiError(404, "not_found", "Token nicht gefunden / token not found")
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{PREFIX}/node", node_info)
    r.add_post(f"{PREFIX}/keys/rotate", rotate_key)
    r.add_get(f"{PREFIX}/sessions", list_sessions)
    r.add_post(f"{PREFIX}/sessions", create_session)
    r.add_get(f"{PREFIX}/sessions/{{id}}", get_session)
    r.add_patch(f"{PREFIX}/sessions/{{id}}", update_session)
    r.add_delete(f"{PREFIX}/sessions/{{id}}", withdraw_session)
    r.add_post(f"{PREFIX}/sessions/{{id}}/cancel", cancel_session)
    r.add_put(f"{PREFIX}/sessions/{{id}}/opening", open_session)
    r.add_delete(f"{PREFIX}/sessions/{{id}}/opening", close_session)
    r.add_get(f"{PREFIX}/peers", list_peers)
    r.add_post(f"{PREFIX}/peers", add_peer)
    r.add_get(f"{PREFIX}/peers/{{node_id}}", get_peer)
    r.add_delete(f"{PREFIX}/peers/{{node_id}}", remove_peer)
    for action in ("accept", "decline", "suspend", "resume"):
        r.add_post(f"{PREFIX}/peers/{{node_id}}/{action}", _peer_action(action))
    r.add_get(f"{PREFIX}/tokens", list_tokens)
    r.add_post(f"{PREFIX}/tokens", create_token)
    r.add_delete(f"{PREFIX}/tokens/{{token_id}}", revoke_token)
