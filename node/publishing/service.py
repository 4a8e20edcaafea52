"""Local sessions: create, change, open, close, cancel, withdraw, import.

Each operation is one write transaction that changes the session row and,
when partners can notice, signs a new announcement version and marks the
feed row dirty.  After commit the feed stamper numbers the change (see
:mod:`node.db.feed`) and partners are told through the outbox.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from node.catalogue.merge import store_local
from node.clock import Clock
from node.db import Database
from node.db import feed as feed_repo
from node.db import peers as peer_repo
from node.db import sessions as session_repo
from node.db.sessions import SessionRow
from node.identity import NodeIdentity
from node.publishing.input import OpeningInput, SessionInput
from node.publishing.notify import FeedNotifier
from protocol.models import Announcement, AnnouncementBody, Host, Link, Seats, seal


class SessionError(Exception):
    """A request about a session cannot be carried out; ``code`` says why."""

    def __init__(self, code: str, message: str, *, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.field = field


class SeatHooks(Protocol):
    """What the host's reservation desk does inside a session change's transaction."""

    async def quota_changed(
        self, conn: AsyncConnection, session_id: str, now: datetime
    ) -> None: ...

    async def session_cancelled(
        self, conn: AsyncConnection, session_id: str, now: datetime
    ) -> None: ...

    async def session_closed(
        self, conn: AsyncConnection, session_id: str, now: datetime
    ) -> None: ...


def new_session_id(now: datetime) -> str:
    return f"{now:%Y}-{secrets.token_hex(4)}"


def announcement_for(identity: NodeIdentity, row: SessionRow, version: int, now: datetime) -> str:
    links = [Link(rel="details", href=row.details_url)] if row.details_url else []
    body = AnnouncementBody(
        type="session_announcement",
        origin=identity.node_id,
        id=row.id,
        version=version,
        issued_at=now.replace(microsecond=0),
        title=row.title,
        description=row.description,
        format=row.format,  # type: ignore[arg-type]
        languages=list(row.languages),
        start=row.start_at.astimezone(ZoneInfo(row.timezone)),
        timezone=row.timezone,
        duration_minutes=row.duration_minutes,
        host=Host(display_name=row.host_name),
        tags=list(row.tags),
        seats=Seats(
            open=row.open_seats,
            remaining=max(row.open_seats - row.seats_taken, 0),
            registration_mode=row.registration_mode,  # type: ignore[arg-type]
            waitlist=row.waitlist,
            email_required=row.email_required,
        ),
        status=row.status,  # type: ignore[arg-type]
        links=links,
    )
    signed = seal(body, Announcement, identity.node_id, [identity.signing_key])
    return json.dumps(signed.to_json_dict(), ensure_ascii=False, separators=(",", ":"))


def _fields(data: SessionInput) -> dict[str, Any]:
    return {
        "title": data.title,
        "description": data.description,
        "format": data.format,
        "languages": list(data.languages),
        "start_at": data.start,
        "timezone": data.timezone,
        "duration_minutes": data.duration_minutes,
        "host_name": data.host_name,
        "tags": list(data.tags),
        "join_url": data.join_url,
        "details_url": data.details_url,
    }


class SessionService:
    def __init__(
        self, db: Database, identity: NodeIdentity, clock: Clock, notifier: FeedNotifier
    ) -> None:
        self.db = db
        self.identity = identity
        self.clock = clock
        self.notifier = notifier
        #: Set by the node: reservations react to quota changes and cancellations.
        self.seat_hooks: SeatHooks | None = None
        self._seats_lock = asyncio.Lock()

    async def get(self, session_id: str) -> SessionRow:
        async with self.db.read() as conn:
            row = await session_repo.get(conn, session_id)
        if row is None or row.withdrawn_at is not None:
            raise SessionError(
                "not_found", "Session nicht gefunden / session not found", status=404
            )
        return row

    async def _load_for_change(self, conn: AsyncConnection, session_id: str) -> SessionRow:
        """The session, locked until commit: replicas change and sign it one at a time,
        so no two sign the same version."""
        row = await session_repo.get(conn, session_id, lock=True)
        if row is None or row.withdrawn_at is not None:
            raise SessionError(
                "not_found", "Session nicht gefunden / session not found", status=404
            )
        return row

    async def mirror_missing(self) -> int:
        """Mirror own sessions the catalogue lacks; the node runs this at start.

        A database from the first release (schema 0001) has sessions but no
        catalogue: revision 0002 creates it empty and cannot fill it, since
        the node's id and name are settings, not data.
        """
        async with self.db.read() as conn:
            missing = await session_repo.without_catalogue_entry(conn, self.identity.node_id)
        if missing:
            now = self.clock.now()
            async with self.db.write() as conn:
                for session_id in missing:
                    await self._mirror(conn, session_id, now)
        return len(missing)

    async def _mirror(self, conn: AsyncConnection, session_id: str, now: datetime) -> None:
        """Write the session into the catalogue, in the same transaction.

        The session row is locked first, so replicas starting together do
        not both insert the same catalogue row (the second one updates it).
        """
        row = await session_repo.get(conn, session_id, lock=True)
        if row is not None:
            await store_local(
                conn, row, self.identity.node_id, self.identity.settings.display_name, now
            )

    async def _republish(
        self, conn: AsyncConnection, session_id: str, now: datetime, row: SessionRow | None = None
    ) -> None:
        """Sign a new version if partners may see the session; mark the feed.

        *row* is the session as the caller read it, locked, in this transaction.
        """
        if row is None:
            row = await self._load_for_change(conn, session_id)  # read once: mirror and sign
        await store_local(
            conn, row, self.identity.node_id, self.identity.settings.display_name, now
        )
        if row.open_seats > 0:
            version = row.version + 1
            await session_repo.set_announcement(
                conn,
                row.id,
                version,
                announcement_for(self.identity, row, version, now),
                seats_published=row.seats_taken,
            )
        if row.open_seats > 0 or row.announcement is not None:
            await feed_repo.mark_changed(conn, row.id, now)

    async def publish_seats(self) -> int:
        """Re-sign announcements whose remaining seats changed (batched, after commits).

        The burst task and the scheduled job may overlap, in one process (the
        asyncio lock) or on several replicas: each session row is locked in
        id order and looked at again, so a session another replica has just
        signed is not signed twice.
        """
        async with self._seats_lock:
            now = self.clock.now()
            async with self.db.write() as conn:
                stale = await session_repo.seats_unpublished(conn, now)
                for session_id in stale:
                    row = await session_repo.get(conn, session_id, lock=True)
                    if row is None or row.withdrawn_at is not None:
                        continue
                    if row.seats_published != row.seats_taken:
                        await self._republish(conn, session_id, now, row)
        if stale:
            await self._finish()
        return len(stale)

    async def _finish(self) -> None:
        await self.notifier.changed()

    async def create(
        self,
        data: SessionInput,
        *,
        import_source: str | None = None,
        import_key: str | None = None,
        status: str = "scheduled",
    ) -> SessionRow:
        now = self.clock.now()
        session_id = new_session_id(now)
        async with self.db.write() as conn:
            await session_repo.insert(
                conn,
                {
                    "id": session_id,
                    **_fields(data),
                    "status": status,
                    "import_source": import_source,
                    "import_key": import_key,
                    "open_seats": 0,
                    "audience_all": True,
                    "registration_mode": "auto",
                    "waitlist": True,
                    "email_required": False,
                    "seats_taken": 0,
                    "version": 0,
                    "created_at": now,
                    "updated_at": now,
                    "ended_published": False,
                },
            )
            await self._mirror(conn, session_id, now)
        return await self.get(session_id)

    async def update(self, session_id: str, data: SessionInput) -> SessionRow:
        now = self.clock.now()
        async with self.db.write() as conn:
            row = await self._load_for_change(conn, session_id)
            fields = _fields(data)
            if row.open_seats > 0 and not fields["join_url"]:
                raise _join_url_required()
            status = row.status
            if row.status == "scheduled" and fields["start_at"] != row.start_at:
                status = "rescheduled"
            await session_repo.update_fields(
                conn, session_id, {**fields, "status": status, "updated_at": now}
            )
            await self._republish(conn, session_id, now)
        await self._finish()
        return await self.get(session_id)

    async def open(self, session_id: str, opening: OpeningInput) -> SessionRow:
        now = self.clock.now()
        async with self.db.write() as conn:
            row = await self._load_for_change(conn, session_id)
            if row.status == "cancelled":
                raise SessionError(
                    "session_cancelled",
                    "Abgesagte Sessions können nicht geöffnet werden / "
                    "a cancelled session cannot be opened",
                    status=409,
                )
            if not row.join_url:
                raise _join_url_required()
            if not await session_repo.set_quota(conn, session_id, opening.seats):
                raise SessionError(
                    "quota_below_taken",
                    "Mehr Plätze vergeben als das neue Kontingent / "
                    "more seats are taken than the new quota",
                    status=409,
                    field="seats",
                )
            peer_ids = await self._audience_ids(conn, opening.audience)
            await session_repo.update_fields(
                conn,
                session_id,
                {
                    "audience_all": opening.audience == "all",
                    "registration_mode": opening.registration_mode,
                    "waitlist": opening.waitlist,
                    "email_required": opening.email_required,
                    "updated_at": now,
                },
            )
            await session_repo.set_audience(conn, session_id, peer_ids)
            if self.seat_hooks is not None:
                await self.seat_hooks.quota_changed(conn, session_id, now)
            await self._republish(conn, session_id, now)
        await self._finish()
        return await self.get(session_id)

    async def _audience_ids(
        self, conn: AsyncConnection, audience: str | Sequence[str]
    ) -> list[int]:
        if audience == "all":
            return []
        ids = []
        for node_id in audience:
            peer = await peer_repo.get(conn, node_id)
            if peer is None or peer.state in ("declined", "pending_in"):
                raise SessionError(
                    "unknown_peer",
                    f"Unbekannter Partner / unknown partner: {node_id}",
                    field="audience",
                )
            ids.append(peer.id)
        return ids

    async def close(self, session_id: str) -> SessionRow:
        now = self.clock.now()
        async with self.db.write() as conn:
            row = await self._load_for_change(conn, session_id)
            if row.open_seats > 0:
                await session_repo.update_fields(
                    conn, session_id, {"open_seats": 0, "updated_at": now}
                )
                await session_repo.set_audience(conn, session_id, [])
                if self.seat_hooks is not None:
                    await self.seat_hooks.session_closed(conn, session_id, now)
                await feed_repo.mark_changed(conn, session_id, now)
                await self._mirror(conn, session_id, now)
        await self._finish()
        return await self.get(session_id)

    async def cancel(self, session_id: str) -> SessionRow:
        now = self.clock.now()
        async with self.db.write() as conn:
            row = await self._load_for_change(conn, session_id)
            if row.status != "cancelled":
                await session_repo.update_fields(
                    conn, session_id, {"status": "cancelled", "updated_at": now}
                )
                if self.seat_hooks is not None:
                    await self.seat_hooks.session_cancelled(conn, session_id, now)
                await self._republish(conn, session_id, now)
        await self._finish()
        return await self.get(session_id)

    async def withdraw(self, session_id: str) -> None:
        """Remove a session entirely; partners see a deleted item."""
        now = self.clock.now()
        async with self.db.write() as conn:
            row = await self._load_for_change(conn, session_id)
            if self.seat_hooks is not None:
                await self.seat_hooks.session_cancelled(conn, session_id, now)
            await session_repo.update_fields(
                conn, session_id, {"withdrawn_at": now, "open_seats": 0, "updated_at": now}
            )
            if row.announcement is not None:
                await feed_repo.mark_changed(conn, session_id, now, deleted=True)
            await self._mirror(conn, session_id, now)
        await self._finish()

    async def list(
        self, *, q: str | None = None, limit: int = 200, offset: int = 0
    ) -> list[SessionRow]:
        async with self.db.read() as conn:
            return await session_repo.list_sessions(conn, q=q, limit=limit, offset=offset)

    async def publish_endings(self) -> int:
        """Turn sessions that have ended into deleted feed items (scheduled job)."""
        now = self.clock.now()
        async with self.db.write() as conn:
            ended = await session_repo.ended_unpublished(conn, now)
            for row in ended:
                await session_repo.update_fields(conn, row.id, {"ended_published": True})
                if row.announcement is not None:
                    await feed_repo.mark_changed(conn, row.id, now, deleted=True)
        if ended:
            await self._finish()
        return len(ended)


def _join_url_required() -> SessionError:
    return SessionError(
        "join_url_required",
        "Für Partnerplätze braucht die Session einen Teilnahme-Link (join_url) / "
        "a session open to partners needs a join link",
        status=409,
        field="join_url",
    )
