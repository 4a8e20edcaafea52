"""The per-peer token bucket, shared by the replicas of a node (PostgreSQL).

With one process (SQLite) the bucket lives in memory
(:class:`node.web.protocol_auth.RateLimiter`) and a request costs no write.
Replicas behind a load balancer must share it, or each would grant the
whole limit and a peer could send ``replicas x limit``.  So on PostgreSQL
the bucket is a row per peer, refilled and taken from by one statement:

    INSERT INTO rate_buckets ... VALUES (:peer, capacity - 1, :now, true)
    ON CONFLICT (peer) DO UPDATE SET
      tokens = <refilled> - 1 if <refilled> >= 1 else <refilled>,
      granted = <refilled> >= 1, updated_at = greatest(updated_at, :now)
    RETURNING tokens, granted

where ``<refilled> = least(capacity, tokens + seconds since updated_at *
rate)``.  The row lock orders concurrent requests of one peer, so every
token is handed out once, whichever replica asks.  Time is the node's
clock; a replica whose clock is a little behind adds nothing (no negative
refill) and moves ``updated_at`` nowhere backwards.

Buckets idle for longer than an hour are full again anyway and are purged
by a scheduled job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, extract, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from node.db.tables import rate_buckets

IDLE = timedelta(hours=1)


@dataclass(frozen=True)
class Bucket:
    granted: bool
    tokens: float


async def take(
    conn: AsyncConnection, peer: str, *, capacity: float, rate: float, now: datetime
) -> Bucket:
    """Take one token from *peer*'s bucket if it has one (PostgreSQL only)."""
    row = rate_buckets.c
    first = insert(rate_buckets).values(
        peer=peer, tokens=capacity - 1.0, updated_at=now, granted=True
    )
    elapsed = func.greatest(extract("epoch", first.excluded.updated_at - row.updated_at), 0)
    refilled = func.least(capacity, row.tokens + elapsed * rate)
    statement = first.on_conflict_do_update(
        index_elements=[row.peer],
        set_={
            "tokens": case((refilled >= 1.0, refilled - 1.0), else_=refilled),
            "granted": refilled >= 1.0,
            "updated_at": func.greatest(row.updated_at, first.excluded.updated_at),
        },
    ).returning(row.granted, row.tokens)
    found = (await conn.execute(statement)).one()
    return Bucket(granted=bool(found.granted), tokens=float(found.tokens))


async def purge(conn: AsyncConnection, now: datetime) -> int:
    result = await conn.execute(delete(rate_buckets).where(rate_buckets.c.updated_at < now - IDLE))
    return result.rowcount
