"""``/healthz`` and ``/readyz`` on real nodes: ready, and each way of not being ready.

Not ready is produced for real: the database is stamped at an older
migration, the key file is removed from the data dir, and a PostgreSQL
database is dropped under a running node.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from alembic.script import ScriptDirectory
from sqlalchemy import text

from node.app import create_app
from node.clock import ManualClock
from node.db import Database
from node.db.engine import MIGRATIONS
from node.identity import NodeIdentity
from node.settings import Settings
from tests.node.conftest import NodeFactory, RunningNode, free_port
from tests.node.processes import drop_pg_database, own_pg_database


def revisions() -> list[str]:
    """Every migration, oldest first (as Alembic numbers them: 0001, 0002, …)."""
    script = ScriptDirectory(str(MIGRATIONS))
    return sorted(revision.revision for revision in script.walk_revisions())


async def get(node_url: str, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(node_url + path) as response:
        return response.status, await response.json()


async def test_ready_node(make_node: NodeFactory) -> None:
    node = await make_node("lex")
    status, body = await get(node.url, "/healthz")
    assert (status, body["status"], body["node_id"]) == (200, "ok", node.node_id)
    status, body = await get(node.url, "/readyz")
    assert status == 200, body
    assert body["status"] == "ready"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "migrations": True,
        "keys": True,
    }
    assert body["checks"]["keys"]["key_id"] == node.node.identity.signing_key.key_id


async def _stamp(node: RunningNode, revision: str) -> None:
    assert node.database is not None
    async with node.database.write() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})


async def test_pending_migrations_make_it_not_ready(make_node: NodeFactory) -> None:
    node = await make_node("lex")
    every = revisions()
    await _stamp(node, every[2])
    status, body = await get(node.url, "/readyz")
    assert status == 503, body
    assert (body["code"], body["failing"]) == ("migrations_pending", ["migrations"])
    assert body["checks"]["migrations"] == {"ok": False, "pending": every[3:]}
    assert body["checks"]["database"]["ok"] is True
    status, _ = await get(node.url, "/healthz")
    assert status == 200  # alive: a restart would not help, migrating would

    await _stamp(node, every[-1])
    status, body = await get(node.url, "/readyz")
    assert status == 200, body


@pytest.mark.parametrize("engine", ["sqlite"])
async def test_missing_key_file_makes_it_not_ready(make_node: NodeFactory) -> None:
    node = await make_node("lex")
    key = node.node.identity.signing_key
    path = node.node.identity.key_path(key.key_id)
    saved = path.read_bytes()
    path.unlink()
    status, body = await get(node.url, "/readyz")
    assert status == 503, body
    assert (body["code"], body["failing"]) == ("keys_missing", ["keys"])
    assert body["checks"]["keys"] == {
        "ok": False,
        "error": "key file missing",
        "key_id": key.key_id,
    }
    path.write_bytes(saved)
    assert (await get(node.url, "/readyz"))[0] == 200


@pytest.fixture
async def pg_database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database (not a schema: the test drops it)."""
    async with own_pg_database() as url:
        yield url


async def test_dropped_database_makes_it_not_ready(
    pg_database: str, tmp_path: Path, clock: ManualClock
) -> None:
    url = pg_database
    port = free_port()
    settings = Settings(
        node_id="lex.openseats.test",
        base_url=f"http://127.0.0.1:{port}",
        display_name="LEX",
        data_dir=tmp_path,
        database_url=url,
        metrics_port=free_port(),
    )
    database = Database(url)
    await database.upgrade()
    await NodeIdentity(settings, database).create_first_key(clock.now())
    server = TestServer(
        create_app(settings, clock=clock, db=database, run_scheduler=False),
        host="127.0.0.1",
        port=port,
    )
    await server.start_server()
    try:
        assert (await get(settings.base_url, "/readyz"))[0] == 200
        await drop_pg_database(url)

        status, body = await get(settings.base_url, "/readyz")
        assert status == 503, body
        assert body["code"] == "database_unavailable"
        assert body["failing"] == ["database", "migrations"]
        assert body["checks"]["database"]["ok"] is False
        assert url not in str(body)  # the reason is a kind, never the URL
        assert (await get(settings.base_url, "/healthz"))[0] == 200

        # The counters are still served; the database gauges say why the rest is missing.
        metrics_url = f"http://127.0.0.1:{settings.metrics_port}/metrics"
        async with aiohttp.ClientSession() as http, http.get(metrics_url) as response:
            assert response.status == 200
            exposition = await response.text()
        assert "openseats_database_up 0.0" in exposition
        assert "openseats_seats_open" not in exposition
    finally:
        await server.close()
        await database.dispose()
