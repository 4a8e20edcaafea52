"""Two replicas deliver one outbox: every message once, in order, one at a time per peer.

Both replicas are full apps over the same database (PostgreSQL schema, or
the same SQLite file as the CLI and ``serve`` would share it).  Deliveries
are counted where they arrive: a :class:`CountingPeer` at the network
boundary records every request by its sequence number and how many were
in flight at once, and a real host node counts reservations and the
signed requests it stored a nonce for.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import aiohttp
from sqlalchemy import select

from node.background import BACKGROUND
from node.clock import ManualClock
from node.db import outbox as outbox_repo
from node.db.tables import outbox_claims, reservations_in
from tests.node.conftest import NodeFactory, RunningNode, peer, sync
from tests.node.replicas.conftest import (
    CountingPeer,
    ReplicaFactory,
    count_requests,
    outbox_states,
    queue_messages,
)
from tests.node.reservations.helpers import open_session, portal_token

PEERS = ["p1.openseats.test", "p2.openseats.test", "p3.openseats.test"]


async def claims(home: RunningNode) -> list[tuple[str, str]]:
    async with home.node.db.read() as conn:
        rows = await conn.execute(select(outbox_claims.c.peer_node_id, outbox_claims.c.holder))
        return [(row.peer_node_id, row.holder) for row in rows]


async def test_two_replicas_deliver_each_message_once_in_order(
    make_node: NodeFactory, add_replica: ReplicaFactory, counting_peer: CountingPeer
) -> None:
    home = await make_node("home")
    second = await add_replica(home)
    counting_peer.delay = 0.002
    for name in PEERS:
        await queue_messages(home.node.db, counting_peer, name, 25, home.node.clock.now())

    # Both replicas deliver at once, each twice over (scheduler tick and wake-ups).
    tried = await asyncio.gather(
        home.node.deliverer.deliver_due(),
        second.node.deliverer.deliver_due(),
        second.node.deliverer.deliver_due(),
        home.node.deliverer.deliver_due(),
    )

    assert sum(tried) == 75  # every message was tried exactly once, by one of them
    for name in PEERS:
        assert counting_peer.received[name] == list(range(25)), name
        assert counting_peer.most_in_flight[name] == 1, name
        assert await outbox_states(home.node.db, name) == [("sent", 1)] * 25
    assert await claims(home) == []  # released when each peer was done


async def test_replica_frozen_past_its_lease_is_taken_over(
    make_node: NodeFactory,
    add_replica: ReplicaFactory,
    counting_peer: CountingPeer,
    clock: ManualClock,
) -> None:
    """A replica stuck mid-send (dead, as far as anyone can tell) loses its claim.

    The other one waits out the lease, sends the message in flight again
    (the documented at-least-once) and the rest in order; when the stuck
    one finally gets its answer it records nothing and stops.
    """
    home = await make_node("home", lease_seconds=300)  # no renewal during the test
    second = await add_replica(home)
    target = PEERS[0]
    await queue_messages(home.node.db, counting_peer, target, 12, home.node.clock.now())
    counting_peer.hold = (target, 5)

    stuck = asyncio.create_task(home.node.deliverer.deliver_peer(target))
    await asyncio.wait_for(counting_peer.holding.wait(), 30)
    assert await claims(home) == [(target, home.node.deliverer.holder)]
    assert await second.node.deliverer.deliver_peer(target) == 0  # claimed: hands off
    clock.advance(seconds=299)
    assert await second.node.deliverer.deliver_peer(target) == 0  # still within the lease

    clock.advance(seconds=2)
    assert await second.node.deliverer.deliver_peer(target) == 7  # messages 5..11
    counting_peer.release.set()
    assert await asyncio.wait_for(stuck, 30) == 6  # 0..5; its answer to 5 was not recorded

    received = counting_peer.received[target]
    assert received == [0, 1, 2, 3, 4, 5, 5, 6, 7, 8, 9, 10, 11]
    assert counting_peer.first_arrivals(target) == list(range(12))  # deduplicated by id
    assert await outbox_states(home.node.db, target) == [("sent", 1)] * 12
    assert await claims(home) == []


async def test_replica_stopped_mid_send_hands_over_at_once(
    make_node: NodeFactory, add_replica: ReplicaFactory, counting_peer: CountingPeer
) -> None:
    """A replica shut down mid-send (task cancelled) releases its claim on the way out."""
    home = await make_node("home")
    second = await add_replica(home)
    target = PEERS[1]
    await queue_messages(home.node.db, counting_peer, target, 8, home.node.clock.now())
    counting_peer.hold = (target, 3)

    stopping = asyncio.create_task(home.node.deliverer.deliver_peer(target))
    await asyncio.wait_for(counting_peer.holding.wait(), 30)
    stopping.cancel()
    await asyncio.gather(stopping, return_exceptions=True)
    assert await claims(home) == []

    assert await second.node.deliverer.deliver_peer(target) == 5  # 3..7, no lease to wait
    assert counting_peer.received[target] == [0, 1, 2, 3, 3, 4, 5, 6, 7]
    assert await outbox_states(home.node.db, target) == [("sent", 1)] * 8


async def test_reservations_from_both_replicas_reach_the_host_once_in_order(
    make_node: NodeFactory, add_replica: ReplicaFactory, clock: ManualClock
) -> None:
    """A real host counts the PUTs it gets: one per reservation, in the order queued."""
    host, home = await make_node("host"), await make_node("home")
    second = await add_replica(home)
    await peer(home, host)
    sid = await open_session(host, clock, seats=3, waitlist=True)
    await sync(host, home)
    token = await portal_token(home)
    seen = await count_requests(host)

    # Employees reserve through both replicas in turn; each request wakes
    # the deliverer of the replica that took it, so both deliver at once.
    ids = []
    for n in range(12):
        address = home.url if n % 2 == 0 else second.address
        ids.append(await _reserve(address, host.node_id, sid, token, n))
    await home.settle()
    await second.server.app[BACKGROUND].idle()
    await asyncio.gather(home.node.deliverer.deliver_due(), second.node.deliverer.deliver_due())

    puts = Counter(path.rsplit("/", 1)[1] for method, path in seen if method == "PUT")
    assert puts == dict.fromkeys(ids, 1)  # each sent exactly once
    async with host.node.db.read() as conn:
        found = await conn.execute(
            select(reservations_in).where(reservations_in.c.session_id == sid)
        )
        rows = {row.id: row for row in found}
    assert sorted(rows) == sorted(ids)
    # The host took them in the order they were queued (seq is its arrival order).
    assert [row.id for row in sorted(rows.values(), key=_seq)] == ids
    assert {rid for rid, row in rows.items() if row.state == "confirmed"} == set(ids[:3])
    async with home.node.db.read() as conn:
        sent = await outbox_repo.list_messages(conn, peer_node_id=host.node_id)
    assert [(m.state, m.attempts) for m in sent if m.kind == "reservation_request"] == [
        ("sent", 1)
    ] * 12


def _seq(row: Any) -> int:
    return int(row.seq)


async def _reserve(address: str, host_id: str, sid: str, token: str, n: int) -> str:
    body = {"attendee": {"ref": f"emp-{n}", "display_name": f"Person {n}"}}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{address}/api/v1/sessions/{sid}@{host_id}/reservations",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        ) as response,
    ):
        answer = await response.json()
    assert response.status == 202, answer
    return str(answer["id"])
