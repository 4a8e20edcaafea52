"""Fixtures for node tests: a real database on both engines, real nodes on loopback.

``db`` is parametrised over SQLite (a file in tmp_path) and PostgreSQL (the
machine's server at ``OPENSEATS_TEST_PG``, default
``postgresql://127.0.0.1:5432/test``, one fresh schema per test).  Nodes are
full aiohttp apps on 127.0.0.1 with their own database, sharing a
:class:`ManualClock`, so tests can move time without sleeping.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from node.app import create_app
from node.background import BACKGROUND
from node.clock import ManualClock
from node.db import Database
from node.db import tokens as token_repo
from node.db.engine import normalise_url
from node.identity import NodeIdentity
from node.runtime import NodeServices
from node.settings import Settings
from node.web.access_log import RedactingAccessLogger
from node.web.protocol_routes import NODE

PG_URL = os.environ.get("OPENSEATS_TEST_PG", "postgresql://127.0.0.1:5432/test")
ENGINES = ["sqlite", "postgresql"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Schemas:
    """Creates and drops one PostgreSQL schema per database a test uses."""

    def __init__(self) -> None:
        self.made: list[str] = []

    async def new(self) -> str:
        schema = "t_" + uuid.uuid4().hex[:16]
        engine = create_async_engine(normalise_url(PG_URL))
        async with engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await engine.dispose()
        self.made.append(schema)
        return schema

    async def drop_all(self) -> None:
        if not self.made:
            return
        engine = create_async_engine(normalise_url(PG_URL))
        async with engine.begin() as conn:
            for schema in self.made:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await engine.dispose()


async def new_database(
    engine: str, tmp_path: Path, schemas: Schemas, name: str = "node"
) -> Database:
    if engine == "sqlite":
        database = Database(f"sqlite:///{tmp_path / (name + '.db')}")
    else:
        database = Database(PG_URL, schema=await schemas.new())
    await database.upgrade()
    return database


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def schemas() -> AsyncIterator[Schemas]:
    made = Schemas()
    yield made
    await made.drop_all()


@pytest.fixture
async def db(engine: str, tmp_path: Path, schemas: Schemas) -> AsyncIterator[Database]:
    database = await new_database(engine, tmp_path, schemas)
    yield database
    await database.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@dataclass
class RunningNode:
    name: str
    settings: Settings
    server: TestServer
    http: aiohttp.ClientSession
    admin_token: str
    database: Database | None = None
    clock: ManualClock | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    async def stop(self) -> None:
        """The process goes away: its port closes, its database stays."""
        await self.server.close()

    async def start_again(self) -> None:
        """A new process on the same data, database and port (a restart)."""
        app = create_app(self.settings, clock=self.clock, db=self.database, run_scheduler=False)
        port = int(self.url.rsplit(":", 1)[1])
        self.server = TestServer(app, host="127.0.0.1", port=port)
        await self.server.start_server(access_log_class=RedactingAccessLogger)

    @property
    def node(self) -> NodeServices:
        return self.server.app[NODE]

    @property
    def node_id(self) -> str:
        return self.settings.node_id

    @property
    def url(self) -> str:
        return self.settings.base_url

    @property
    def fingerprint(self) -> str:
        return self.node.identity.fingerprint

    async def admin(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
    ) -> tuple[int, Any]:
        sent = dict(headers or {})
        sent.setdefault("Authorization", f"Bearer {token or self.admin_token}")
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        async with self.http.request(
            method, f"{self.url}/admin/api/v1{path}", data=data, headers=sent
        ) as response:
            payload = await response.read()
            try:
                return response.status, json.loads(payload) if payload else None
            except ValueError:
                return response.status, payload.decode(errors="replace")

    async def settle(self) -> None:
        """Let background work started by requests (deliveries, pulls) finish."""
        await self.server.app[BACKGROUND].idle()

    async def portal(
        self, path: str, *, token: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, Any]:
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        async with self.http.get(f"{self.url}/api/v1{path}", headers=sent) as response:
            payload = await response.read()
            kind = response.content_type
            body: Any = json.loads(payload) if "json" in kind and payload else payload
            return response.status, body, response.headers.copy()

    async def feed_as(self, reader: RunningNode, query: str = "") -> dict[str, Any]:
        """Fetch this node's feed, signed by *reader* as a real peer would."""
        return await reader.node.client.signed_json("GET", f"{self.url}/protocol/v1/feed{query}")


NodeFactory = Callable[..., Awaitable[RunningNode]]


@pytest.fixture
async def make_node(
    tmp_path: Path, schemas: Schemas, clock: ManualClock, engine: str
) -> AsyncIterator[NodeFactory]:
    started: list[RunningNode] = []
    databases: list[Database] = []

    async def start(name: str, **overrides: Any) -> RunningNode:
        port = free_port()
        settings = Settings(
            node_id=f"{name}.openseats.test",
            base_url=f"http://127.0.0.1:{port}",
            display_name=overrides.pop("display_name", name.upper()),
            data_dir=tmp_path / name,
            **overrides,
        )
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        database = await new_database(engine, tmp_path, schemas, name)
        databases.append(database)
        await NodeIdentity(settings, database).create_first_key(clock.now())
        async with database.write() as conn:
            token = await token_repo.create(conn, "admin", "tests", clock.now())
        app = create_app(settings, clock=clock, db=database, run_scheduler=False)
        server = TestServer(app, host="127.0.0.1", port=port)
        await server.start_server(access_log_class=RedactingAccessLogger)
        running = RunningNode(
            name, settings, server, aiohttp.ClientSession(), token, database, clock
        )
        started.append(running)
        return running

    yield start
    for running in started:
        await running.http.close()
        await running.server.close()
    for database in databases:
        await database.dispose()


async def sync(*nodes: RunningNode) -> None:
    """Run deliveries and pulls until nothing moves any more (deterministic)."""
    for _ in range(4):
        for node in nodes:
            await node.settle()
            await node.node.notifier.changed()
            await node.node.deliverer.deliver_due()
            await node.settle()


async def peer(a: RunningNode, b: RunningNode) -> None:
    """Peer a with b the way admins do: add with fingerprint, then accept."""
    status, body = await a.admin("POST", "/peers", {"url": b.url, "fingerprint": b.fingerprint})
    assert status == 201, body
    status, body = await b.admin("POST", f"/peers/{a.node_id}/accept")
    assert status == 200, body
    assert body["state"] == "active"
