"""Request nonces: a unique row per (key id, nonce) until the signature expires.

The unique primary key decides, so two replicas seeing the same request at
once cannot both accept it.  :class:`NonceBatcher` groups the nonces of
concurrent requests into one ``INSERT ... ON CONFLICT DO NOTHING RETURNING``
per transaction (group commit): under load a poll pays a fraction of a
write instead of a whole one, and nothing is acknowledged before its row
is committed.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from node.db.engine import Database
from node.db.tables import request_nonces
from protocol.errors import ReplayedNonce

Entry = tuple[str, str, datetime]
REPLAYED = "Nonce wurde bereits verwendet / nonce has been used before"


async def store(conn: AsyncConnection, entries: list[Entry]) -> set[tuple[str, str]]:
    """Insert new nonces; return the (key id, nonce) pairs that were new."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    statement = (
        dialect.insert(request_nonces)
        .values([{"key_id": k, "nonce": n, "expires_at": e} for k, n, e in entries])
        .on_conflict_do_nothing()
        .returning(request_nonces.c.key_id, request_nonces.c.nonce)
    )
    return {(row[0], row[1]) for row in await conn.execute(statement)}


async def remember(conn: AsyncConnection, key_id: str, nonce: str, expires_at: datetime) -> None:
    """Store one nonce, or raise :class:`ReplayedNonce` if it is there already."""
    if not await store(conn, [(key_id, nonce, expires_at)]):
        raise ReplayedNonce(REPLAYED)


async def purge(conn: AsyncConnection, before: datetime) -> int:
    result = await conn.execute(delete(request_nonces).where(request_nonces.c.expires_at < before))
    return result.rowcount


class NonceBatcher:
    """Group-commits the nonces of concurrent requests."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._waiting: list[tuple[Entry, asyncio.Future[bool]]] = []
        self._flushing = False

    async def remember(self, key_id: str, nonce: str, expires_at: datetime) -> None:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append(((key_id, nonce, expires_at), future))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        if not await future:
            raise ReplayedNonce(REPLAYED)

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:500], self._waiting[500:]
                first: dict[tuple[str, str], asyncio.Future[bool]] = {}
                for (key_id, nonce, _), future in batch:
                    if (key_id, nonce) in first:
                        future.set_result(False)  # the same nonce twice in one batch
                    else:
                        first[(key_id, nonce)] = future
                entries = list(dict.fromkeys(e for e, f in batch if f is first[e[:2]]))
                try:
                    async with self.db.write() as conn:
                        new = await store(conn, entries)
                except Exception as exc:
                    for future in first.values():
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for pair, future in first.items():
                    if not future.done():
                        future.set_result(pair in new)
        finally:
            self._flushing = False
