"""Request nonces: a unique row per (key id, nonce) until the signature expires."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from node.db.tables import request_nonces
from node.db.upsert import insert_ignore
from protocol.errors import ReplayedNonce


async def remember(conn: AsyncConnection, key_id: str, nonce: str, expires_at: datetime) -> None:
    """Store the nonce, or raise :class:`ReplayedNonce` if it is there already.

    The unique primary key decides, so two replicas seeing the same request
    at once cannot both accept it.
    """
    if not await insert_ignore(
        conn, request_nonces, key_id=key_id, nonce=nonce, expires_at=expires_at
    ):
        raise ReplayedNonce("Nonce wurde bereits verwendet / nonce has been used before")


async def purge(conn: AsyncConnection, before: datetime) -> int:
    result = await conn.execute(delete(request_nonces).where(request_nonces.c.expires_at < before))
    return result.rowcount
