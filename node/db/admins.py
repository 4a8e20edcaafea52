"""Admin users of the web UI, their server-side sessions and failed logins.

Passwords arrive here already hashed (:mod:`node.ui.passwords`); session
cookies arrive as their SHA-256, so a copy of the database lets nobody log
in.  Failed logins are rows rather than process memory, so the limit holds
across restarts and across replicas sharing one PostgreSQL database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from node.db.tables import admin_users, login_failures, ui_sessions


class UsernameTaken(ValueError):
    """An admin user with this name exists already."""


@dataclass(frozen=True)
class AdminUser:
    id: int
    username: str
    created_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True)
class Credentials:
    id: int
    username: str
    password_hash: str


@dataclass(frozen=True)
class UiSession:
    token_hash: str
    user_id: int
    username: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class Failures:
    """Failed logins inside the window: how many, and when the oldest was."""

    count: int
    oldest: datetime | None


# --- users -----------------------------------------------------------------


async def create_user(
    conn: AsyncConnection, username: str, password_hash: str, now: datetime
) -> int:
    if await find_user(conn, username) is not None:
        raise UsernameTaken(username)
    try:
        result = await conn.execute(
            admin_users.insert()
            .values(username=username, password_hash=password_hash, created_at=now)
            .returning(admin_users.c.id)
        )
    except IntegrityError:  # a concurrent create of the same name
        raise UsernameTaken(username) from None
    return int(result.scalar_one())


async def find_user(conn: AsyncConnection, username: str) -> Credentials | None:
    row = (
        await conn.execute(
            select(admin_users.c.id, admin_users.c.username, admin_users.c.password_hash).where(
                admin_users.c.username == username
            )
        )
    ).first()
    return Credentials(**row._mapping) if row else None


async def list_users(conn: AsyncConnection) -> list[AdminUser]:
    rows = await conn.execute(
        select(
            admin_users.c.id,
            admin_users.c.username,
            admin_users.c.created_at,
            admin_users.c.last_login_at,
        ).order_by(admin_users.c.username)
    )
    return [AdminUser(**row._mapping) for row in rows]


async def delete_user(conn: AsyncConnection, username: str) -> bool:
    user = await find_user(conn, username)
    if user is None:
        return False
    await conn.execute(delete(ui_sessions).where(ui_sessions.c.user_id == user.id))
    await conn.execute(delete(admin_users).where(admin_users.c.id == user.id))
    return True


async def set_password(conn: AsyncConnection, user_id: int, password_hash: str) -> None:
    """A new password ends every session of the user."""
    await conn.execute(
        update(admin_users).where(admin_users.c.id == user_id).values(password_hash=password_hash)
    )
    await conn.execute(delete(ui_sessions).where(ui_sessions.c.user_id == user_id))


async def touch_login(conn: AsyncConnection, user_id: int, now: datetime) -> None:
    await conn.execute(
        update(admin_users).where(admin_users.c.id == user_id).values(last_login_at=now)
    )


# --- sessions --------------------------------------------------------------


async def create_session(
    conn: AsyncConnection,
    *,
    user_id: int,
    token_hash: str,
    csrf_token: str,
    now: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(delete(ui_sessions).where(ui_sessions.c.expires_at <= now))
    await conn.execute(
        ui_sessions.insert().values(
            token_hash=token_hash,
            user_id=user_id,
            csrf_token=csrf_token,
            created_at=now,
            expires_at=expires_at,
        )
    )


async def find_session(conn: AsyncConnection, token_hash: str, now: datetime) -> UiSession | None:
    row = (
        await conn.execute(
            select(
                ui_sessions.c.token_hash,
                ui_sessions.c.user_id,
                admin_users.c.username,
                ui_sessions.c.csrf_token,
                ui_sessions.c.expires_at,
            )
            .join(admin_users, admin_users.c.id == ui_sessions.c.user_id)
            .where(ui_sessions.c.token_hash == token_hash, ui_sessions.c.expires_at > now)
        )
    ).first()
    return UiSession(**row._mapping) if row else None


async def delete_session(conn: AsyncConnection, token_hash: str) -> None:
    await conn.execute(delete(ui_sessions).where(ui_sessions.c.token_hash == token_hash))


# --- failed logins ---------------------------------------------------------


async def _failures(conn: AsyncConnection, where: ColumnElement[bool]) -> Failures:
    row = (
        await conn.execute(select(func.count(), func.min(login_failures.c.failed_at)).where(where))
    ).one()
    return Failures(int(row[0]), row[1])


async def failures_for_user(conn: AsyncConnection, username: str, since: datetime) -> Failures:
    return await _failures(
        conn, and_(login_failures.c.username == username, login_failures.c.failed_at > since)
    )


async def failures_from_ip(conn: AsyncConnection, client_ip: str, since: datetime) -> Failures:
    return await _failures(
        conn, and_(login_failures.c.client_ip == client_ip, login_failures.c.failed_at > since)
    )


async def record_failure(
    conn: AsyncConnection, username: str, client_ip: str, now: datetime, forget_before: datetime
) -> None:
    """Record one failure and forget every failure older than *forget_before*."""
    await conn.execute(delete(login_failures).where(login_failures.c.failed_at < forget_before))
    await conn.execute(
        login_failures.insert().values(username=username, client_ip=client_ip, failed_at=now)
    )


async def clear_failures(conn: AsyncConnection, username: str) -> None:
    await conn.execute(delete(login_failures).where(login_failures.c.username == username))
