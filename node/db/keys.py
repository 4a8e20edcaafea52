"""The node's own public keys and their states (the private keys are files)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from node.db.tables import node_keys


@dataclass(frozen=True)
class NodeKeyRow:
    key_id: str
    public_key: str
    state: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


async def all_keys(conn: AsyncConnection) -> list[NodeKeyRow]:
    rows = await conn.execute(select(node_keys).order_by(node_keys.c.created_at))
    return [NodeKeyRow(**row._mapping) for row in rows]


async def add_current(conn: AsyncConnection, key_id: str, public_key: str, now: datetime) -> None:
    await conn.execute(
        node_keys.insert().values(
            key_id=key_id, public_key=public_key, state="current", created_at=now
        )
    )


async def retire_current(conn: AsyncConnection, expires_at: datetime) -> None:
    await conn.execute(
        update(node_keys)
        .where(node_keys.c.state == "current")
        .values(state="old", expires_at=expires_at)
    )
