"""The database going away mid-request: 503 ``database_unavailable``, nothing partial, recovery.

PostgreSQL is reached through :class:`CuttableProxy`, never stopped (other
tests use it at the same time).  Cutting the proxy kills every pooled
connection; ``pool_pre_ping`` must notice and reconnect once it is back,
without restarting the node.  Cutting a connection just before its
``COMMIT`` reaches the server shows that an in-flight transaction is rolled
back as a whole.  On SQLite the comparable fault is a file locked by
another program.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import text
from sqlalchemy.engine import make_url

from node.app import create_app
from node.clock import ManualClock
from node.db import Database
from node.db import tokens as token_repo
from node.identity import NodeIdentity
from node.settings import Settings
from node.web.access_log import RedactingAccessLogger
from tests.node.conftest import PG_URL, NodeFactory, RunningNode, Schemas, free_port
from tests.node.faults.proxy import CuttableProxy

TITLE = "Werkstatt: Datenbank weg"
HOST = "Hannelore Kettenbach"


def new_session(clock: ManualClock, title: str = TITLE) -> dict[str, Any]:
    return {
        "title": title,
        "start": (clock.now() + timedelta(days=10)).isoformat(),
        "timezone": "Europe/Berlin",
        "duration_minutes": 60,
        "host_name": HOST,
        "join_url": "https://meet.example.org/lernraum",
    }


async def count_sessions(db: Database, title: str = TITLE) -> tuple[int, int]:
    """Sessions and catalogue rows with *title* (the two writes of one create)."""
    async with db.read() as conn:
        sessions = await conn.execute(
            text("SELECT count(*) FROM sessions WHERE title = :t"), {"t": title}
        )
        mirrored = await conn.execute(
            text("SELECT count(*) FROM catalogue WHERE title = :t"), {"t": title}
        )
        return sessions.scalar_one(), mirrored.scalar_one()


class ProxiedNode:
    def __init__(self, node: RunningNode, proxy: CuttableProxy, direct: Database) -> None:
        self.node = node
        self.proxy = proxy
        self.direct = direct  # the same schema, not through the proxy: the truth


@pytest.fixture
async def proxied(
    tmp_path: Path, schemas: Schemas, clock: ManualClock
) -> AsyncIterator[ProxiedNode]:
    proxy = CuttableProxy(make_url(PG_URL).host or "127.0.0.1", make_url(PG_URL).port or 5432)
    await proxy.start()
    schema = await schemas.new()
    direct = Database(PG_URL, schema=schema)
    await direct.upgrade()
    through = make_url(PG_URL).set(host="127.0.0.1", port=proxy.port)
    db = Database(through.render_as_string(hide_password=False), schema=schema)
    port = free_port()
    settings = Settings(
        node_id="wackel.openseats.test",
        base_url=f"http://127.0.0.1:{port}",
        display_name="Wackelkontakt",
        data_dir=tmp_path / "wackel",
        catalogue_page="public",
    )
    settings.data_dir.mkdir()
    await NodeIdentity(settings, direct).create_first_key(clock.now())
    async with direct.write() as conn:
        token = await token_repo.create(conn, "admin", "tests", clock.now())
    server = TestServer(
        create_app(settings, clock=clock, db=db, run_scheduler=False), host="127.0.0.1", port=port
    )
    await server.start_server(access_log_class=RedactingAccessLogger)
    node = RunningNode("wackel", settings, server, aiohttp.ClientSession(), token, db, clock)
    yield ProxiedNode(node, proxy, direct)
    await node.http.close()
    await server.close()
    await proxy.close()
    await db.dispose()
    await direct.dispose()


def unavailable_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "database unavailable" in r.getMessage()]


async def test_cut_database_gives_503_and_the_node_recovers_without_restart(
    proxied: ProxiedNode, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    node = proxied.node
    status, body = await node.admin("POST", "/sessions", new_session(clock, "Vorher"))
    assert status == 201, body

    caplog.set_level(logging.WARNING)
    proxied.proxy.cut()
    for method, path, payload in (
        ("GET", "/sessions", None),
        ("POST", "/sessions", new_session(clock)),
        ("GET", f"/sessions/{body['id']}", None),
    ):
        status, answer = await node.admin(method, path, payload)
        assert status == 503, answer
        assert answer["code"] == "database_unavailable"
        assert set(answer) == {"code", "message"}  # no stack trace, no driver text
    status, answer, headers = await node.portal("/catalogue", token=node.admin_token)
    assert (status, answer["code"], headers["Retry-After"]) == (503, "database_unavailable", "5")
    async with node.http.get(f"{node.url}/") as page:  # the HTML catalogue: an HTML error page
        assert (page.status, page.content_type) == (503, "text/html")
        assert "Traceback" not in await page.text()

    lines = unavailable_lines(caplog)
    assert len(lines) == 5  # one line per failed request
    for record in lines:
        logged = record.getMessage()
        assert record.exc_info is None
        assert TITLE not in logged
        assert HOST not in logged
        assert node.admin_token not in logged
    assert await count_sessions(proxied.direct) == (0, 0)

    proxied.proxy.restore()
    status, listed = await node.admin("GET", "/sessions")
    assert status == 200, listed
    assert [s["title"] for s in listed["sessions"]] == ["Vorher"]
    status, created = await node.admin("POST", "/sessions", new_session(clock))
    assert status == 201, created
    assert await count_sessions(proxied.direct) == (1, 1)


async def test_connection_lost_before_commit_stores_nothing_of_the_request(
    proxied: ProxiedNode, clock: ManualClock
) -> None:
    node = proxied.node
    proxied.proxy.cut_after(b"INSERT INTO sessions", before=b"COMMIT")
    status, answer = await node.admin("POST", "/sessions", new_session(clock))
    assert proxied.proxy.cuts == 1  # the connection died with the INSERTs sent, COMMIT not
    assert (status, answer["code"]) == (503, "database_unavailable"), answer
    assert await count_sessions(proxied.direct) == (0, 0)

    proxied.proxy.cut_after(None)
    status, created = await node.admin("POST", "/sessions", new_session(clock))
    assert status == 201, created
    assert await count_sessions(proxied.direct) == (1, 1)


@pytest.mark.parametrize("engine", ["sqlite"])
async def test_sqlite_locked_by_another_program_gives_503_then_recovers(
    make_node: NodeFactory, clock: ManualClock, tmp_path: Path
) -> None:
    node = await make_node("gesperrt")
    assert node.database is not None
    async with node.database.write() as conn:  # the node's only write connection
        await conn.exec_driver_sql("PRAGMA busy_timeout=200")
    other = sqlite3.connect(tmp_path / "gesperrt.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        status, answer = await node.admin("POST", "/sessions", new_session(clock))
        assert (status, answer["code"]) == (503, "database_unavailable"), answer
        status, listed = await node.admin("GET", "/sessions")  # WAL: reading still works
        assert (status, listed["sessions"]) == (200, [])
        other.execute("ROLLBACK")
    finally:
        other.close()
    status, created = await node.admin("POST", "/sessions", new_session(clock))
    assert status == 201, created
    assert await count_sessions(node.database) == (1, 1)
