"""``/api/v1``: the catalogue for portals, LMSs and calendars.

JSON (``/catalogue``, ``/sessions/{id}``), ICS (``.ics``) and schema.org
JSON-LD (``.jsonld`` or ``Accept: application/ld+json``).  Access needs a
``portal`` (or ``admin``) bearer token unless the node's config makes the
catalogue public; calendar apps, which cannot send headers, use a
read-only ``calendar`` token in ``?token=`` on the ``.ics`` routes.

Pagination uses an opaque cursor signed with a key derived from the node
key, so a forged or edited cursor is refused instead of silently skipping.
Responses carry an ETag and answer ``If-None-Match`` with 304.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from node.catalogue.entry import CatalogueEntry
from node.catalogue.ics import render_calendar
from node.catalogue.jsonld import education_event, education_events
from node.catalogue.search import query_words
from node.db import catalogue as catalogue_repo
from node.runtime import NodeServices
from node.web.admin_api import bearer_token, token_role
from node.web.errors import ApiError, plain_int
from node.web.protocol_routes import NODE
from protocol.models import format_timestamp
from protocol.models.announcement import SessionFormat, SessionStatus

PREFIX = "/api/v1"
FILTERS = {"from", "to", "q", "format", "language", "org", "open_seats", "status"}
FORMATS = set(SessionFormat.__args__)  # type: ignore[attr-defined]
STATUSES = set(SessionStatus.__args__)  # type: ignore[attr-defined]
LOCAL_ZONE = ZoneInfo("Europe/Berlin")
JSONLD = "application/ld+json"
MIN_YEAR, MAX_YEAR = 1900, 9000


async def _authorise(request: web.Request, *, calendar: bool = False) -> None:
    node: NodeServices = request.app[NODE]
    if node.settings.public_catalogue:
        return
    token = bearer_token(request)
    allowed = {"portal", "admin"}
    if token is None and calendar and "token" in request.query:
        token, allowed = request.query["token"], {"calendar", "portal"}
    if token is None:
        raise ApiError(
            401,
            "unauthenticated",
            "Token fehlt / token missing",
            headers={"WWW-Authenticate": 'Bearer realm="openseats"'},
        )
    if await token_role(request, token) not in allowed:
        raise ApiError(401, "unauthenticated", "Token ungültig / invalid token")


def _cursor_key(node: NodeServices) -> bytes:
    raw = node.identity.signing_key.private_key.private_bytes_raw()
    return hashlib.sha256(b"openseats-cursor\x00" + raw).digest()


def encode_cursor(node: NodeServices, entry: CatalogueEntry) -> str:
    payload = json.dumps([format_timestamp(entry.start_at), entry.origin, entry.session_id])
    body = base64.urlsafe_b64encode(payload.encode()).rstrip(b"=")
    mac = hmac.new(_cursor_key(node), body, "sha256").digest()[:16]
    return (body + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()


def decode_cursor(node: NodeServices, text: str) -> tuple[datetime, str, str]:
    forged = ApiError(400, "invalid_cursor", "Ungültiger Cursor / invalid cursor", field="cursor")
    body, _, mac = text.encode().partition(b".")
    expected = base64.urlsafe_b64encode(
        hmac.new(_cursor_key(node), body, "sha256").digest()[:16]
    ).rstrip(b"=")
    if not hmac.compare_digest(mac, expected):
        raise forged
    try:
        start, origin, session_id = json.loads(
            base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4))
        )
        return datetime.fromisoformat(start), str(origin), str(session_id)
    except (ValueError, TypeError):
        raise forged from None


def _when(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        if len(raw) == 10:
            value = datetime.combine(datetime.fromisoformat(raw).date(), time(), LOCAL_ZONE)
        else:
            value = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(
            400,
            "invalid_query",
            f"{name}: Datum wie 2026-12-01 oder "
            "2026-12-01T10:00:00+01:00 / a date or an ISO date-time",
            field=name,
        ) from None
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        # Searching shifts the bounds by hours; year 1 or 9999 would leave datetime's range.
        raise ApiError(
            400, "invalid_query", f"{name}: Jahr / year {MIN_YEAR}..{MAX_YEAR}", field=name
        )
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_ZONE)
    return value


def build_query(
    request: web.Request, *, extra: set[str], max_limit: int, default_limit: int
) -> catalogue_repo.Query:
    node: NodeServices = request.app[NODE]
    if unknown := set(request.query) - FILTERS - extra:
        raise ApiError(
            400,
            "invalid_query",
            f"Unbekannter Filter / unknown filter: {', '.join(sorted(unknown))}",
            field=sorted(unknown)[0],
        )
    query = request.query
    fmt, status = query.get("format"), query.get("status")
    if fmt is not None and fmt not in FORMATS:
        raise ApiError(
            400, "invalid_query", f"format: {', '.join(sorted(FORMATS))}", field="format"
        )
    if status is not None and status not in STATUSES:
        raise ApiError(
            400, "invalid_query", f"status: {', '.join(sorted(STATUSES))}", field="status"
        )
    open_seats = query.get("open_seats", "false")
    if open_seats not in ("true", "false"):
        raise ApiError(400, "invalid_query", "open_seats: true oder/or false", field="open_seats")
    limit = plain_int(query.get("limit", str(default_limit)), max_limit)
    if limit is None or limit < 1:
        raise ApiError(400, "invalid_query", f"limit: 1..{max_limit}", field="limit")
    start = _when(request, "from") or node.clock.now()
    end = _when(request, "to")
    if end is not None and end <= start:
        raise ApiError(
            400, "invalid_query", "to muss nach from liegen / to must follow from", field="to"
        )
    after = decode_cursor(node, query["cursor"]) if "cursor" in query else None
    return catalogue_repo.Query(
        start_from=start,
        start_to=end,
        words=tuple(query_words(query.get("q", ""))),
        format=fmt,
        language=query.get("language"),
        org=query.get("org"),
        open_seats=open_seats == "true",
        status=status,
        after=after,
        limit=limit,
    )


def entry_json(node: NodeServices, entry: CatalogueEntry) -> dict[str, Any]:
    zone = ZoneInfo(entry.timezone)
    base = f"{node.settings.base_url}{PREFIX}/sessions/{entry.id}"
    return {
        "id": entry.id,
        "session_id": entry.session_id,
        "organisation": {"node_id": entry.origin, "name": entry.org_name},
        "is_local": entry.is_local,
        "title": entry.title,
        "description": entry.description,
        "format": entry.format,
        "languages": list(entry.languages),
        "start": entry.start_at.astimezone(zone).isoformat(),
        "end": entry.end_at.astimezone(zone).isoformat(),
        "timezone": entry.timezone,
        "duration_minutes": entry.duration_minutes,
        "host_name": entry.host_name,
        "tags": list(entry.tags),
        "status": entry.status,
        "seats": {
            "open": entry.seats_open,
            "remaining": entry.seats_remaining,
            "registration_mode": entry.registration_mode,
            "waitlist": entry.waitlist,
            "email_required": entry.email_required,
        },
        "details_url": entry.details_url,
        "registration_url": entry.registration_url,
        "ics_url": f"{base}.ics",
        "jsonld_url": f"{base}.jsonld",
        "version": entry.version,
        "modified_at": format_timestamp(entry.modified_at),
    }


def _respond(
    request: web.Request, body: bytes, content_type: str, cache: str = "private, max-age=60"
) -> web.Response:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": cache, "Vary": "Authorization, Accept"}
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    charset = "utf-8"
    return web.Response(body=body, content_type=content_type, charset=charset, headers=headers)


def _json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


async def catalogue(request: web.Request) -> web.Response:
    await _authorise(request)
    node: NodeServices = request.app[NODE]
    query = build_query(request, extra={"limit", "cursor"}, max_limit=200, default_limit=50)
    wanted = catalogue_repo.Query(**{**query.__dict__, "limit": query.limit + 1})
    async with node.db.read() as conn:
        entries = await catalogue_repo.search(conn, wanted, node.settings.registration_template)
    more = len(entries) > query.limit
    entries = entries[: query.limit]
    if JSONLD in request.headers.get("Accept", ""):
        return _respond(request, _json(education_events(entries)), JSONLD)
    return _respond(
        request,
        _json(
            {
                "items": [entry_json(node, e) for e in entries],
                "next_cursor": encode_cursor(node, entries[-1]) if more and entries else None,
            }
        ),
        "application/json",
    )


async def catalogue_ics(request: web.Request) -> web.Response:
    await _authorise(request, calendar=True)
    node: NodeServices = request.app[NODE]
    query = build_query(request, extra={"limit", "token"}, max_limit=2000, default_limit=1000)
    async with node.db.read() as conn:
        entries = await catalogue_repo.search(conn, query, node.settings.registration_template)
    body = render_calendar(entries, name=f"{node.settings.display_name} – Peer Learning")
    return _respond(request, body, "text/calendar", cache="private, max-age=900")


async def session(request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    suffix = next((s for s in (".ics", ".jsonld") if raw.endswith(s)), "")
    await _authorise(request, calendar=suffix == ".ics")
    node: NodeServices = request.app[NODE]
    entry = await _find(node, raw) or (await _find(node, raw[: -len(suffix)]) if suffix else None)
    if entry is None:
        raise ApiError(404, "not_found", "Session nicht gefunden / session not found")
    if suffix == ".ics" and entry.id != raw:
        return _respond(request, render_calendar([entry], name=entry.title), "text/calendar")
    if (suffix == ".jsonld" and entry.id != raw) or JSONLD in request.headers.get("Accept", ""):
        return _respond(request, _json(education_event(entry)), JSONLD)
    return _respond(request, _json(entry_json(node, entry)), "application/json")


async def _find(node: NodeServices, entry_id: str) -> CatalogueEntry | None:
    session_id, at, origin = entry_id.rpartition("@")
    if not (session_id and at and origin):
        return None
    async with node.db.read() as conn:
        return await catalogue_repo.get(
            conn, origin, session_id, node.settings.registration_template
        )


def setup(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/catalogue", catalogue)
    app.router.add_get(f"{PREFIX}/catalogue.ics", catalogue_ics)
    app.router.add_get(f"{PREFIX}/sessions/{{id}}", session)
