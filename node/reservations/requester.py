"""The requester's side: our employees' reservations at partner nodes.

A portal asks for a seat; this node stores the reservation as
``requested`` and, in the same transaction, queues the signed ``PUT`` to
the host in the outbox.  From then on the row only ever shows what the
host said: the answer to the ``PUT`` (recorded in the transaction that
marks the outbox message sent) and later ``reservation_updated`` notices,
each applied only if its ``version`` is newer.  A crash between sending and
recording resends the identical bytes; the host answers a repeat with the
current answer, so nothing is booked twice and nothing is lost.

Only ``ref``, ``display_name`` and, when the host requires it, ``email``
leave the node (SPEC.md §12).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from node.clock import Clock
from node.db import Database
from node.db import catalogue as catalogue_repo
from node.db import outbox as outbox_repo
from node.db import peers as peer_repo
from node.db.outbox import OutboxRow
from node.db.tables import reservations_out
from node.reservations.host import UNKNOWN, ReservationError
from node.reservations.portal_input import PortalRequest, read_portal_request
from node.settings import Settings
from protocol.canonical import canonical_bytes
from protocol.errors import ProtocolError
from protocol.models import ReservationAnswer, format_timestamp, parse

REQUEST_KINDS = {"reservation_request", "reservation_cancel", "reservation_confirm"}
FINAL = ("rejected", "cancelled")
UUID_IN_URL = re.compile(r"/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:/|$)")


@dataclass(frozen=True)
class OutgoingRow:
    id: str
    host: str
    session_id: str
    attendee_ref: str
    attendee_name: str
    attendee_email: str | None
    seats: int
    hold: bool
    state: str
    version: int
    position: int | None
    reason: str | None
    cancelled_by: str | None
    join_url: str | None
    hold_expires_at: datetime | None
    cancel_requested: bool
    delivery_error: str | None
    request_body: str
    idempotency_key: str | None
    idempotency_hash: str | None
    title: str
    org_name: str
    start_at: datetime
    end_at: datetime
    timezone: str
    ics_sequence: int
    created_at: datetime
    updated_at: datetime

    @property
    def entry_id(self) -> str:
        return f"{self.session_id}@{self.host}"

    def to_json(self) -> dict[str, Any]:
        """The portal's view: the host's decision, never more."""
        return {
            "id": self.id,
            "session": self.entry_id,
            "host": self.host,
            "title": self.title,
            "org_name": self.org_name,
            "start": format_timestamp(self.start_at),
            "end": format_timestamp(self.end_at),
            "attendee": {
                "ref": self.attendee_ref,
                "display_name": self.attendee_name,
                "email": self.attendee_email,
            },
            "seats": self.seats,
            "state": self.state,
            "position": self.position if self.state == "waitlisted" else None,
            "reason": self.reason if self.state == "rejected" else None,
            "cancelled_by": self.cancelled_by if self.state == "cancelled" else None,
            "join_url": self.join_url if self.state == "confirmed" else None,
            "hold_expires_at": (
                format_timestamp(self.hold_expires_at)
                if self.state == "held" and self.hold_expires_at
                else None
            ),
            "cancel_requested": self.cancel_requested and self.state not in FINAL,
            "delivery_error": self.delivery_error,
            "version": self.version,
            "created_at": format_timestamp(self.created_at),
            "updated_at": format_timestamp(self.updated_at),
        }


_COLUMNS = [f.name for f in fields(OutgoingRow)]


def _row(mapping: Any) -> OutgoingRow:
    return OutgoingRow(**{name: mapping[name] for name in _COLUMNS})


class Requests:
    """Our outgoing reservations (the portal API, outbox answers and inbox notices)."""

    def __init__(self, db: Database, node_id: str, clock: Clock, settings: Settings) -> None:
        self.db = db
        self.node_id = node_id
        self.clock = clock
        self.settings = settings
        #: Called after a commit that queued outbox messages.
        self.on_queued: Callable[[], None] | None = None

    def _queued(self) -> None:
        if self.on_queued is not None:
            self.on_queued()

    # --- reading ------------------------------------------------------------------------

    async def _load(self, conn: AsyncConnection, reservation_id: str) -> OutgoingRow | None:
        row = (
            await conn.execute(
                select(reservations_out).where(reservations_out.c.id == reservation_id)
            )
        ).first()
        return _row(row._mapping) if row else None

    async def get(self, reservation_id: str) -> OutgoingRow:
        async with self.db.read() as conn:
            row = await self._load(conn, reservation_id)
        if row is None:
            raise UNKNOWN
        return row

    async def find(
        self,
        *,
        ref: str | None = None,
        state: str | None = None,
        host: str | None = None,
        limit: int = 200,
        offset: int = 0,
    ) -> list[OutgoingRow]:
        query = select(reservations_out).order_by(
            reservations_out.c.start_at, reservations_out.c.id
        )
        if ref is not None:
            query = query.where(reservations_out.c.attendee_ref == ref)
        if state is not None:
            query = query.where(reservations_out.c.state == state)
        if host is not None:
            query = query.where(reservations_out.c.host == host)
        async with self.db.read() as conn:
            rows = await conn.execute(query.limit(limit).offset(offset))
            return [_row(row._mapping) for row in rows]

    # --- the portal asks ----------------------------------------------------------------

    async def create(
        self, entry_id: str, data: Any, idempotency_key: str | None = None
    ) -> tuple[OutgoingRow, bool]:
        """Queue a request to the host; return the reservation and whether it is new."""
        wanted = read_portal_request(data)
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
            raise ReservationError(
                "invalid_idempotency_key",
                "Idempotency-Key: 1–200 Zeichen / 1-200 characters",
                field="Idempotency-Key",
            )
        digest = hashlib.sha256(
            canonical_bytes({"session": entry_id, "body": wanted.model_dump(mode="json")})
        ).hexdigest()
        for attempt in range(2):
            try:
                async with self.db.write() as conn:
                    found = await self._create(conn, entry_id, wanted, idempotency_key, digest)
                break
            except IntegrityError:  # a concurrent retry with the same key won
                if attempt:
                    raise
        if found[1]:
            self._queued()
        return found

    async def _create(
        self,
        conn: AsyncConnection,
        entry_id: str,
        wanted: PortalRequest,
        idempotency_key: str | None,
        digest: str,
    ) -> tuple[OutgoingRow, bool]:
        if idempotency_key is not None:
            existing = (
                await conn.execute(
                    select(reservations_out).where(
                        reservations_out.c.idempotency_key == idempotency_key
                    )
                )
            ).first()
            if existing is not None:
                if existing.idempotency_hash != digest:
                    raise ReservationError(
                        "idempotency_conflict",
                        "Idempotency-Key wurde für eine andere Anfrage benutzt / "
                        "key already used for a different request",
                        status=409,
                        field="Idempotency-Key",
                    )
                return _row(existing._mapping), False
        session_id, _, origin = entry_id.rpartition("@")
        entry = (
            await catalogue_repo.get(conn, origin, session_id, self.settings.registration_template)
            if session_id
            else None
        )
        if entry is None:
            raise ReservationError(
                "unknown_session", "Session nicht im Katalog / session not found", status=404
            )
        if entry.is_local:
            raise ReservationError(
                "local_session",
                "Eigene Sessions werden über das interne Anmeldesystem gebucht; Partnerplätze "
                "sind für Partner / own sessions are booked internally, partner seats are "
                "for partners",
                status=409,
            )
        peer = await peer_repo.get(conn, origin)
        if peer is None or peer.state != "active":
            raise ReservationError(
                "host_unavailable",
                "Keine aktive Partnerschaft mit dem Gastgeber / no active peering with the host",
                status=409,
            )
        email = wanted.attendee.email
        if entry.email_required and not email:
            raise ReservationError(
                "email_required",
                "Der Gastgeber verlangt eine E-Mail-Adresse / the host requires an email",
                field="attendee.email",
            )
        if not entry.email_required:
            email = None  # never sent, never stored (SPEC.md §12)
        now = self.clock.now()
        reservation_id = str(uuid.uuid4())
        attendee: dict[str, Any] = {
            "ref": wanted.attendee.ref,
            "display_name": wanted.attendee.display_name,
        }
        if email:
            attendee["email"] = email
        body = {
            "type": "reservation_request",
            "id": reservation_id,
            "requester": self.node_id,
            "session": {"origin": origin, "id": session_id},
            "attendee": attendee,
            "seats": wanted.seats,
            "hold": wanted.hold,
            "issued_at": format_timestamp(now.replace(microsecond=0)),
        }
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        await conn.execute(
            reservations_out.insert().values(
                id=reservation_id,
                host=origin,
                session_id=session_id,
                attendee_ref=wanted.attendee.ref,
                attendee_name=wanted.attendee.display_name,
                attendee_email=email,
                seats=wanted.seats,
                hold=wanted.hold,
                state="requested",
                version=0,
                cancel_requested=False,
                request_body=text,
                idempotency_key=idempotency_key,
                idempotency_hash=digest if idempotency_key else None,
                title=entry.title,
                org_name=entry.org_name,
                start_at=entry.start_at,
                end_at=entry.end_at,
                timezone=entry.timezone,
                ics_sequence=0,
                created_at=now,
                updated_at=now,
            )
        )
        await outbox_repo.enqueue(
            conn,
            peer_node_id=origin,
            kind="reservation_request",
            method="PUT",
            url=f"{_endpoint(peer.descriptor)}/{reservation_id}",
            body=text,
            now=now,
        )
        row = await self._load(conn, reservation_id)
        assert row is not None
        return row, True

    async def cancel(self, reservation_id: str) -> OutgoingRow:
        """Ask the host to cancel; the row changes when the host has answered."""
        return await self._ask(reservation_id, "reservation_cancel")

    async def confirm(self, reservation_id: str) -> OutgoingRow:
        """Confirm a hold; the row changes when the host has answered."""
        return await self._ask(reservation_id, "reservation_confirm")

    async def _ask(self, reservation_id: str, kind: str) -> OutgoingRow:
        now = self.clock.now()
        async with self.db.write() as conn:
            row = await self._load(conn, reservation_id)
            if row is None:
                raise UNKNOWN
            if kind == "reservation_confirm" and row.state not in ("held", "requested"):
                raise ReservationError(
                    "not_held",
                    f"Reservierung ist {row.state}, nicht gehalten / reservation is not held",
                    status=409,
                )
            if kind == "reservation_cancel" and (row.state in FINAL or row.cancel_requested):
                return row
            queued = await self._queue(conn, row, kind, now)
        if queued:
            self._queued()
        return await self.get(reservation_id)

    async def _queue(
        self, conn: AsyncConnection, row: OutgoingRow, kind: str, now: datetime
    ) -> bool:
        peer = await peer_repo.get(conn, row.host)
        if peer is None:
            raise ReservationError(
                "host_unavailable",
                "Der Gastgeber ist kein Partner mehr / the host is no longer a partner",
                status=409,
            )
        base = f"{_endpoint(peer.descriptor)}/{row.id}"
        method, url = (
            ("DELETE", base) if kind == "reservation_cancel" else ("POST", base + "/confirm")
        )
        await outbox_repo.enqueue(
            conn, peer_node_id=row.host, kind=kind, method=method, url=url, body="", now=now
        )
        if kind == "reservation_cancel":
            await conn.execute(
                update(reservations_out)
                .where(reservations_out.c.id == row.id)
                .values(cancel_requested=True, updated_at=now)
            )
        return True

    # --- the host answers ---------------------------------------------------------------

    async def record_answer(self, conn: AsyncConnection, message: OutboxRow, body: bytes) -> None:
        """Outbox hook: the host's answer to our PUT, DELETE or confirm."""
        answer = parse(ReservationAnswer, body)
        row = await self._load(conn, answer.id)
        if row is None:
            return  # erased meanwhile (privacy delete); nothing to record
        if answer.id not in message.url or answer.session.origin != row.host:
            raise ProtocolError("Antwort passt nicht zur Anfrage / answer does not match")
        await self._apply(conn, row, answer.to_json_dict())

    async def record_failure(self, conn: AsyncConnection, message: OutboxRow, error: str) -> None:
        """Outbox hook: a request became a dead letter; the portal sees why."""
        found = UUID_IN_URL.search(message.url)
        if found is None:
            return
        await conn.execute(
            update(reservations_out)
            .where(reservations_out.c.id == found.group(1))
            .values(delivery_error=error[:1000], updated_at=self.clock.now())
        )

    async def _apply(self, conn: AsyncConnection, row: OutgoingRow, answer: dict[str, Any]) -> str:
        """Apply an answer if newer: ``applied``, ``same`` or ``stale``."""
        version = int(answer["version"])
        if version < row.version:
            return "stale"
        if version == row.version:
            return "same"
        state = answer["state"]
        values: dict[str, Any] = {
            "state": state,
            "version": version,
            "position": answer.get("position"),
            "reason": answer.get("reason"),
            "cancelled_by": answer.get("cancelled_by"),
            "join_url": answer.get("join_url") if state == "confirmed" else row.join_url,
            "hold_expires_at": (parse_time(answer["hold_expires_at"]) if state == "held" else None),
            "delivery_error": None,
            "updated_at": self.clock.now(),
        }
        if state != row.state:
            values["ics_sequence"] = row.ics_sequence + 1
        await conn.execute(
            update(reservations_out)
            .where(reservations_out.c.id == row.id, reservations_out.c.version < version)
            .values(**values)
        )
        return "applied"

    async def notice_updated(self, sender: str, answer: dict[str, Any]) -> None:
        """Inbox: ``reservation_updated`` (SPEC.md §8)."""
        async with self.db.write() as conn:
            row = await self._load(conn, answer["id"])
            if row is None or row.host != sender or row.session_id != answer["session"]["id"]:
                raise ReservationError(
                    "unknown_reservation",
                    "Keine solche Reservierung dieses Knotens / no such reservation made here",
                    status=404,
                )
            if await self._apply(conn, row, answer) == "stale":
                raise ReservationError(
                    "stale_version",
                    f"Version {answer['version']} ist älter als {row.version} / older than stored",
                    status=409,
                    field="answer.version",
                )

    async def notice_session_cancelled(self, sender: str, session_id: str, ids: list[str]) -> int:
        """Inbox: ``session_cancelled``; unknown ids are ignored (SPEC.md §8)."""
        now = self.clock.now()
        changed = 0
        async with self.db.write() as conn:
            for start in range(0, len(ids), 500):
                rows = await conn.execute(
                    select(reservations_out).where(
                        reservations_out.c.id.in_(ids[start : start + 500]),
                        reservations_out.c.host == sender,
                        reservations_out.c.session_id == session_id,
                        reservations_out.c.state.not_in(FINAL),
                    )
                )
                for row in rows:
                    await conn.execute(
                        update(reservations_out)
                        .where(reservations_out.c.id == row.id)
                        .values(
                            state="cancelled",
                            cancelled_by="host",
                            position=None,
                            hold_expires_at=None,
                            ics_sequence=row.ics_sequence + 1,
                            updated_at=now,
                        )
                    )
                    changed += 1
        return changed

    # --- privacy ------------------------------------------------------------------------

    async def export(self, ref: str) -> list[dict[str, Any]]:
        return [row.to_json() for row in await self.find(ref=ref, limit=100_000)]

    async def erase(self, ref: str) -> int:
        """Cancel the person's active reservations at their hosts, then delete them."""
        now = self.clock.now()
        async with self.db.write() as conn:
            rows = [
                _row(r._mapping)
                for r in await conn.execute(
                    select(reservations_out).where(reservations_out.c.attendee_ref == ref)
                )
            ]
            for row in rows:
                if row.state not in FINAL and not row.cancel_requested:
                    with contextlib.suppress(ReservationError):  # host gone: none to tell
                        await self._queue(conn, row, "reservation_cancel", now)
            await conn.execute(
                delete(reservations_out).where(reservations_out.c.attendee_ref == ref)
            )
        if rows:
            self._queued()
        return len(rows)

    async def purge(self, ended_before: datetime) -> int:
        """Delete reservations of sessions that ended before *ended_before* (scheduled)."""
        async with self.db.write() as conn:
            result = await conn.execute(
                delete(reservations_out).where(reservations_out.c.end_at < ended_before)
            )
            return int(result.rowcount)


def _endpoint(descriptor: str) -> str:
    return str(json.loads(descriptor)["endpoints"]["reservations"]).rstrip("/")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
