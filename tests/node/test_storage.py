"""Repositories on both engines: feed stamping, nonces, tokens, migrations."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from node.db import Database
from node.db import feed as feed_repo
from node.db import nonces as nonce_repo
from node.db import tokens as token_repo
from node.db.tables import api_tokens, feed_items
from protocol.errors import ReplayedNonce

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


async def numbers(db: Database) -> dict[str, int | None]:
    async with db.read() as conn:
        rows = await conn.execute(select(feed_items.c.session_id, feed_items.c.change_number))
        return {row.session_id: row.change_number for row in rows}


async def test_migrations_are_current(db: Database) -> None:
    assert await db.pending_migrations() == []
    await db.upgrade()  # idempotent


async def test_stamp_numbers_in_change_order(db: Database) -> None:
    async with db.write() as conn:
        for n, sid in enumerate(["b", "a", "c"]):
            await feed_repo.mark_changed(conn, sid, NOW + timedelta(seconds=n))
    async with db.read() as conn:
        assert await feed_repo.latest_change(conn) == 0
    async with db.write() as conn:
        assert await feed_repo.stamp(conn) == 3
    assert await numbers(db) == {"b": 1, "a": 2, "c": 3}
    async with db.write() as conn:
        await feed_repo.mark_changed(conn, "b", NOW + timedelta(minutes=1))
    assert (await numbers(db))["b"] is None  # invisible until stamped
    async with db.write() as conn:
        assert await feed_repo.stamp(conn) == 1
        assert await feed_repo.stamp(conn) == 0
    assert await numbers(db) == {"b": 4, "a": 2, "c": 3}


async def test_out_of_order_commits_never_hide_an_item(db: Database, engine: str) -> None:
    if engine == "sqlite":
        pytest.skip("SQLite has one writer at a time; commits cannot interleave")
    # Transaction A changes "early" first but commits last.
    slow = await db.write_engine.connect()
    tx = await slow.begin()
    await feed_repo.mark_changed(slow, "early", NOW)
    async with db.write() as conn:
        await feed_repo.mark_changed(conn, "late", NOW + timedelta(seconds=1))
    async with db.write() as conn:
        await feed_repo.stamp(conn)
    async with db.read() as conn:
        first = await feed_repo.page(conn, peer_id=0, after=0, limit=10)
    assert [row.session_id for row in first] == ["late"]
    cursor = first[-1].change_number
    await tx.commit()
    await slow.close()
    async with db.write() as conn:
        await feed_repo.stamp(conn)
    async with db.read() as conn:
        later = await feed_repo.page(conn, peer_id=0, after=cursor, limit=10)
    # The reader that already passed "late" still gets "early".
    assert [row.session_id for row in later] == ["early"]


async def test_concurrent_stampers_number_each_row_once(db: Database) -> None:
    async with db.write() as conn:
        for n in range(50):
            await feed_repo.mark_changed(conn, f"s{n:02d}", NOW + timedelta(seconds=n))

    async def stamp() -> int:
        async with db.write() as conn:
            return await feed_repo.stamp(conn)

    assert sum(await asyncio.gather(*(stamp() for _ in range(5)))) == 50
    stamped = await numbers(db)
    assert sorted(v for v in stamped.values() if v is not None) == list(range(1, 51))


async def test_nonce_is_single_use(db: Database) -> None:
    async with db.write() as conn:
        await nonce_repo.remember(conn, "ed25519:aaaaaaaaaaaaaaaa", "n" * 22, NOW)
    with pytest.raises(ReplayedNonce):
        async with db.write() as conn:
            await nonce_repo.remember(conn, "ed25519:aaaaaaaaaaaaaaaa", "n" * 22, NOW)
    async with db.write() as conn:  # another key may use the same nonce
        await nonce_repo.remember(conn, "ed25519:bbbbbbbbbbbbbbbb", "n" * 22, NOW)
        assert await nonce_repo.purge(conn, NOW + timedelta(seconds=1)) == 2


async def test_tokens_are_stored_hashed(db: Database) -> None:
    async with db.write() as conn:
        token = await token_repo.create(conn, "portal", "Intranet", NOW)
    async with db.read() as conn:
        stored = [row.token_hash for row in await conn.execute(select(api_tokens))]
        assert await token_repo.role_of(conn, token) == "portal"
        assert await token_repo.role_of(conn, token + "x") is None
    assert token not in stored
    assert len(stored[0]) == 64
    async with db.write() as conn:
        assert await token_repo.revoke(conn, 1, NOW)
    async with db.read() as conn:
        assert await token_repo.role_of(conn, token) is None
    with pytest.raises(ValueError, match="role"):
        async with db.write() as conn:
            await token_repo.create(conn, "root", "", NOW)


async def test_batched_nonces_accept_each_nonce_once(db: Database) -> None:
    from node.db.nonces import NonceBatcher

    batcher = NonceBatcher(db)
    key = "ed25519:cccccccccccccccc"

    async def attempt(nonce: str) -> bool:
        try:
            await batcher.remember(key, nonce, NOW)
        except ReplayedNonce:
            return False
        return True

    nonces = [f"nonce-{n % 40:04d}-xxxxxxxx" for n in range(100)]  # 40 distinct, 60 repeats
    results = await asyncio.gather(*(attempt(n) for n in nonces))
    assert sum(results) == 40
    assert not await attempt(nonces[0])
    assert await attempt("a-brand-new-nonce-123")
