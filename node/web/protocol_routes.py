"""What partner nodes call: the descriptor, the RPDE feed, and peering."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from aiohttp import web

from node.background import BACKGROUND
from node.db import feed as feed_repo
from node.runtime import NodeServices
from node.web.errors import ApiError
from node.web.protocol_auth import VERIFIED
from protocol.canonical import loads_object
from protocol.models import (
    FeedChanged,
    Notice,
    PeeringAnswer,
    PeeringRequest,
    SessionCancelled,
    parse,
)

NODE = web.AppKey("node", NodeServices)
FEED_KIND = "OpenSeatsSession"
MAX_PAGE = 1000
DESCRIPTOR_CACHE_SECONDS = 60
FEED_QUERY = {"afterChangeNumber", "limit"}


class _DescriptorCache:
    def __init__(self) -> None:
        self.body = b""
        self.made_at: datetime | None = None
        self.key_id = ""


DESCRIPTOR_CACHE = web.AppKey("descriptor_cache", _DescriptorCache)


async def descriptor(request: web.Request) -> web.Response:
    node = request.app[NODE]
    cache = request.app[DESCRIPTOR_CACHE]
    now = node.clock.now()
    if (
        cache.made_at is None
        or now - cache.made_at > timedelta(seconds=DESCRIPTOR_CACHE_SECONDS)
        or cache.key_id != node.identity.signing_key.key_id
    ):
        await node.identity.load()
        signed = node.identity.descriptor(now)
        cache.body = json.dumps(signed.to_json_dict(), ensure_ascii=False).encode()
        cache.made_at = now
        cache.key_id = node.identity.signing_key.key_id
    return web.Response(
        body=cache.body,
        content_type="application/json",
        headers={"Cache-Control": "public, max-age=300"},
    )


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 16:
        raise ApiError(
            400, "invalid_query", f"{name} muss eine Zahl sein / must be a number", field=name
        )
    value = int(raw)
    if not low <= value <= high:
        raise ApiError(400, "invalid_query", f"{name}: {low}..{high}", field=name)
    return value


async def feed(request: web.Request) -> web.Response:
    """``GET /protocol/v1/feed?afterChangeNumber=N`` (RPDE, SPEC.md §7)."""
    node = request.app[NODE]
    verified = request[VERIFIED]
    assert verified.peer is not None
    unknown = set(request.query) - FEED_QUERY
    if unknown:
        raise ApiError(
            400,
            "invalid_query",
            f"Unbekannter Parameter / unknown parameter: {', '.join(sorted(unknown))}",
            field=sorted(unknown)[0],
        )
    after = _int_param(request, "afterChangeNumber", 0, 0, 2**53 - 1)
    limit = _int_param(request, "limit", node.settings.feed_page_size, 1, MAX_PAGE)
    rows: list[feed_repo.FeedRow] = []
    if after < await node.notifier.latest():
        async with node.db.read() as conn:
            rows = await feed_repo.page(conn, peer_id=verified.peer.id, after=after, limit=limit)
    base = node.settings.base_url + "/protocol/v1/feed"
    self_url = node.settings.base_url + request.path_qs
    if rows:
        suffix = f"&limit={limit}" if "limit" in request.query else ""
        next_url = f"{base}?afterChangeNumber={rows[-1].change_number}{suffix}"
    else:
        next_url = self_url
    items = []
    for row in rows:
        head = (
            f'{{"state":"{"updated" if row.announcement else "deleted"}",'
            f'"kind":"{FEED_KIND}","id":{json.dumps(row.session_id)},'
            f'"modified":{row.change_number}'
        )
        items.append(f'{head},"data":{row.announcement}}}' if row.announcement else head + "}")
    license_url = node.settings.base_url + "/about/license"
    text = (
        f'{{"items":[{",".join(items)}],"next":{json.dumps(next_url)},'
        f'"license":{json.dumps(license_url)}}}'
    )
    cache = "private, max-age=3600" if rows else "private, max-age=8"
    return web.Response(
        text=text, content_type="application/json", headers={"Cache-Control": cache}
    )


async def peering(request: web.Request) -> web.Response:
    """``POST /protocol/v1/peering``: a PeeringRequest or a PeeringAnswer."""
    node = request.app[NODE]
    verified = request[VERIFIED]
    if verified.peering_request is not None:
        assert verified.peering_descriptor is not None
        state = await node.peering.receive_request(
            verified.peering_request, verified.peering_descriptor
        )
        return _answer(node, verified.peering_request.requester, state)
    raw = loads_object(verified.body)
    assert verified.peer is not None
    if raw.get("type") == "peering_request":
        request_model = parse(PeeringRequest, raw)
        if request_model.requester != verified.peer.node_id:
            raise ApiError(401, "origin_mismatch", "Absender passt nicht / requester mismatch")
        state = await node.peering.receive_request(request_model, raw["descriptor"])
        return _answer(node, request_model.requester, state)
    answer = parse(PeeringAnswer, raw)
    await node.peering.receive_answer(verified.peer, answer)
    return web.Response(status=202)


def _answer(node: NodeServices, recipient: str, state: str) -> web.Response:
    answer = PeeringAnswer(
        type="peering_answer",
        sender=node.identity.node_id,
        recipient=recipient,
        state=state,  # type: ignore[arg-type]
        issued_at=node.clock.now(),
    )
    return web.json_response(answer.to_json_dict(), status=202)


async def inbox(request: web.Request) -> web.Response:
    """``POST /protocol/v1/inbox``: a notice from an active peer (SPEC.md §8)."""
    node = request.app[NODE]
    verified = request[VERIFIED]
    assert verified.peer is not None
    if request.content_type != "application/json":
        raise ApiError(
            415, "unsupported_media_type", "Erwartet application/json / expected application/json"
        )
    notice = parse(Notice, verified.body)
    if notice.sender != verified.peer.node_id:
        raise ApiError(401, "origin_mismatch", "Absender passt nicht / sender is not the signer")
    if isinstance(notice, FeedChanged):
        node_id = verified.peer.node_id
        request.app[BACKGROUND].start(
            f"pull:{node_id}", lambda: node.subscriber.pull(node_id, force=True)
        )
        return web.Response(status=202)
    session = notice.session if isinstance(notice, SessionCancelled) else notice.answer.session
    if session.origin != notice.sender:
        raise ApiError(
            401,
            "origin_mismatch",
            "Sitzung gehört nicht dem Absender / the session is not the sender's",
        )
    if isinstance(notice, SessionCancelled):
        await node.requests.notice_session_cancelled(
            notice.sender, notice.session.id, list(notice.reservations)
        )
    else:
        await node.requests.notice_updated(notice.sender, notice.answer.to_json_dict())
    return web.Response(status=202)


async def license_page(request: web.Request) -> web.Response:
    node = request.app[NODE]
    return web.Response(
        text=(
            f"Die Angebote von {node.settings.display_name} sind nur für Partner der "
            "Lernallianz bestimmt und dürfen nicht weiterveröffentlicht werden.\n"
            f"Offers of {node.settings.display_name} are for alliance partners only "
            "and must not be republished.\n"
        ),
        content_type="text/plain",
    )


def setup(app: web.Application) -> None:
    app[DESCRIPTOR_CACHE] = _DescriptorCache()
    app.router.add_get("/.well-known/openseats", descriptor)
    app.router.add_get("/about/license", license_page)
    app.router.add_get("/protocol/v1/feed", feed)
    app.router.add_post("/protocol/v1/peering", peering)
    app.router.add_post("/protocol/v1/inbox", inbox)
