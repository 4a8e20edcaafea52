"""Cheap aggregate reads for the metrics scrape and the readiness check.

Each query is a grouped count or a range scan on an existing index
(``ix_outbox_peer_state``, ``ix_sessions_start_at``, the peers' primary
key), so a scrape every 15 seconds costs a few milliseconds even with a
long history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from node.db.tables import outbox, peer_sync, peers, sessions

# A session that started more than this long ago has ended (durations are shorter).
LONGEST_SESSION = timedelta(days=1)


@dataclass(frozen=True)
class NodeStats:
    outbox_pending: dict[str, int] = field(default_factory=dict)
    outbox_dead: dict[str, int] = field(default_factory=dict)
    backoff_seconds: dict[str, float] = field(default_factory=dict)
    seats_open: int = 0
    seats_taken: int = 0


async def ping(conn: AsyncConnection) -> None:
    """A round trip to the database (``SELECT 1``)."""
    await conn.execute(text("SELECT 1"))


async def node_stats(conn: AsyncConnection, now: datetime) -> NodeStats:
    pending: dict[str, int] = {}
    dead: dict[str, int] = {}
    counts = await conn.execute(
        select(outbox.c.peer_node_id, outbox.c.state, func.count())
        .where(outbox.c.state.in_(("pending", "dead")))
        .group_by(outbox.c.peer_node_id, outbox.c.state)
    )
    for peer, state, count in counts:
        (pending if state == "pending" else dead)[peer] = int(count)

    backoff: dict[str, float] = {}
    active = await conn.execute(
        select(peers.c.node_id, peer_sync.c.next_attempt_at)
        .select_from(peers.outerjoin(peer_sync, peer_sync.c.peer_id == peers.c.id))
        .where(peers.c.state == "active")
    )
    for node_id, next_pull in active:
        backoff[node_id] = _remaining(next_pull, now)
    # Only a peer's head message is ever retried; attempts > 0 means it backs off.
    retrying = await conn.execute(
        select(outbox.c.peer_node_id, func.max(outbox.c.next_attempt_at))
        .where(outbox.c.state == "pending", outbox.c.attempts > 0)
        .group_by(outbox.c.peer_node_id)
    )
    for node_id, next_delivery in retrying:
        if node_id in backoff:
            backoff[node_id] = max(backoff[node_id], _remaining(next_delivery, now))
    for node_id in backoff:  # every active peer has a series, 0 when nothing waits
        pending.setdefault(node_id, 0)
        dead.setdefault(node_id, 0)

    seats = await conn.execute(
        select(
            sessions.c.start_at,
            sessions.c.duration_minutes,
            sessions.c.open_seats,
            sessions.c.seats_taken,
        ).where(
            sessions.c.start_at >= now - LONGEST_SESSION,
            sessions.c.withdrawn_at.is_(None),
            sessions.c.status != "cancelled",
            sessions.c.open_seats > 0,
        )
    )
    seats_open = seats_taken = 0
    for start_at, minutes, opened, taken in seats:
        if start_at + timedelta(minutes=minutes) > now:
            seats_open += opened
            seats_taken += taken
    return NodeStats(pending, dead, backoff, seats_open, seats_taken)


def _remaining(until: datetime | None, now: datetime) -> float:
    if until is None:
        return 0.0
    if until.tzinfo is None:  # a raw aggregate on SQLite comes back naive (UTC)
        until = until.replace(tzinfo=now.tzinfo)
    return max((until - now).total_seconds(), 0.0)
