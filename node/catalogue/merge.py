"""Writing catalogue rows: from a partner's announcement or an own session."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from node.catalogue.search import terms
from node.db import catalogue as catalogue_repo
from node.db.sessions import SessionRow
from protocol.models import Announcement


def _sequence(previous: catalogue_repo.Stored | None, values: dict[str, Any]) -> int:
    if previous is None:
        return 0
    moved = (
        previous.start_at != values["start_at"]
        or previous.end_at != values["end_at"]
        or previous.status != values["status"]
        or previous.deleted
    )
    return previous.sequence + 1 if moved else previous.sequence


def _complete(
    values: dict[str, Any], previous: catalogue_repo.Stored | None, now: datetime
) -> set[str]:
    values["sequence"] = _sequence(previous, values)
    values["modified_at"] = now
    values["deleted_at"] = None
    values["languages_key"] = "," + ",".join(values["languages"]) + ","
    return terms([values["title"], values["description"], *values["tags"]])


async def _write(conn: AsyncConnection, values: dict[str, Any], now: datetime) -> None:
    previous = await catalogue_repo.stored(conn, values["origin"], values["session_id"])
    words = _complete(values, previous, now)
    await catalogue_repo.upsert(conn, values, words, exists=previous is not None)


class PageBatch:
    """Collects the announcements of one feed page and writes them together.

    ``previous`` is preloaded with one query for the whole page; the merge
    checks versions against it and it is kept current as items are added.
    """

    def __init__(self, previous: dict[str, catalogue_repo.Stored]) -> None:
        self.previous = previous
        self._inserts: dict[str, dict[str, Any]] = {}
        self._updates: dict[str, dict[str, Any]] = {}
        self._terms: dict[tuple[str, str], set[str]] = {}

    def add(
        self, announcement: Announcement, raw: dict[str, Any], org_name: str, now: datetime
    ) -> None:
        values = _announcement_values(announcement, raw, org_name)
        key = announcement.id
        previous = self.previous.get(key)
        words = _complete(values, previous, now)
        if previous is None and key not in self._updates:
            self._inserts[key] = values
        else:
            self._inserts.pop(key, None)
            self._updates[key] = values
        self._terms[(values["origin"], key)] = words
        self.previous[key] = catalogue_repo.Stored(
            values["announcement"],
            values["version"],
            values["start_at"],
            values["end_at"],
            values["status"],
            values["sequence"],
            False,
        )

    async def flush(self, conn: AsyncConnection) -> None:
        await catalogue_repo.write_many(
            conn, list(self._inserts.values()), list(self._updates.values()), self._terms
        )
        self._inserts, self._updates, self._terms = {}, {}, {}


async def store_announcement(
    conn: AsyncConnection,
    announcement: Announcement,
    raw: dict[str, Any],
    org_name: str,
    now: datetime,
) -> None:
    """Store a verified partner announcement (the caller checked the version)."""
    await _write(conn, _announcement_values(announcement, raw, org_name), now)


def _announcement_values(
    announcement: Announcement, raw: dict[str, Any], org_name: str
) -> dict[str, Any]:
    links = {link.rel: link.href for link in announcement.links}
    return {
        "origin": announcement.origin,
        "session_id": announcement.id,
        "is_local": False,
        "version": announcement.version,
        "announcement": json.dumps(raw, ensure_ascii=False, separators=(",", ":")),
        "org_name": org_name,
        "title": announcement.title,
        "description": announcement.description,
        "format": announcement.format,
        "languages": list(announcement.languages),
        "start_at": announcement.start,
        "end_at": announcement.start + timedelta(minutes=announcement.duration_minutes),
        "timezone": announcement.timezone,
        "duration_minutes": announcement.duration_minutes,
        "host_name": announcement.host.display_name,
        "tags": list(announcement.tags),
        "status": announcement.status,
        "seats_open": announcement.seats.open,
        "seats_remaining": announcement.seats.remaining,
        "registration_mode": announcement.seats.registration_mode,
        "waitlist": announcement.seats.waitlist,
        "email_required": announcement.seats.email_required,
        "details_url": links.get("details"),
    }


async def store_local(
    conn: AsyncConnection, row: SessionRow, origin: str, org_name: str, now: datetime
) -> None:
    """Mirror an own session into the catalogue (withdrawn ones are tombstoned)."""
    if row.withdrawn_at is not None:
        await catalogue_repo.mark_deleted(conn, origin, row.id, now)
        return
    await _write(
        conn,
        {
            "origin": origin,
            "session_id": row.id,
            "is_local": True,
            "version": row.version,
            "announcement": None,
            "org_name": org_name,
            "title": row.title,
            "description": row.description,
            "format": row.format,
            "languages": list(row.languages),
            "start_at": row.start_at,
            "end_at": row.start_at + timedelta(minutes=row.duration_minutes),
            "timezone": row.timezone,
            "duration_minutes": row.duration_minutes,
            "host_name": row.host_name,
            "tags": list(row.tags),
            "status": row.status,
            "seats_open": row.open_seats,
            "seats_remaining": max(row.open_seats - row.seats_taken, 0),
            "registration_mode": row.registration_mode,
            "waitlist": row.waitlist,
            "email_required": row.email_required,
            "details_url": row.details_url,
        },
        now,
    )
