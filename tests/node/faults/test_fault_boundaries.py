"""Only storage faults become 503/507; the caller's own errors in a transaction stay as they are.

A peer that refuses a connection raises an ``OSError`` too, and a duplicate
key is a bug or a race the caller handles (``IntegrityError``); neither may
turn into "database unavailable".  The transaction is still rolled back.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from node.db import Database
from node.db import tokens as token_repo
from node.db.faults import DatabaseUnavailable
from node.db.tables import api_tokens
from tests.node.conftest import free_port


async def _tokens(db: Database) -> int:
    async with db.read() as conn:
        return (await conn.execute(text("SELECT count(*) FROM api_tokens"))).scalar_one()


async def test_an_oserror_of_the_callers_own_work_is_not_a_database_fault(db: Database) -> None:
    async def call_a_dead_peer_inside() -> None:
        async with db.write() as conn:
            await token_repo.create(conn, "admin", "x", datetime.now(UTC))
            raise ConnectionRefusedError(111, "Connect call failed ('10.0.0.9', 443)")

    with pytest.raises(ConnectionRefusedError):
        await call_a_dead_peer_inside()
    assert await _tokens(db) == 0


async def test_an_integrity_error_stays_one(db: Database) -> None:
    async def insert_twice() -> None:
        async with db.write() as conn:
            for _ in range(2):
                await conn.execute(
                    api_tokens.insert().values(
                        token_hash="h", role="admin", label="", created_at=datetime.now(UTC)
                    )
                )

    with pytest.raises(IntegrityError):
        await insert_twice()
    assert await _tokens(db) == 0


async def test_an_unreachable_postgresql_is_a_database_fault() -> None:
    db = Database(f"postgresql://127.0.0.1:{free_port()}/nirgends")

    async def query() -> None:
        async with db.read() as conn:
            await conn.execute(text("SELECT 1"))

    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            await query()
        assert caught.value.reason == "ConnectionRefusedError"
        assert caught.value.__cause__ is None  # no driver text (and SQL) in a logged chain
    finally:
        await db.dispose()
