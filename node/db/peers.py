"""Peers and their pinned keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from node.db.tables import peer_keys, peers
from protocol.keyring import PinnedKeys
from protocol.keys import b64url_encode, public_key_from_b64, raw_public_key

PEER_STATES = ("pending_in", "pending_out", "active", "suspended", "declined")


@dataclass(frozen=True)
class PeerRow:
    id: int
    node_id: str
    base_url: str
    display_name: str
    state: str
    fingerprint: str
    descriptor: str
    descriptor_issued_at: datetime
    suspended_by: str | None
    created_at: datetime
    updated_at: datetime


def _row(mapping: object) -> PeerRow:
    return PeerRow(**dict(mapping))  # type: ignore[call-overload]


async def get(conn: AsyncConnection, node_id: str) -> PeerRow | None:
    row = (await conn.execute(select(peers).where(peers.c.node_id == node_id))).first()
    return _row(row._mapping) if row else None


async def get_by_id(conn: AsyncConnection, peer_id: int) -> PeerRow | None:
    row = (await conn.execute(select(peers).where(peers.c.id == peer_id))).first()
    return _row(row._mapping) if row else None


async def list_peers(conn: AsyncConnection) -> list[PeerRow]:
    rows = await conn.execute(select(peers).order_by(peers.c.node_id))
    return [_row(row._mapping) for row in rows]


async def find_by_key(conn: AsyncConnection, key_id: str) -> PeerRow | None:
    row = (
        await conn.execute(
            select(peers)
            .join(peer_keys, peer_keys.c.peer_id == peers.c.id)
            .where(peer_keys.c.key_id == key_id)
        )
    ).first()
    return _row(row._mapping) if row else None


async def insert(
    conn: AsyncConnection,
    *,
    node_id: str,
    base_url: str,
    display_name: str,
    state: str,
    fingerprint: str,
    descriptor: str,
    descriptor_issued_at: datetime,
    now: datetime,
) -> int:
    result = await conn.execute(
        peers.insert().values(
            node_id=node_id,
            base_url=base_url,
            display_name=display_name,
            state=state,
            fingerprint=fingerprint,
            descriptor=descriptor,
            descriptor_issued_at=descriptor_issued_at,
            created_at=now,
            updated_at=now,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


async def set_state(
    conn: AsyncConnection,
    peer_id: int,
    state: str,
    now: datetime,
    *,
    suspended_by: str | None = None,
) -> None:
    await conn.execute(
        update(peers)
        .where(peers.c.id == peer_id)
        .values(state=state, suspended_by=suspended_by, updated_at=now)
    )


async def update_descriptor(
    conn: AsyncConnection,
    peer_id: int,
    *,
    base_url: str,
    display_name: str,
    fingerprint: str,
    descriptor: str,
    descriptor_issued_at: datetime,
    now: datetime,
) -> None:
    await conn.execute(
        update(peers)
        .where(peers.c.id == peer_id)
        .values(
            base_url=base_url,
            display_name=display_name,
            fingerprint=fingerprint,
            descriptor=descriptor,
            descriptor_issued_at=descriptor_issued_at,
            updated_at=now,
        )
    )


async def remove(conn: AsyncConnection, peer_id: int) -> None:
    await conn.execute(delete(peers).where(peers.c.id == peer_id))


async def pin_keys(conn: AsyncConnection, peer_id: int, pinned: PinnedKeys) -> None:
    """Replace the peer's stored keys with *pinned* (revocations included)."""
    await conn.execute(delete(peer_keys).where(peer_keys.c.peer_id == peer_id))
    rows: list[dict[str, object]] = [
        {
            "peer_id": peer_id,
            "key_id": key_id,
            "public_key": b64url_encode(raw_public_key(key)),
            "state": "current",
            "expires_at": None,
            "revoked_at": None,
        }
        for key_id, key in pinned.current.items()
    ]
    rows += [
        {
            "peer_id": peer_id,
            "key_id": key_id,
            "public_key": b64url_encode(raw_public_key(key)),
            "state": "old",
            "expires_at": expires_at,
            "revoked_at": None,
        }
        for key_id, (key, expires_at) in pinned.old.items()
    ]
    rows += [
        {
            "peer_id": peer_id,
            "key_id": key_id,
            "public_key": "",
            "state": "revoked",
            "expires_at": None,
            "revoked_at": revoked_at,
        }
        for key_id, revoked_at in pinned.revoked.items()
    ]
    if rows:
        await conn.execute(peer_keys.insert(), rows)


async def pinned_keys(conn: AsyncConnection, peer: PeerRow) -> PinnedKeys:
    rows = await conn.execute(select(peer_keys).where(peer_keys.c.peer_id == peer.id))
    current, old, revoked = {}, {}, {}
    for row in rows:
        if row.state == "current":
            current[row.key_id] = public_key_from_b64(row.public_key)
        elif row.state == "old":
            old[row.key_id] = (public_key_from_b64(row.public_key), row.expires_at)
        else:
            revoked[row.key_id] = row.revoked_at
    return PinnedKeys(peer.node_id, current, old, revoked, peer.descriptor_issued_at)
