"""API tokens: stored only as SHA-256 hashes of high-entropy random strings."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from node.db.tables import api_tokens

ROLES = ("admin", "portal", "calendar")


@dataclass(frozen=True)
class TokenRow:
    id: int
    role: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create(conn: AsyncConnection, role: str, label: str, now: datetime) -> str:
    """Create a token and return it in clear text: the only time it exists so."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    token = f"os_{role}_{secrets.token_urlsafe(32)}"
    await conn.execute(
        api_tokens.insert().values(token_hash=_hash(token), role=role, label=label, created_at=now)
    )
    return token


async def role_of(conn: AsyncConnection, token: str) -> str | None:
    row = await conn.execute(
        select(api_tokens.c.role).where(
            api_tokens.c.token_hash == _hash(token), api_tokens.c.revoked_at.is_(None)
        )
    )
    return row.scalar_one_or_none()


async def list_tokens(conn: AsyncConnection) -> list[TokenRow]:
    rows = await conn.execute(
        select(
            api_tokens.c.id,
            api_tokens.c.role,
            api_tokens.c.label,
            api_tokens.c.created_at,
            api_tokens.c.revoked_at,
        ).order_by(api_tokens.c.id)
    )
    return [TokenRow(**row._mapping) for row in rows]


async def revoke(conn: AsyncConnection, token_id: int, now: datetime) -> bool:
    result = await conn.execute(
        update(api_tokens)
        .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount == 1
