"""The change log behind the RPDE feed.

Every session ever published has one ``feed_items`` row.  A change sets
its ``change_number`` to NULL inside the change's own transaction; after
commit, :func:`stamp` numbers all NULL rows from ``feed_counter``.  The
stamper first takes the counter row's write lock, so stamping transactions
commit strictly in number order: a reader that has seen change N can never
later find a smaller number appear.  That is how the feed stays gap-free
when PostgreSQL commits writers out of order.  Rows waiting for a number
are invisible to readers, and a periodic job re-runs the stamper in case a
process died between commit and stamp.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    case,
    delete,
    false,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from node.db.tables import feed_counter, feed_items, session_audience, sessions

TOMBSTONE_DAYS = 7


@dataclass(frozen=True)
class FeedRow:
    session_id: str
    change_number: int
    announcement: str | None  # None: a deleted item for this reader


async def mark_changed(
    conn: AsyncConnection, session_id: str, now: datetime, *, deleted: bool = False
) -> None:
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    values = {
        "session_id": session_id,
        "change_number": None,
        "changed_at": now,
        "deleted_at": now if deleted else None,
    }
    statement = dialect.insert(feed_items).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[feed_items.c.session_id],
        set_={
            "change_number": None,
            "changed_at": now,
            "deleted_at": now if deleted else None,
        },
    )
    await conn.execute(statement)


async def stamp(conn: AsyncConnection) -> int:
    """Number every waiting row; return how many.  Run in its own transaction."""
    # Take the counter's write lock first (a row lock on PostgreSQL, the
    # database write lock on SQLite) and keep it until commit.
    await conn.execute(
        update(feed_counter).where(feed_counter.c.id == 1).values(value=feed_counter.c.value)
    )
    pending = list(
        await conn.execute(
            select(feed_items.c.session_id)
            .where(feed_items.c.change_number.is_(None))
            .order_by(feed_items.c.changed_at, feed_items.c.session_id)
        )
    )
    if not pending:
        return 0
    start = (
        await conn.execute(select(feed_counter.c.value).where(feed_counter.c.id == 1))
    ).scalar_one()
    await conn.execute(
        update(feed_items)
        .where(feed_items.c.session_id == bindparam("sid"))
        .values(change_number=bindparam("number")),
        [{"sid": row.session_id, "number": start + i + 1} for i, row in enumerate(pending)],
    )
    await conn.execute(
        update(feed_counter).where(feed_counter.c.id == 1).values(value=start + len(pending))
    )
    return len(pending)


async def latest_change(conn: AsyncConnection) -> int:
    value = (await conn.execute(select(func.max(feed_items.c.change_number)))).scalar()
    return int(value or 0)


def _page_query() -> Select[Any]:
    """Rows after a cursor, with ``data`` only where this reader may see it.

    Visibility is decided in SQL so that no row needs type conversion in
    Python: a session is visible while it has an announcement, is neither
    withdrawn nor closed nor over (``ended_published``, set by the
    ``publish_endings`` job, which also marks the row changed), and the
    reader is in its audience.
    """
    audience = session_audience.alias("a")
    visible = and_(
        sessions.c.announcement.is_not(None),
        sessions.c.withdrawn_at.is_(None),
        sessions.c.open_seats > 0,
        sessions.c.ended_published.is_(false()),
        or_(sessions.c.audience_all.is_(true()), audience.c.peer_id.is_not(None)),
    )
    return (
        select(
            feed_items.c.session_id,
            feed_items.c.change_number,
            case((visible, sessions.c.announcement), else_=None).label("data"),
        )
        .select_from(
            feed_items.outerjoin(sessions, sessions.c.id == feed_items.c.session_id).outerjoin(
                audience,
                (audience.c.session_id == feed_items.c.session_id)
                & (audience.c.peer_id == bindparam("peer_id")),
            )
        )
        .where(feed_items.c.change_number > bindparam("after"))
        .order_by(feed_items.c.change_number)
        .limit(bindparam("limit"))
    )


PAGE_QUERY = _page_query()


async def page(conn: AsyncConnection, *, peer_id: int, after: int, limit: int) -> list[FeedRow]:
    """Rows after *after*, each resolved for one reader: announcement or deleted."""
    result = await conn.execute(PAGE_QUERY, {"peer_id": peer_id, "after": after, "limit": limit})
    return [FeedRow(row[0], row[1], row[2]) for row in result]


async def purge_tombstones(conn: AsyncConnection, now: datetime) -> int:
    """Drop rows of sessions deleted for everyone more than 7 days ago."""
    cutoff = now - timedelta(days=TOMBSTONE_DAYS)
    result = await conn.execute(
        delete(feed_items).where(
            feed_items.c.deleted_at.is_not(None), feed_items.c.deleted_at < cutoff
        )
    )
    return result.rowcount
