"""Local sessions, their opening to partners and their newest announcement."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from node.db.tables import catalogue, peers, session_audience, sessions


@dataclass(frozen=True)
class SessionRow:
    id: str
    title: str
    description: str
    format: str
    languages: list[str]
    start_at: datetime
    timezone: str
    duration_minutes: int
    host_name: str
    tags: list[str]
    status: str
    join_url: str | None
    details_url: str | None
    import_source: str | None
    import_key: str | None
    open_seats: int
    audience_all: bool
    registration_mode: str
    waitlist: bool
    email_required: bool
    seats_taken: int
    version: int
    announcement: str | None
    created_at: datetime
    updated_at: datetime
    withdrawn_at: datetime | None
    ended_published: bool
    audience: tuple[str, ...] = field(default=())
    seats_published: int | None = None

    @property
    def is_open(self) -> bool:
        return self.open_seats > 0 and self.withdrawn_at is None


async def _audiences(conn: AsyncConnection, ids: list[str]) -> dict[str, tuple[str, ...]]:
    if not ids:
        return {}
    rows = await conn.execute(
        select(session_audience.c.session_id, peers.c.node_id)
        .join(peers, peers.c.id == session_audience.c.peer_id)
        .where(session_audience.c.session_id.in_(ids))
        .order_by(peers.c.node_id)
    )
    found: dict[str, list[str]] = {}
    for session_id, node_id in rows:
        found.setdefault(session_id, []).append(node_id)
    return {key: tuple(value) for key, value in found.items()}


async def get(conn: AsyncConnection, session_id: str, *, lock: bool = False) -> SessionRow | None:
    """The session; with *lock*, its row stays locked until commit (PostgreSQL)."""
    query = select(sessions).where(sessions.c.id == session_id)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        return None
    audience = (await _audiences(conn, [session_id])).get(session_id, ())
    return SessionRow(**row._mapping, audience=audience)


async def get_by_import(conn: AsyncConnection, source: str, key: str) -> SessionRow | None:
    row = (
        await conn.execute(
            select(sessions.c.id).where(
                sessions.c.import_source == source, sessions.c.import_key == key
            )
        )
    ).first()
    return await get(conn, row.id) if row else None


async def list_sessions(
    conn: AsyncConnection,
    *,
    q: str | None = None,
    include_withdrawn: bool = False,
    limit: int = 200,
    offset: int = 0,
) -> list[SessionRow]:
    query = select(sessions).order_by(sessions.c.start_at, sessions.c.id)
    if not include_withdrawn:
        query = query.where(sessions.c.withdrawn_at.is_(None))
    if q:
        pattern = f"%{q.lower()}%"
        query = query.where(
            or_(
                func.lower(sessions.c.title).like(pattern),
                func.lower(sessions.c.host_name).like(pattern),
            )
        )
    rows = list(await conn.execute(query.limit(limit).offset(offset)))
    audiences = await _audiences(conn, [row.id for row in rows])
    return [SessionRow(**row._mapping, audience=audiences.get(row.id, ())) for row in rows]


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(sessions.insert().values(**values))


async def update_fields(conn: AsyncConnection, session_id: str, values: dict[str, Any]) -> None:
    await conn.execute(update(sessions).where(sessions.c.id == session_id).values(**values))


async def set_audience(conn: AsyncConnection, session_id: str, peer_ids: list[int]) -> None:
    await conn.execute(delete(session_audience).where(session_audience.c.session_id == session_id))
    if peer_ids:
        await conn.execute(
            session_audience.insert(),
            [{"session_id": session_id, "peer_id": peer_id} for peer_id in peer_ids],
        )


async def set_announcement(
    conn: AsyncConnection,
    session_id: str,
    version: int,
    announcement: str,
    *,
    seats_published: int,
) -> None:
    await conn.execute(
        update(sessions)
        .where(sessions.c.id == session_id)
        .values(version=version, announcement=announcement, seats_published=seats_published)
    )


async def set_quota(conn: AsyncConnection, session_id: str, seats: int) -> bool:
    """Set the partner quota unless more seats are already taken (atomic)."""
    result = await conn.execute(
        update(sessions)
        .where(sessions.c.id == session_id, sessions.c.seats_taken <= seats)
        .values(open_seats=seats)
    )
    return result.rowcount == 1


async def seats_unpublished(conn: AsyncConnection, now: datetime) -> list[str]:
    """Open, future sessions whose announcement shows an outdated seat count."""
    rows = await conn.execute(
        select(sessions.c.id)
        .where(
            sessions.c.open_seats > 0,
            sessions.c.withdrawn_at.is_(None),
            sessions.c.announcement.is_not(None),
            sessions.c.start_at > now - timedelta(days=1),
            or_(
                sessions.c.seats_published.is_(None),
                sessions.c.seats_published != sessions.c.seats_taken,
            ),
        )
        .order_by(sessions.c.id)
        .limit(1000)
    )
    return [row.id for row in rows]


async def ended_unpublished(conn: AsyncConnection, now: datetime) -> list[SessionRow]:
    """Sessions that have ended but whose end the feed has not shown yet."""
    rows = await conn.execute(
        select(sessions.c.id, sessions.c.start_at, sessions.c.duration_minutes).where(
            sessions.c.ended_published.is_(False), sessions.c.start_at < now
        )
    )
    ended = []
    for row in rows:
        session = await get(conn, row.id)
        if session is not None and session_end(session) <= now:
            ended.append(session)
    return ended


async def without_catalogue_entry(conn: AsyncConnection, origin: str) -> list[str]:
    """Own sessions (not withdrawn) that have no catalogue row under *origin*."""
    mirrored = select(catalogue.c.session_id).where(catalogue.c.origin == origin)
    rows = await conn.execute(
        select(sessions.c.id)
        .where(sessions.c.withdrawn_at.is_(None), sessions.c.id.not_in(mirrored))
        .order_by(sessions.c.id)
    )
    return [row.id for row in rows]


def session_end(session: SessionRow) -> datetime:
    return session.start_at + timedelta(minutes=session.duration_minutes)
