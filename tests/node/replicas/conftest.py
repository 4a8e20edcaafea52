"""Fixtures for several replicas of one node, and a counting peer at the boundary.

A *replica* is a second full app (``create_app`` with its own
:class:`~node.db.Database` object, pool and services) over the same
database as a node started by ``make_node``: on PostgreSQL the same schema,
on SQLite the same file (like the CLI beside ``serve``).  It shares the
node's settings, data dir and keys, so it is the same node behind a load
balancer: partners sign for the node's public ``base_url`` and may reach
either process.  The replica listens on a port of its own (``address``).

:class:`CountingPeer` is an aiohttp server standing in for partners'
inboxes: it records every request it gets (which message, from the body),
how many were in flight at once per peer, and can hold one request open
until the test lets it go, to catch a replica mid-delivery.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from node.app import create_app
from node.db import Database
from node.db import outbox as outbox_repo
from node.runtime import NodeServices
from node.web.access_log import RedactingAccessLogger
from node.web.protocol_routes import NODE
from tests.node.conftest import RunningNode, free_port

PG_ONLY = pytest.mark.parametrize("engine", ["postgresql"])
"""Sharing state between replicas is the point: only PostgreSQL runs replicas."""


@dataclass
class Replica:
    """Another process of *primary*'s node, on the same database."""

    primary: RunningNode
    server: TestServer
    database: Database

    @property
    def node(self) -> NodeServices:
        return self.server.app[NODE]

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


ReplicaFactory = Callable[[RunningNode], Awaitable[Replica]]


@pytest.fixture
async def add_replica() -> AsyncIterator[ReplicaFactory]:
    started: list[Replica] = []

    async def start(primary: RunningNode) -> Replica:
        assert primary.database is not None
        database = Database(primary.database.url, schema=primary.database.schema)
        app = create_app(primary.settings, clock=primary.clock, db=database, run_scheduler=False)
        server = TestServer(app, host="127.0.0.1", port=free_port())
        await server.start_server(access_log_class=RedactingAccessLogger)
        replica = Replica(primary, server, database)
        started.append(replica)
        return replica

    yield start
    for replica in started:
        await replica.server.close()
        await replica.database.dispose()


@dataclass
class CountingPeer:
    """Inboxes at ``url(peer)`` that count what arrives; answers 202 after *delay*."""

    delay: float = 0.0
    received: defaultdict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    in_flight: Counter[str] = field(default_factory=Counter)
    most_in_flight: Counter[str] = field(default_factory=Counter)
    hold: tuple[str, int] | None = None  # (peer, seq): its first arrival waits for release
    holding: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrivals: asyncio.Condition = field(default_factory=asyncio.Condition)
    server: TestServer | None = None

    def url(self, peer: str) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}/inbox/{peer}"

    async def handle(self, request: web.Request) -> web.Response:
        peer = request.match_info["peer"]
        seq = int(json.loads(await request.read())["seq"])
        self.in_flight[peer] += 1
        self.most_in_flight[peer] = max(self.most_in_flight[peer], self.in_flight[peer])
        try:
            async with self.arrivals:
                self.received[peer].append(seq)
                self.arrivals.notify_all()
            if self.hold == (peer, seq) and self.received[peer].count(seq) == 1:
                self.holding.set()
                await self.release.wait()
            elif self.delay:
                await asyncio.sleep(self.delay)  # a peer's latency, not a wait for an event
            return web.json_response({"ok": True}, status=202)
        finally:
            self.in_flight[peer] -= 1

    async def wait_for(self, check: Callable[[], bool], timeout: float = 60.0) -> None:
        async with self.arrivals:
            await asyncio.wait_for(self.arrivals.wait_for(check), timeout)

    def first_arrivals(self, peer: str) -> list[int]:
        return list(dict.fromkeys(self.received[peer]))


@pytest.fixture
async def counting_peer() -> AsyncIterator[CountingPeer]:
    peer = CountingPeer()
    app = web.Application()
    app.router.add_post("/inbox/{peer}", peer.handle)
    peer.server = TestServer(app, host="127.0.0.1", port=free_port())
    await peer.server.start_server()
    yield peer
    peer.release.set()
    await peer.server.close()


async def queue_messages(
    db: Database, sink: CountingPeer, peer: str, count: int, now: datetime
) -> None:
    """Queue notices 0..count-1 to *peer* (at the counting server), as the outbox would."""
    async with db.write() as conn:
        for seq in range(count):
            await outbox_repo.enqueue(
                conn,
                peer_node_id=peer,
                kind="feed_changed",
                method="POST",
                url=sink.url(peer),
                body=json.dumps({"type": "feed_changed", "seq": seq}),
                now=now,
            )


async def outbox_states(db: Database, peer: str) -> list[tuple[str, int]]:
    async with db.read() as conn:
        rows = await outbox_repo.list_messages(conn, peer_node_id=peer)
    return [(row.state, row.attempts) for row in rows]


async def send_to(
    address: str, method: str, path: str, headers: list[tuple[str, str]], body: bytes = b""
) -> tuple[int, dict[str, str], Any]:
    """A request to one process (replica), whatever URL it was signed for."""
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, address + path, headers=headers, data=body or None) as response,
    ):
        payload = await response.read()
        return response.status, dict(response.headers), json.loads(payload) if payload else {}


Seen = list[tuple[str, str]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def count_requests(node: RunningNode) -> Seen:
    """Restart *node* with a recorder of protocol requests before its handlers.

    Each entry is (method, path): what arrived at the partner's boundary,
    duplicates included.
    """
    seen: Seen = []

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/protocol/v1/"):
            seen.append((request.method, request.path))
        return await handler(request)

    await node.stop()
    app = create_app(node.settings, clock=node.clock, db=node.database, run_scheduler=False)
    app.middlewares.insert(0, record)
    node.server = TestServer(app, host="127.0.0.1", port=int(node.url.rsplit(":", 1)[1]))
    await node.server.start_server(access_log_class=RedactingAccessLogger)
    return seen
