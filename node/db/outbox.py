"""Outbox rows: every outbound protocol message, written with its cause.

The state graph lives in :mod:`node.federation.outbox`; this module only
stores and reads rows.  :func:`head` is the oldest pending message of one
peer; a peer's later messages wait behind it, so delivery to each peer is
in order with one message in flight.  Which replica delivers a peer is
decided by its claim (:func:`node.db.leases.claim_peer`), and
:func:`transition` moves a message only from the state and attempt count
it was read with, so an answer is never recorded twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from node.db.tables import outbox


@dataclass(frozen=True)
class OutboxRow:
    id: int
    peer_node_id: str
    kind: str
    method: str
    url: str
    body: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    updated_at: datetime


async def enqueue(
    conn: AsyncConnection,
    *,
    peer_node_id: str,
    kind: str,
    method: str,
    url: str,
    body: str,
    now: datetime,
) -> int:
    result = await conn.execute(
        outbox.insert().values(
            peer_node_id=peer_node_id,
            kind=kind,
            method=method,
            url=url,
            body=body,
            state="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


async def peers_with_due_messages(conn: AsyncConnection, now: datetime) -> list[str]:
    """Peers whose oldest pending message is due."""
    head = (
        select(outbox.c.peer_node_id, func.min(outbox.c.id).label("head_id"))
        .where(outbox.c.state == "pending")
        .group_by(outbox.c.peer_node_id)
        .subquery()
    )
    rows = await conn.execute(
        select(head.c.peer_node_id)
        .join(outbox, outbox.c.id == head.c.head_id)
        .where(outbox.c.next_attempt_at <= now)
        .order_by(head.c.peer_node_id)
    )
    return [row.peer_node_id for row in rows]


async def head(conn: AsyncConnection, peer_node_id: str) -> OutboxRow | None:
    row = (
        await conn.execute(
            select(outbox)
            .where(outbox.c.peer_node_id == peer_node_id, outbox.c.state == "pending")
            .order_by(outbox.c.id)
            .limit(1)
        )
    ).first()
    return OutboxRow(**row._mapping) if row else None


async def transition(
    conn: AsyncConnection,
    row: OutboxRow,
    *,
    state: str,
    now: datetime,
    next_attempt_at: datetime | None = None,
    error: str | None = None,
    count_attempt: bool = True,
) -> bool:
    """Move *row* on, if nobody moved it since it was read; return whether it moved."""
    values: dict[str, object] = {"state": state, "updated_at": now, "last_error": error}
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    if count_attempt:
        values["attempts"] = outbox.c.attempts + 1
    result = await conn.execute(
        update(outbox)
        .where(
            outbox.c.id == row.id,
            outbox.c.state == row.state,
            outbox.c.attempts == row.attempts,
        )
        .values(**values)
    )
    return result.rowcount == 1


async def list_messages(
    conn: AsyncConnection, *, state: str | None = None, peer_node_id: str | None = None
) -> list[OutboxRow]:
    query = select(outbox).order_by(outbox.c.id)
    if state:
        query = query.where(outbox.c.state == state)
    if peer_node_id:
        query = query.where(outbox.c.peer_node_id == peer_node_id)
    return [OutboxRow(**row._mapping) for row in await conn.execute(query)]


async def get(conn: AsyncConnection, message_id: int) -> OutboxRow | None:
    row = (await conn.execute(select(outbox).where(outbox.c.id == message_id))).first()
    return OutboxRow(**row._mapping) if row else None


async def discard(conn: AsyncConnection, message_id: int) -> None:
    """Drop a dead letter the admin gave up on."""
    await conn.execute(outbox.delete().where(outbox.c.id == message_id, outbox.c.state == "dead"))
