"""Bad feeds, bad items, bad peers: each is refused and recorded, the catalogue stays.

The peer row and its pinned keys come from a real peering between two real
nodes.  Crafted pages are then served by a real HTTP server on loopback
that the subscriber is pointed at (as if the partner had gone wrong), so the
whole path runs: signed request, response parsing, verification, merge.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import update

from node.clock import ManualClock
from node.db.tables import peers
from node.federation.client import PeerClient
from node.federation.subscription import Subscriber
from protocol.keys import SigningKey
from protocol.models import Announcement, seal
from protocol.signing import sign_object
from tests.node.conftest import NodeFactory, RunningNode, peer, sync
from tests.node.test_feed import new_session, open_to
from tests.protocol.conftest import announcement_body

Page = Callable[[web.Request], web.StreamResponse]


class EvilFeed:
    """A partner's feed endpoint that answers whatever the test wants."""

    def __init__(self) -> None:
        self.handler: Callable[[web.Request], Any] = lambda r: web.json_response({})
        self.server: TestServer | None = None

    async def start(self) -> str:
        async def serve(request: web.Request) -> web.StreamResponse:
            result = self.handler(request)
            return await result if asyncio.iscoroutine(result) else result

        app = web.Application()
        app.router.add_get("/protocol/v1/feed", serve)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return str(self.server.make_url("/protocol/v1/feed"))


@pytest.fixture
async def evil() -> AsyncIterator[EvilFeed]:
    feed = EvilFeed()
    yield feed
    if feed.server is not None:
        await feed.server.close()


@pytest.fixture
async def setup(
    make_node: NodeFactory, clock: ManualClock, evil: EvilFeed
) -> tuple[RunningNode, RunningNode, str, Subscriber]:
    """datev subscribes to lex; lex's feed URL (for datev) now points at the evil server."""
    lex, datev = await make_node("lex"), await make_node("datev")
    await peer(datev, lex)
    good = await new_session(lex, clock, title="Gute Session")
    await open_to(lex, good, "all")
    await sync(lex, datev)
    feed_url = await evil.start()
    async with datev.node.db.write() as conn:
        row = (await conn.execute(peers.select().where(peers.c.node_id == lex.node_id))).one()
        descriptor = json.loads(row.descriptor)
        descriptor["endpoints"]["feed"] = feed_url
        await conn.execute(
            update(peers).where(peers.c.id == row.id).values(descriptor=json.dumps(descriptor))
        )
    client = PeerClient(
        datev.node.http, clock, lambda: datev.node.identity.signing_key, timeout=1.0
    )
    return lex, datev, feed_url, Subscriber(datev.node.db, client, clock)


async def titles(node: RunningNode) -> list[str]:
    _, body, _ = await node.portal("/catalogue", token=node.admin_token)
    return sorted(item["title"] for item in body["items"])


async def peer_status(datev: RunningNode, lex: RunningNode) -> dict[str, Any]:
    _, body = await datev.admin("GET", f"/peers/{lex.node_id}")
    return dict(body)


def item(data: dict[str, Any], modified: int, **changes: Any) -> dict[str, Any]:
    return {
        "state": "updated",
        "kind": "OpenSeatsSession",
        "id": data["id"],
        "modified": modified,
        "data": data,
        **changes,
    }


def signed(lex: RunningNode, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"origin": lex.node_id, "id": "evil-1", "version": 50, **changes}
    body = announcement_body(**fields)
    return seal(body, Announcement, lex.node_id, [lex.node.identity.signing_key]).to_json_dict()


def serve_pages(evil: EvilFeed, feed_url: str, cursor: int, items: list[dict[str, Any]]) -> None:
    """Serve *items* after *cursor*, then the last page."""

    def handler(request: web.Request) -> web.Response:
        after = int(request.query.get("afterChangeNumber", "0"))
        if after < items[-1]["modified"]:
            return web.json_response(
                {"items": items, "next": f"{feed_url}?afterChangeNumber={items[-1]['modified']}"}
            )
        return web.json_response({"items": [], "next": str(request.url)})

    evil.handler = handler


async def cursor_of(datev: RunningNode, lex: RunningNode) -> int:
    return int((await peer_status(datev, lex))["sync"]["cursor"])


BAD_ITEMS: dict[str, tuple[Callable[[RunningNode], dict[str, Any]], str]] = {
    "tampered": (lambda lex: {**signed(lex), "title": "Umgeschrieben"}, "bad_signature"),
    "wrong_origin": (
        lambda lex: sign_object(
            {k: v for k, v in signed(lex, origin="kiwi.example.de").items() if k != "signatures"},
            "kiwi.example.de",
            [lex.node.identity.signing_key],
        ),
        "origin_mismatch",
    ),
    "unknown_key": (
        lambda lex: seal(
            announcement_body(origin=lex.node_id, id="evil-1", version=50),
            Announcement,
            lex.node_id,
            [SigningKey.generate()],
        ).to_json_dict(),
        "unknown_key",
    ),
    "schema_violation": (lambda lex: {**signed(lex), "duration_minutes": 0}, "schema_violation"),
    "unknown_field": (
        lambda lex: {**signed(lex), "join_url": "https://x.example"},
        "unknown_field",
    ),
    # Valid JSON, correctly signed, but no database can store U+0000 in text.
    "nul_character": (
        lambda lex: sign_object(
            {
                k: v
                for k, v in (signed(lex) | {"description": "Ende\u0000danach"}).items()
                if k != "signatures"
            },
            lex.node_id,
            [lex.node.identity.signing_key],
        ),
        "schema_violation",
    ),
    "absurd_size": (
        lambda lex: signed(lex, description="x" * 8000) | {"unsigned": {"pad": "y" * 70000}},
        "item_too_large",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ITEMS))
async def test_bad_items_are_rejected_and_recorded(
    setup: tuple[RunningNode, RunningNode, str, Subscriber], evil: EvilFeed, case: str
) -> None:
    lex, datev, feed_url, subscriber = setup
    before = await titles(datev)
    start = await cursor_of(datev, lex)
    build, reason = BAD_ITEMS[case]
    data = build(lex)
    good = signed(lex, id="evil-2", title="Auch gut", version=1)
    serve_pages(evil, feed_url, start, [item(data, start + 1), item(good, start + 2)])
    result = await subscriber.pull(lex.node_id, force=True)
    assert result is not None
    assert (result.rejected, result.merged) == (1, 1)
    assert await titles(datev) == sorted([*before, "Auch gut"])
    status = await peer_status(datev, lex)
    assert status["rejected_items"][0]["reason"] == reason
    assert status["rejected_items"][0]["item_id"] == data["id"]
    assert status["sync"]["cursor"] == start + 2


async def test_old_version_is_rejected(
    setup: tuple[RunningNode, RunningNode, str, Subscriber], evil: EvilFeed
) -> None:
    lex, datev, feed_url, subscriber = setup
    start = await cursor_of(datev, lex)
    newer, older = signed(lex, version=5, title="Neu"), signed(lex, version=4, title="Alt")
    serve_pages(evil, feed_url, start, [item(newer, start + 1), item(older, start + 2)])
    await subscriber.pull(lex.node_id, force=True)
    assert "Neu" in await titles(datev)
    assert "Alt" not in await titles(datev)
    assert (await peer_status(datev, lex))["rejected_items"][0]["reason"] == "stale_version"


async def test_a_peer_cannot_delete_another_origins_session(
    setup: tuple[RunningNode, RunningNode, str, Subscriber], evil: EvilFeed, make_node: NodeFactory
) -> None:
    lex, datev, feed_url, subscriber = setup
    before = await titles(datev)
    start = await cursor_of(datev, lex)
    own = await new_session(datev, datev.clock, title="Eigene Session")  # type: ignore[arg-type]
    tombstone = {"state": "deleted", "kind": "OpenSeatsSession", "id": own, "modified": start + 1}
    serve_pages(evil, feed_url, start, [tombstone])
    await subscriber.pull(lex.node_id, force=True)
    assert "Eigene Session" in await titles(datev)
    assert set(before) <= set(await titles(datev))


@pytest.mark.parametrize(
    ("page", "code"),
    [
        (lambda url, c: {"items": [], "next": url + "?afterChangeNumber=0"}, "feed_next"),
        (lambda url, c: {"items": "nope", "next": url}, "invalid_page"),
        (lambda url, c: {"next": url}, "invalid_page"),
        (
            lambda url, c: {
                "items": [
                    {"state": "deleted", "kind": "OpenSeatsSession", "id": "a", "modified": c}
                ],
                "next": f"{url}?afterChangeNumber={c}",
            },
            "feed_order",
        ),
        (
            lambda url, c: {
                "items": [
                    {"state": "deleted", "kind": "OpenSeatsSession", "id": "a", "modified": c + 5}
                ],
                "next": f"{url}?afterChangeNumber={c}",
            },
            "feed_next",
        ),
        (
            lambda url, c: {
                "items": [
                    {"state": "deleted", "kind": "OpenSeatsSession", "id": "a", "modified": c + 5}
                ],
                "next": f"https://elsewhere.example/f?afterChangeNumber={c + 5}",
            },
            "feed_next",
        ),
    ],
    ids=[
        "last-page-elsewhere",
        "items-not-list",
        "no-items",
        "not-after-cursor",
        "next-backwards",
        "next-other-feed",
    ],
)
async def test_broken_pages_stop_the_pull(
    setup: tuple[RunningNode, RunningNode, str, Subscriber],
    evil: EvilFeed,
    page: Callable[[str, int], dict[str, Any]],
    code: str,
) -> None:
    lex, datev, feed_url, subscriber = setup
    before = await titles(datev)
    start = await cursor_of(datev, lex)
    evil.handler = lambda request: web.json_response(page(feed_url, start))
    await subscriber.pull(lex.node_id, force=True)
    status = await peer_status(datev, lex)
    assert code in status["sync"]["last_error"]
    assert status["sync"]["failures"] == 1
    assert status["sync"]["backoff_until"] is not None
    assert status["sync"]["cursor"] == start
    assert await titles(datev) == before


async def test_a_looping_feed_is_stopped(
    setup: tuple[RunningNode, RunningNode, str, Subscriber], evil: EvilFeed
) -> None:
    lex, datev, feed_url, subscriber = setup
    start = await cursor_of(datev, lex)
    evil.handler = lambda request: web.json_response(
        {"items": [], "next": f"{feed_url}?afterChangeNumber={start + 1}"}
    )
    await subscriber.pull(lex.node_id, force=True)
    assert "feed_next" in (await peer_status(datev, lex))["sync"]["last_error"]


async def _hang(request: web.Request) -> web.Response:
    await asyncio.sleep(30)
    return web.json_response({})


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (lambda r: web.Response(text="<html>Wartung</html>", content_type="text/html"), "JSON"),
        (lambda r: web.Response(status=500, text="boom"), "HTTP 500"),
        (lambda r: web.Response(status=429, headers={"Retry-After": "120"}), "HTTP 429"),
        (_hang, "timeout"),
    ],
    ids=["html", "500", "429", "hang"],
)
async def test_misbehaving_peers_back_off(
    setup: tuple[RunningNode, RunningNode, str, Subscriber],
    evil: EvilFeed,
    handler: Callable[[web.Request], Any],
    expected: str,
    clock: ManualClock,
) -> None:
    lex, datev, _, subscriber = setup
    before = await titles(datev)
    evil.handler = handler
    await subscriber.pull(lex.node_id, force=True)
    first = (await peer_status(datev, lex))["sync"]
    assert expected in first["last_error"]
    assert first["failures"] == 1
    # Backing off: a scheduled pull right now does nothing...
    assert await subscriber.pull(lex.node_id) is None
    await subscriber.pull(lex.node_id, force=True)
    second = (await peer_status(datev, lex))["sync"]
    assert second["failures"] == 2
    assert await titles(datev) == before
    # ... and success resets it.
    evil.handler = lambda r: web.json_response({"items": [], "next": str(r.url)})
    clock.advance(hours=2)
    await subscriber.pull(lex.node_id)
    third = (await peer_status(datev, lex))["sync"]
    assert (third["failures"], third["last_error"], third["backoff_until"]) == (0, None, None)


async def test_notice_from_a_non_peer(make_node: NodeFactory, clock: ManualClock) -> None:
    from node.federation.client import DeliveryError

    lex, kiwi = await make_node("lex"), await make_node("kiwi")
    notice = json.dumps(
        {
            "type": "feed_changed",
            "sender": kiwi.node_id,
            "issued_at": "2026-11-23T09:00:00Z",
            "change": 1,
        }
    ).encode()
    with pytest.raises(DeliveryError) as info:
        await kiwi.node.client.signed("POST", f"{lex.url}/protocol/v1/inbox", notice)
    assert info.value.status == 401


async def test_notice_with_someone_elses_sender(make_node: NodeFactory) -> None:
    from node.federation.client import DeliveryError

    lex, datev = await make_node("lex"), await make_node("datev")
    await peer(datev, lex)
    notice = json.dumps(
        {
            "type": "feed_changed",
            "sender": "kiwi.example.de",
            "issued_at": "2026-11-23T09:00:00Z",
            "change": 1,
        }
    ).encode()
    with pytest.raises(DeliveryError) as info:
        await datev.node.client.signed("POST", f"{lex.url}/protocol/v1/inbox", notice)
    assert (info.value.status, "origin_mismatch" in str(info.value)) == (401, True)
    bad = json.dumps({"type": "gossip", "sender": datev.node_id}).encode()
    with pytest.raises(DeliveryError) as info:
        await datev.node.client.signed("POST", f"{lex.url}/protocol/v1/inbox", bad)
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("?from=gestern", "invalid_query"),
        ("?from=2026-13-45", "invalid_query"),
        ("?from=2026-12-10&to=2026-12-01", "invalid_query"),
        ("?colour=blue", "invalid_query"),
        ("?limit=100000", "invalid_query"),
        ("?limit=-1", "invalid_query"),
        ("?format=party", "invalid_query"),
        ("?status=maybe", "invalid_query"),
        ("?open_seats=yes", "invalid_query"),
        ("?cursor=eyJmb3JnZWQiOnRydWV9.AAAAAAAAAAAAAAAAAAAAAA", "invalid_cursor"),
        ("?cursor=garbage", "invalid_cursor"),
    ],
)
async def test_bad_portal_queries(make_node: NodeFactory, query: str, code: str) -> None:
    lex = await make_node("lex")
    status, body, _ = await lex.portal(f"/catalogue{query}", token=lex.admin_token)
    assert (status, body["code"]) == (400, code), body


async def test_portal_needs_a_token_unless_public(make_node: NodeFactory) -> None:
    lex = await make_node("lex")
    assert (await lex.portal("/catalogue"))[0] == 401
    assert (await lex.portal("/catalogue", token="os_portal_forged"))[0] == 401
    _, calendar = await lex.admin("POST", "/tokens", {"role": "calendar"})
    # A calendar token works only in ?token= on .ics routes.
    assert (await lex.portal("/catalogue", token=calendar["token"]))[0] == 401
    assert (await lex.portal(f"/catalogue.ics?token={calendar['token']}"))[0] == 200
    public = await make_node("kiwi", public_catalogue=True)
    assert (await public.portal("/catalogue"))[0] == 200


async def test_forged_cursor_with_valid_shape(make_node: NodeFactory, clock: ManualClock) -> None:
    lex = await make_node("lex")
    for n in range(3):
        await new_session(
            lex, clock, title=f"S{n}", start=(clock.now() + timedelta(days=2, hours=n)).isoformat()
        )
    _, body, _ = await lex.portal("/catalogue?limit=1", token=lex.admin_token)
    cursor = body["next_cursor"]
    payload, mac = cursor.split(".")
    edited = copy.copy(payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB"))
    status, answer, _ = await lex.portal(
        f"/catalogue?limit=1&cursor={edited}.{mac}", token=lex.admin_token
    )
    assert (status, answer["code"]) == (400, "invalid_cursor")


async def test_a_repeated_item_is_not_a_rejection(
    setup: tuple[RunningNode, RunningNode, str, Subscriber], evil: EvilFeed
) -> None:
    lex, datev, feed_url, subscriber = setup
    start = await cursor_of(datev, lex)
    same = signed(lex, version=7, title="Einmal")
    serve_pages(evil, feed_url, start, [item(same, start + 1), item(same, start + 2)])
    result = await subscriber.pull(lex.node_id, force=True)
    assert result is not None
    assert (result.merged, result.unchanged, result.rejected) == (1, 1, 0)


async def test_reservation_notices_this_node_cannot_know(make_node: NodeFactory) -> None:
    from node.federation.client import DeliveryError

    lex, datev = await make_node("lex"), await make_node("datev")
    await peer(datev, lex)
    inbox = f"{lex.url}/protocol/v1/inbox"
    ref = {"origin": datev.node_id, "id": "s-1"}
    cancelled = {
        "type": "session_cancelled",
        "sender": datev.node_id,
        "issued_at": "2026-11-23T09:00:00Z",
        "session": ref,
        "reservations": ["3f2b8c1e-6a4d-4f0b-9c7e-2d5a1b8e4f60"],
    }
    response = await datev.node.client.signed("POST", inbox, json.dumps(cancelled).encode())
    assert response.status == 202
    answer = {
        "type": "reservation_answer",
        "id": "3f2b8c1e-6a4d-4f0b-9c7e-2d5a1b8e4f60",
        "session": ref,
        "version": 2,
        "issued_at": "2026-11-23T09:00:00Z",
        "state": "pending",
    }
    updated = {
        "type": "reservation_updated",
        "sender": datev.node_id,
        "issued_at": "2026-11-23T09:00:00Z",
        "answer": answer,
    }
    with pytest.raises(DeliveryError) as info:
        await datev.node.client.signed("POST", inbox, json.dumps(updated).encode())
    assert (info.value.status, "unknown_reservation" in str(info.value)) == (404, True)
    foreign = {**cancelled, "session": {"origin": "kiwi.example.de", "id": "s-1"}}
    with pytest.raises(DeliveryError) as info:
        await datev.node.client.signed("POST", inbox, json.dumps(foreign).encode())
    assert (info.value.status, "origin_mismatch" in str(info.value)) == (401, True)
