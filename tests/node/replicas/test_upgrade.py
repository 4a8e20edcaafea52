"""Replicas starting together on a fresh PostgreSQL schema migrate it once.

PostgreSQL only (``PG_ONLY``): the advisory lock in ``Database.upgrade`` is
what lets two replicas start at the same moment; SQLite has one process.
Without the lock both would find every migration pending and the second
``CREATE TABLE`` would fail.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from node.db import Database
from tests.node.conftest import PG_URL, Schemas
from tests.node.replicas.conftest import PG_ONLY


@PG_ONLY
async def test_three_replicas_upgrade_one_fresh_schema_at_once(
    engine: str, schemas: Schemas
) -> None:
    schema = await schemas.new()
    replicas = [Database(PG_URL, schema=schema) for _ in range(3)]
    try:
        await asyncio.wait_for(asyncio.gather(*(db.upgrade() for db in replicas)), 120)
        for db in replicas:
            assert await db.pending_migrations() == []
        async with replicas[0].read() as conn:
            versions = list(await conn.execute(text("SELECT version_num FROM alembic_version")))
            tables = await conn.execute(
                text("SELECT count(*) FROM information_schema.tables WHERE table_schema = :s"),
                {"s": schema},
            )
            assert tables.scalar_one() > 20
        assert len(versions) == 1
        # A later start finds nothing to do and does not wait for anything.
        await replicas[1].upgrade()
    finally:
        for db in replicas:
            await db.dispose()
