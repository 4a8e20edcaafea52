"""Upgrading a database written by the first release (schema 0001) to head, on both engines.

``test_migrations.py`` shows that head matches ``tables.py``; this shows
that real data survives the way there.  A database is created at 0001 and
filled the way the 0001 code filled it (signed announcements, a peer with
its pinned key, tokens, a feed row, an outbox message, a nonce, an
import source), then migrated: all at once, one revision at a time, and
down and up again.  Afterwards a node starts on it and serves its sessions
and catalogue through the API with the tokens issued before the upgrade.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from aiohttp.test_utils import TestServer

from node.app import create_app
from node.clock import ManualClock
from node.db import Database, revisions
from node.db import tokens as token_repo
from node.db.sessions import SessionRow
from node.db.tables import UTCDateTime
from node.identity import NodeIdentity
from node.publishing.service import announcement_for
from node.settings import Settings
from node.web.access_log import RedactingAccessLogger
from tests.node.conftest import (
    PG_URL,
    NodeFactory,
    RunningNode,
    Schemas,
    free_port,
)

FIRST = "0001"
WHEN = UTCDateTime()


def _columns(names: str, kind: Any = None) -> list[sa.ColumnClause[Any]]:
    return [sa.column(name, kind) for name in names.split()]


# The tables as revision 0001 created them (only the columns it had).
SESSIONS_0001 = sa.table(
    "sessions",
    *_columns(
        "id title description format timezone duration_minutes host_name status join_url "
        "details_url import_source import_key open_seats audience_all registration_mode "
        "waitlist email_required seats_taken version announcement ended_published"
    ),
    *_columns("languages tags", sa.JSON()),
    *_columns("start_at created_at updated_at withdrawn_at", WHEN),
)
PEERS_0001 = sa.table(
    "peers",
    *_columns("id node_id base_url display_name state fingerprint descriptor suspended_by"),
    *_columns("descriptor_issued_at created_at updated_at", WHEN),
)
PEER_KEYS_0001 = sa.table(
    "peer_keys",
    *_columns("peer_id key_id public_key state"),
    *_columns("expires_at revoked_at", WHEN),
)
AUDIENCE_0001 = sa.table("session_audience", *_columns("session_id peer_id"))
FEED_ITEMS_0001 = sa.table(
    "feed_items", *_columns("session_id change_number"), *_columns("changed_at deleted_at", WHEN)
)
OUTBOX_0001 = sa.table(
    "outbox",
    *_columns("peer_node_id kind method url body state attempts last_error"),
    *_columns("next_attempt_at created_at updated_at", WHEN),
)
NONCES_0001 = sa.table(
    "request_nonces", sa.column("key_id"), sa.column("nonce"), sa.column("expires_at", WHEN)
)
SOURCES_0001 = sa.table(
    "import_sources",
    sa.column("url"),
    sa.column("interval_minutes"),
    sa.column("last_report", sa.JSON()),
    sa.column("last_run_at", WHEN),
    sa.column("created_at", WHEN),
)


@dataclass
class Seeded:
    settings: Settings
    admin_token: str
    portal_token: str
    opened: str
    internal: str
    start: datetime
    fingerprint: str


async def empty_database(engine: str, tmp_path: Path, schemas: Schemas) -> Database:
    if engine == "sqlite":
        return Database(f"sqlite:///{tmp_path / 'old.db'}")
    return Database(PG_URL, schema=await schemas.new())


def _session(session_id: str, start: datetime, now: datetime, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": session_id,
        "title": "Impuls: Barrierefreie PDFs",
        "description": "Wie wir Berichte für Screenreader lesbar machen.",
        "format": "impulse",
        "languages": ["de"],
        "start_at": start,
        "timezone": "Europe/Berlin",
        "duration_minutes": 60,
        "host_name": "Jürgen Weiß",
        "tags": ["barrierefreiheit", "pdf"],
        "status": "scheduled",
        "join_url": "https://meet.example.org/lernraum",
        "details_url": None,
        "import_source": None,
        "import_key": None,
        "open_seats": 0,
        "audience_all": True,
        "registration_mode": "auto",
        "waitlist": True,
        "email_required": False,
        "seats_taken": 0,
        "version": 0,
        "announcement": None,
        "created_at": now,
        "updated_at": now,
        "withdrawn_at": None,
        "ended_published": False,
    }
    row.update(values)
    return row


async def seed_first_release(
    db: Database, tmp_path: Path, clock: ManualClock, peer: RunningNode
) -> Seeded:
    """What a node of the first release had stored after a few days of use."""
    await revisions.upgrade_to(db, FIRST)
    assert await revisions.current(db) == FIRST
    now = clock.now()
    port = free_port()
    settings = Settings(
        node_id="alt.openseats.test",
        base_url=f"http://127.0.0.1:{port}",
        display_name="Altbestand",
        data_dir=tmp_path / "alt",
    )
    settings.data_dir.mkdir()
    identity = NodeIdentity(settings, db)
    key = await identity.create_first_key(now - timedelta(days=20))
    start = (now + timedelta(days=14)).replace(second=0)
    opened = _session("2026-0pen5e55", start, now, title="Werkstatt: Prompting", format="workshop")
    opened.update(open_seats=5, audience_all=False, seats_taken=2, version=1)
    opened["announcement"] = announcement_for(identity, SessionRow(**opened), 1, now)
    internal = _session("2026-1ntern41", start + timedelta(days=1), now)
    descriptor = peer.node.identity.descriptor(now).to_json_dict()
    async with db.write() as conn:
        admin_token = await token_repo.create(conn, "admin", "Intranet-Team", now)
        portal_token = await token_repo.create(conn, "portal", "Intranet", now)
        await conn.execute(sa.insert(SESSIONS_0001), [opened, internal])
        await conn.execute(
            sa.insert(PEERS_0001).values(
                id=1,
                node_id=peer.node_id,
                base_url=peer.url,
                display_name="Partner",
                state="active",
                fingerprint=peer.fingerprint,
                descriptor=json.dumps(descriptor),
                suspended_by=None,
                descriptor_issued_at=now,
                created_at=now,
                updated_at=now,
            )
        )
        signing = peer.node.identity.signing_key
        await conn.execute(
            sa.insert(PEER_KEYS_0001).values(
                peer_id=1, key_id=signing.key_id, public_key=signing.public_key_b64, state="current"
            )
        )
        await conn.execute(sa.insert(AUDIENCE_0001).values(session_id=opened["id"], peer_id=1))
        await conn.execute(
            sa.insert(FEED_ITEMS_0001).values(
                session_id=opened["id"], change_number=1, changed_at=now, deleted_at=None
            )
        )
        await conn.execute(sa.text("UPDATE feed_counter SET value = 1 WHERE id = 1"))
        await conn.execute(
            sa.insert(OUTBOX_0001).values(
                peer_node_id=peer.node_id,
                kind="feed_changed",
                method="POST",
                url=f"{peer.url}/protocol/v1/inbox",
                body='{"type":"feed_changed"}',
                state="dead",
                attempts=3,
                last_error="HTTP 400",
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
        await conn.execute(
            sa.insert(NONCES_0001).values(
                key_id=signing.key_id, nonce="n-0001", expires_at=now + timedelta(minutes=5)
            )
        )
        await conn.execute(
            sa.insert(SOURCES_0001).values(
                url="https://kalender.example.org/lernen.ics",
                interval_minutes=60,
                last_report={"imported": 0},
                last_run_at=now,
                created_at=now,
            )
        )
    return Seeded(
        settings, admin_token, portal_token, opened["id"], internal["id"], start, key.fingerprint
    )


async def assert_first_release_data(db: Database, seeded: Seeded) -> None:
    """Every row written at 0001 is still there, with its values."""
    async with db.read() as conn:
        sessions = {
            row.id: row
            for row in await conn.execute(
                sa.text("SELECT id, title, open_seats, seats_taken, version FROM sessions")
            )
        }
        counts = {
            table: (await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one()
            for table in (
                "peers",
                "peer_keys",
                "session_audience",
                "feed_items",
                "outbox",
                "request_nonces",
                "import_sources",
                "api_tokens",
                "node_keys",
            )
        }
        counter = (await conn.execute(sa.text("SELECT value FROM feed_counter"))).scalar_one()
        announcement = (
            await conn.execute(
                sa.text("SELECT announcement FROM sessions WHERE id = :id"), {"id": seeded.opened}
            )
        ).scalar_one()
    assert set(sessions) == {seeded.opened, seeded.internal}
    opened = sessions[seeded.opened]
    assert (opened.title, opened.open_seats, opened.seats_taken, opened.version) == (
        "Werkstatt: Prompting",
        5,
        2,
        1,
    )
    assert counts == dict.fromkeys(counts, 1) | {"api_tokens": 2}
    assert counter == 1
    assert json.loads(announcement)["title"] == "Werkstatt: Prompting"


async def start_node(seeded: Seeded, db: Database, clock: ManualClock) -> RunningNode:
    app = create_app(seeded.settings, clock=clock, db=db, run_scheduler=False)
    port = int(seeded.settings.base_url.rsplit(":", 1)[1])
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server(access_log_class=RedactingAccessLogger)
    return RunningNode(
        "alt", seeded.settings, server, aiohttp.ClientSession(), seeded.admin_token, db, clock
    )


async def test_first_release_database_upgrades_to_head_and_serves(
    engine: str, tmp_path: Path, schemas: Schemas, clock: ManualClock, make_node: NodeFactory
) -> None:
    peer = await make_node("partner")
    db = await empty_database(engine, tmp_path, schemas)
    node: RunningNode | None = None
    try:
        seeded = await seed_first_release(db, tmp_path, clock, peer)
        await db.upgrade()
        assert await revisions.current(db) == revisions.head()
        await assert_first_release_data(db, seeded)

        node = await start_node(seeded, db, clock)
        assert node.fingerprint == seeded.fingerprint
        status, listed = await node.admin("GET", "/sessions")
        assert status == 200, listed
        titles = {item["id"]: item["title"] for item in listed["sessions"]}
        assert titles == {
            seeded.opened: "Werkstatt: Prompting",
            seeded.internal: "Impuls: Barrierefreie PDFs",
        }
        status, peers = await node.admin("GET", "/peers")
        assert status == 200
        assert [(p["node_id"], p["state"]) for p in peers["peers"]] == [(peer.node_id, "active")]

        status, catalogue, _ = await node.portal("/catalogue", token=seeded.portal_token)
        assert status == 200, catalogue
        local = {item["session_id"]: item for item in catalogue["items"] if item["is_local"]}
        assert set(local) == {seeded.opened, seeded.internal}
        assert local[seeded.opened]["seats"]["remaining"] == 3
        assert local[seeded.internal]["organisation"]["name"] == "Altbestand"

        status, created = await node.admin(
            "POST",
            "/sessions",
            {
                "title": "Nach dem Update",
                "start": (seeded.start + timedelta(days=3)).isoformat(),
                "timezone": "Europe/Berlin",
                "duration_minutes": 30,
                "host_name": "Ada",
                "join_url": "https://meet.example.org/neu",
            },
        )
        assert status == 201, created
        status, opened = await node.admin(
            "PUT", f"/sessions/{seeded.opened}/opening", {"seats": 6, "audience": [peer.node_id]}
        )
        assert status == 200, opened
        assert (opened["announcement_version"], opened["opening"]["seats_taken"]) == (2, 2)

        # The partner, known only from the 0001 rows (peer, pinned key, audience),
        # reads the feed with a signed request and gets the new version.
        await node.node.notifier.changed()
        feed = await node.feed_as(peer)
        versions = {item["id"]: item["data"]["version"] for item in feed["items"]}
        assert versions == {seeded.opened: 2}
    finally:
        if node is not None:
            await node.http.close()
            await node.server.close()
        await db.dispose()


async def test_each_step_up_and_down_keeps_the_first_release_data(
    engine: str, tmp_path: Path, schemas: Schemas, clock: ManualClock, make_node: NodeFactory
) -> None:
    peer = await make_node("partner")
    db = await empty_database(engine, tmp_path, schemas)
    try:
        seeded = await seed_first_release(db, tmp_path, clock, peer)
        known = revisions.known()
        assert known[0] == FIRST
        for revision in known[1:]:
            await revisions.upgrade_to(db, revision)
            assert await revisions.current(db) == revision
            await assert_first_release_data(db, seeded)
        for revision in reversed(known[:-1]):
            await revisions.downgrade_to(db, revision)
            assert await revisions.current(db) == revision
            await assert_first_release_data(db, seeded)
        await db.upgrade()
        assert await revisions.current(db) == revisions.head()
        await assert_first_release_data(db, seeded)
    finally:
        await db.dispose()


def test_known_revisions_form_one_line() -> None:
    """Backups compare revisions by position; that needs one unbranched history."""
    known = revisions.known()
    assert known == sorted(known)
    assert len(set(known)) == len(known)
