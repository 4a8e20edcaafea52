"""The merged catalogue: stored entries, the search index, and queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from node.catalogue.entry import CatalogueEntry
from node.catalogue.search import prefix_end
from node.db.tables import catalogue, catalogue_terms
from protocol.models.announcement import MAX_DURATION_MINUTES


@dataclass(frozen=True)
class Stored:
    announcement: str | None
    version: int
    start_at: datetime
    end_at: datetime
    status: str
    sequence: int
    deleted: bool


@dataclass(frozen=True)
class Query:
    start_from: datetime
    start_to: datetime | None = None
    words: tuple[str, ...] = ()
    format: str | None = None
    language: str | None = None
    org: str | None = None
    open_seats: bool = False
    status: str | None = None
    after: tuple[datetime, str, str] | None = None
    limit: int = 50


async def stored(conn: AsyncConnection, origin: str, session_id: str) -> Stored | None:
    row = (
        await conn.execute(
            select(
                catalogue.c.announcement,
                catalogue.c.version,
                catalogue.c.start_at,
                catalogue.c.end_at,
                catalogue.c.status,
                catalogue.c.sequence,
                catalogue.c.deleted_at,
            ).where(catalogue.c.origin == origin, catalogue.c.session_id == session_id)
        )
    ).first()
    if row is None:
        return None
    return Stored(row[0], row[1], row[2], row[3], row[4], row[5], row[6] is not None)


async def stored_many(conn: AsyncConnection, origin: str, ids: list[str]) -> dict[str, Stored]:
    """The stored state of many sessions of one origin, in one query."""
    if not ids:
        return {}
    rows = await conn.execute(
        select(
            catalogue.c.session_id,
            catalogue.c.announcement,
            catalogue.c.version,
            catalogue.c.start_at,
            catalogue.c.end_at,
            catalogue.c.status,
            catalogue.c.sequence,
            catalogue.c.deleted_at,
        ).where(catalogue.c.origin == origin, catalogue.c.session_id.in_(ids))
    )
    return {r[0]: Stored(r[1], r[2], r[3], r[4], r[5], r[6], r[7] is not None) for r in rows}


async def write_many(
    conn: AsyncConnection,
    inserts: list[dict[str, Any]],
    updates: list[dict[str, Any]],
    terms: dict[tuple[str, str], set[str]],
) -> None:
    """Insert and update many entries and replace their search terms, in few statements."""
    if inserts:
        await conn.execute(catalogue.insert(), inserts)
    if updates:
        await conn.execute(
            update(catalogue)
            .where(
                catalogue.c.origin == bindparam("k_origin"),
                catalogue.c.session_id == bindparam("k_session_id"),
            )
            .values(
                {
                    name: bindparam(name)
                    for name in updates[0]
                    if name not in ("origin", "session_id")
                }
            ),
            [
                {**values, "k_origin": values["origin"], "k_session_id": values["session_id"]}
                for values in updates
            ],
        )
        await conn.execute(
            delete(catalogue_terms).where(
                tuple_(catalogue_terms.c.origin, catalogue_terms.c.session_id).in_(
                    [(values["origin"], values["session_id"]) for values in updates]
                )
            )
        )
    rows = [
        {"term": term, "origin": key[0], "session_id": key[1]}
        for key, words in terms.items()
        for term in sorted(words)
    ]
    if rows:
        await conn.execute(catalogue_terms.insert(), rows)


async def upsert(
    conn: AsyncConnection, values: dict[str, Any], terms: set[str], *, exists: bool
) -> None:
    key = (values["origin"], values["session_id"])
    if exists:
        await conn.execute(
            update(catalogue)
            .where(catalogue.c.origin == key[0], catalogue.c.session_id == key[1])
            .values(**values)
        )
        await conn.execute(
            delete(catalogue_terms).where(
                catalogue_terms.c.origin == key[0], catalogue_terms.c.session_id == key[1]
            )
        )
    else:
        await conn.execute(catalogue.insert().values(**values))
    if terms:
        await conn.execute(
            catalogue_terms.insert(),
            [{"term": t, "origin": key[0], "session_id": key[1]} for t in sorted(terms)],
        )


async def mark_deleted(conn: AsyncConnection, origin: str, session_id: str, now: datetime) -> bool:
    """Tombstone an entry (its version stays, so older versions cannot return)."""
    result = await conn.execute(
        update(catalogue)
        .where(
            catalogue.c.origin == origin,
            catalogue.c.session_id == session_id,
            catalogue.c.deleted_at.is_(None),
        )
        .values(deleted_at=now, modified_at=now)
    )
    await conn.execute(
        delete(catalogue_terms).where(
            catalogue_terms.c.origin == origin, catalogue_terms.c.session_id == session_id
        )
    )
    return result.rowcount == 1


async def purge(conn: AsyncConnection, *, ended_before: datetime) -> int:
    """Remove entries that ended before the retention cutoff."""
    doomed = select(catalogue.c.origin, catalogue.c.session_id).where(
        catalogue.c.end_at < ended_before
    )
    await conn.execute(
        delete(catalogue_terms).where(
            tuple_(catalogue_terms.c.origin, catalogue_terms.c.session_id).in_(doomed)
        )
    )
    result = await conn.execute(delete(catalogue).where(catalogue.c.end_at < ended_before))
    return result.rowcount


_COPIED = (
    "origin",
    "session_id",
    "org_name",
    "is_local",
    "version",
    "title",
    "description",
    "format",
    "start_at",
    "end_at",
    "timezone",
    "duration_minutes",
    "host_name",
    "status",
    "seats_open",
    "seats_remaining",
    "registration_mode",
    "waitlist",
    "email_required",
    "details_url",
    "sequence",
    "modified_at",
)


def _entry(row: Any, registration: str) -> CatalogueEntry:
    entry_id = f"{row.session_id}@{row.origin}"
    return CatalogueEntry(
        id=entry_id,
        languages=tuple(row.languages),
        tags=tuple(row.tags),
        registration_url=registration.format(id=entry_id),
        **{name: row._mapping[name] for name in _COPIED},
    )


async def get(
    conn: AsyncConnection, origin: str, session_id: str, registration: str
) -> CatalogueEntry | None:
    row = (
        await conn.execute(
            select(catalogue).where(
                catalogue.c.origin == origin,
                catalogue.c.session_id == session_id,
                catalogue.c.deleted_at.is_(None),
            )
        )
    ).first()
    return _entry(row, registration) if row else None


async def search(conn: AsyncConnection, query: Query, registration: str) -> list[CatalogueEntry]:
    """Entries matching *query*, ordered by (start, origin, session id)."""
    c = catalogue.c
    # end_at > from keeps sessions that are running now; the bound on
    # start_at (no session lasts longer than 8 hours) lets the start index
    # limit the scan.
    conditions = [
        c.deleted_at.is_(None),
        c.end_at > query.start_from,
        c.start_at > query.start_from - timedelta(minutes=MAX_DURATION_MINUTES),
    ]
    if query.start_to is not None:
        conditions.append(c.start_at < query.start_to)
    if query.format:
        conditions.append(c.format == query.format)
    if query.status:
        conditions.append(c.status == query.status)
    if query.org:
        conditions.append(c.origin == query.org)
    if query.language:
        conditions.append(c.languages_key.contains(f",{query.language},"))
    if query.open_seats:
        conditions.append(c.seats_remaining > 0)
    for word in query.words:
        matching = select(catalogue_terms.c.origin, catalogue_terms.c.session_id).where(
            catalogue_terms.c.term >= word, catalogue_terms.c.term < prefix_end(word)
        )
        conditions.append(tuple_(c.origin, c.session_id).in_(matching))
    if query.after is not None:
        start, origin, session_id = query.after
        conditions.append(
            tuple_(c.start_at, c.origin, c.session_id)
            > tuple_(
                literal(start, c.start_at.type),
                literal(origin, c.origin.type),
                literal(session_id, c.session_id.type),
            )
        )
    rows = await conn.execute(
        select(catalogue)
        .where(and_(*conditions))
        .order_by(c.start_at, c.origin, c.session_id)
        .limit(query.limit)
    )
    return [_entry(row, registration) for row in rows]
