"""Per-peer subscription state (cursor, backoff) and the log of rejected items."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from node.db.tables import feed_rejections, peer_sync
from node.db.upsert import insert_ignore

REJECTIONS_KEPT_DAYS = 30


@dataclass(frozen=True)
class SyncState:
    peer_id: int
    cursor: int = 0
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    failures: int = 0
    next_attempt_at: datetime | None = None

    def evolve(self, **changes: object) -> SyncState:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Rejection:
    item_id: str
    reason: str
    detail: str
    created_at: datetime


async def load(conn: AsyncConnection, peer_id: int) -> SyncState:
    row = (await conn.execute(select(peer_sync).where(peer_sync.c.peer_id == peer_id))).first()
    return SyncState(**row._mapping) if row else SyncState(peer_id)


async def save(conn: AsyncConnection, state: SyncState) -> None:
    values = {
        "cursor": state.cursor,
        "last_attempt_at": state.last_attempt_at,
        "last_success_at": state.last_success_at,
        "last_error": state.last_error,
        "failures": state.failures,
        "next_attempt_at": state.next_attempt_at,
    }
    if not await insert_ignore(conn, peer_sync, peer_id=state.peer_id, **values):
        await conn.execute(
            update(peer_sync).where(peer_sync.c.peer_id == state.peer_id).values(**values)
        )


async def save_cursor(conn: AsyncConnection, peer_id: int, cursor: int) -> None:
    if not await insert_ignore(conn, peer_sync, peer_id=peer_id, cursor=cursor, failures=0):
        await conn.execute(
            update(peer_sync).where(peer_sync.c.peer_id == peer_id).values(cursor=cursor)
        )


async def reject(
    conn: AsyncConnection,
    *,
    peer_node_id: str,
    item_id: str,
    reason: str,
    detail: str,
    now: datetime,
) -> None:
    await conn.execute(
        feed_rejections.insert().values(
            peer_node_id=peer_node_id,
            item_id=item_id[:200],
            reason=reason[:64],
            detail=detail[:2000],
            created_at=now,
        )
    )


async def rejections(conn: AsyncConnection, peer_node_id: str, limit: int = 50) -> list[Rejection]:
    rows = await conn.execute(
        select(
            feed_rejections.c.item_id,
            feed_rejections.c.reason,
            feed_rejections.c.detail,
            feed_rejections.c.created_at,
        )
        .where(feed_rejections.c.peer_node_id == peer_node_id)
        .order_by(feed_rejections.c.id.desc())
        .limit(limit)
    )
    return [Rejection(*row) for row in rows]


async def purge_rejections(conn: AsyncConnection, now: datetime) -> int:
    cutoff = now - timedelta(days=REJECTIONS_KEPT_DAYS)
    result = await conn.execute(
        delete(feed_rejections).where(feed_rejections.c.created_at < cutoff)
    )
    return result.rowcount
