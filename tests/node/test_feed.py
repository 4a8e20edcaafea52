"""The RPDE feed between real nodes: audience, tombstones, paging, headers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from node.clock import ManualClock
from node.federation.client import DeliveryError
from protocol.ingest import verify_announcement
from protocol.keyring import PinnedKeys, verify_new_descriptor
from tests.node.conftest import NodeFactory, RunningNode, peer
from tests.node.test_sessions_api import session_body


async def new_session(node: RunningNode, clock: ManualClock, **changes: Any) -> str:
    status, body = await node.admin("POST", "/sessions", session_body(clock, **changes))
    assert status == 201, body
    return str(body["id"])


async def open_to(node: RunningNode, sid: str, audience: Any, seats: int = 4) -> None:
    status, body = await node.admin(
        "PUT", f"/sessions/{sid}/opening", {"seats": seats, "audience": audience}
    )
    assert status == 200, body


def states(page: dict[str, Any]) -> list[tuple[str, str]]:
    return [(item["id"], item["state"]) for item in page["items"]]


async def test_audience_of_one_partner(make_node: NodeFactory, clock: ManualClock) -> None:
    lex, datev, kiwi = await make_node("lex"), await make_node("datev"), await make_node("kiwi")
    await peer(datev, lex)
    await peer(kiwi, lex)
    sid = await new_session(lex, clock)
    await open_to(lex, sid, [datev.node_id])

    to_datev = await lex.feed_as(datev)
    assert states(to_datev) == [(sid, "updated")]
    to_kiwi = await lex.feed_as(kiwi)
    assert all(item["state"] == "deleted" for item in to_kiwi["items"])
    assert "data" not in str(to_kiwi)

    # The item is a signed announcement the partner can verify against the
    # pinned descriptor, and it carries no join link and no audience.
    data = to_datev["items"][0]["data"]
    assert "join" not in str(data)
    assert datev.node_id not in str(data)
    descriptor = await datev.node.client.fetch_descriptor(lex.url)
    pinned = PinnedKeys.from_descriptor(verify_new_descriptor(descriptor, now=clock.now()))
    verify_announcement(data, resolver=pinned, expected_origin=lex.node_id)

    cursor = to_datev["items"][-1]["modified"]
    status, _ = await lex.admin("DELETE", f"/sessions/{sid}/opening")
    assert status == 200
    later = await lex.feed_as(datev, f"?afterChangeNumber={cursor}")
    assert states(later) == [(sid, "deleted")]
    assert all(item["state"] == "deleted" for item in (await lex.feed_as(kiwi))["items"])


async def test_leaving_the_audience_and_withdrawal(
    make_node: NodeFactory, clock: ManualClock
) -> None:
    lex, datev, kiwi = await make_node("lex"), await make_node("datev"), await make_node("kiwi")
    await peer(datev, lex)
    await peer(kiwi, lex)
    sid = await new_session(lex, clock)
    await open_to(lex, sid, "all")
    assert states(await lex.feed_as(kiwi)) == [(sid, "updated")]
    await open_to(lex, sid, [datev.node_id])
    assert states(await lex.feed_as(kiwi)) == [(sid, "deleted")]
    assert states(await lex.feed_as(datev)) == [(sid, "updated")]
    await lex.admin("DELETE", f"/sessions/{sid}")
    assert states(await lex.feed_as(datev)) == [(sid, "deleted")]


async def test_cancelled_session_turns_deleted_after_it_ended(
    make_node: NodeFactory, clock: ManualClock
) -> None:
    lex, datev = await make_node("lex"), await make_node("datev")
    await peer(datev, lex)
    sid = await new_session(lex, clock)
    await open_to(lex, sid, "all")
    await lex.admin("POST", f"/sessions/{sid}/cancel")
    page = await lex.feed_as(datev)
    assert states(page) == [(sid, "updated")]
    assert page["items"][0]["data"]["status"] == "cancelled"
    cursor = page["items"][-1]["modified"]
    clock.advance(days=11)
    assert await lex.node.sessions.publish_endings() == 1
    later = await lex.feed_as(datev, f"?afterChangeNumber={cursor}")
    assert states(later) == [(sid, "deleted")]


async def test_paging_and_last_page(make_node: NodeFactory, clock: ManualClock) -> None:
    lex = await make_node("lex", feed_page_size=2)
    datev = await make_node("datev")
    await peer(datev, lex)
    ids = []
    for n in range(5):
        sid = await new_session(lex, clock, title=f"Werkstatt {n}")
        await open_to(lex, sid, "all")
        ids.append(sid)
    seen, url, pages = [], f"{lex.url}/protocol/v1/feed", 0
    while True:
        page = await datev.node.client.signed_json("GET", url)
        pages += 1
        modified = [item["modified"] for item in page["items"]]
        assert modified == sorted(modified)
        assert page["next"].startswith(f"{lex.url}/protocol/v1/feed?afterChangeNumber=")
        if not page["items"]:
            assert page["next"] == url
            break
        seen += [item["id"] for item in page["items"]]
        assert len(page["items"]) <= 2
        url = page["next"]
    assert seen == ids
    assert pages == 4
    # An update moves the item to the end of the feed.
    await lex.admin("PATCH", f"/sessions/{ids[0]}", {"title": "Werkstatt 0 – neu"})
    tail = await datev.node.client.signed_json("GET", url)
    assert states(tail) == [(ids[0], "updated")]


async def test_cache_headers(make_node: NodeFactory, clock: ManualClock) -> None:
    lex, datev = await make_node("lex"), await make_node("datev")
    await peer(datev, lex)
    sid = await new_session(lex, clock)
    await open_to(lex, sid, "all")
    full = await datev.node.client.signed("GET", f"{lex.url}/protocol/v1/feed")
    last = await datev.node.client.signed("GET", f"{lex.url}/protocol/v1/feed?afterChangeNumber=99")
    assert full.content_type == last.content_type == "application/json"
    assert len(last.body) < 1024


@pytest.mark.parametrize(
    "query",
    [
        "?afterChangeNumber=-1",
        "?afterChangeNumber=abc",
        "?limit=0",
        "?limit=5000",
        "?afterTimestamp=1",
        "?afterChangeNumber=99999999999999999999",
    ],
)
async def test_bad_feed_queries(make_node: NodeFactory, query: str) -> None:
    lex, datev = await make_node("lex"), await make_node("datev")
    await peer(datev, lex)
    with pytest.raises(DeliveryError) as info:
        await lex.feed_as(datev, query)
    assert info.value.status == 400
    assert "invalid_query" in str(info.value)


async def test_descriptor_is_public_and_signed(make_node: NodeFactory, clock: ManualClock) -> None:
    lex = await make_node("lex")
    async with lex.http.get(f"{lex.url}/.well-known/openseats") as response:
        assert response.status == 200
        assert "max-age" in response.headers["Cache-Control"]
        raw = await response.json()
    descriptor = verify_new_descriptor(raw, now=clock.now())
    assert descriptor.node_id == lex.node_id
    assert descriptor.valid_until - descriptor.issued_at <= timedelta(days=7)
    assert PinnedKeys.from_descriptor(descriptor).fingerprints() == [lex.fingerprint]
