"""The host's desk: answering partners' reservation requests (SPEC.md §9).

Every operation is one write transaction: the ledger decides, and every
*later* change of a reservation (promotion, expiry, approval, cancellation
by the host) is queued in the outbox as a ``reservation_updated`` notice in
that same transaction, so a crash can never lose a notice nor send one for
a change that did not commit.  The reservation a request is *about* is
answered in the response instead of a notice; a retry of that request gets
the current answer again.

When seats change, the session's announcement is re-signed later in a batch
(:meth:`node.publishing.service.SessionService.publish_seats`), so the feed
shows the remaining seats within seconds without signing once per seat.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from node.clock import Clock
from node.db import Database
from node.db import outbox as outbox_repo
from node.db import peers as peer_repo
from node.db.tables import partner_caps, reservations_in, sessions
from node.identity import NodeIdentity
from node.observability.metrics import Metrics
from node.reservations.ledger import ACTIVE, Decision, LedgerConflict, LedgerError, SeatLedger
from node.settings import Settings
from protocol.models import ReservationRequest, format_timestamp

NOTICE_KINDS = {"reservation_updated", "session_cancelled"}
log = logging.getLogger(__name__)
MAX_IDS_PER_NOTICE = 10_000


class ReservationError(Exception):
    """A reservation request cannot be carried out; ``code`` says why."""

    def __init__(self, code: str, message: str, *, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.code, self.message, self.status, self.field = code, message, status, field


UNKNOWN = ReservationError(
    "unknown_reservation", "Keine solche Reservierung / no such reservation", status=404
)


@dataclass(frozen=True)
class IncomingRow:
    """A reservation at this host, as the admin sees it."""

    id: str
    requester: str
    session_id: str
    attendee_ref: str
    attendee_name: str
    attendee_email: str | None
    seats: int
    state: str
    reason: str | None
    cancelled_by: str | None
    version: int
    position: int | None
    hold_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "partner": self.requester,
            "session_id": self.session_id,
            "attendee": {
                "ref": self.attendee_ref,
                "display_name": self.attendee_name,
                "email": self.attendee_email,
            },
            "seats": self.seats,
            "state": self.state,
            "reason": self.reason,
            "cancelled_by": self.cancelled_by,
            "version": self.version,
            "position": self.position,
            "hold_expires_at": _ts(self.hold_expires_at),
            "created_at": format_timestamp(self.created_at),
            "updated_at": format_timestamp(self.updated_at),
        }


def _ts(value: datetime | None) -> str | None:
    return format_timestamp(value) if value is not None else None


class HostDesk:
    def __init__(self, db: Database, identity: NodeIdentity, clock: Clock, settings: Settings):
        self.db = db
        self.identity = identity
        self.clock = clock
        self.settings = settings
        self.ledger = SeatLedger(
            registration_cutoff=timedelta(minutes=settings.registration_cutoff_minutes),
            hold=timedelta(minutes=settings.hold_minutes),
            max_seats=settings.max_seats_per_request,
        )
        #: Called after a commit that queued notices or changed seats.
        #: The argument says whether notices were queued (the outbox has work).
        self.on_changed: Callable[[bool], None] | None = None
        self.metrics: Metrics | None = None

    def _changed(self, *, queued: bool = True) -> None:
        if self.on_changed is not None:
            self.on_changed(queued)

    # --- answers -------------------------------------------------------------------

    async def answer(
        self, conn: AsyncConnection, decision: Decision, now: datetime
    ) -> dict[str, Any]:
        """The wire ``ReservationAnswer`` for a decision (SPEC.md §9.2)."""
        body: dict[str, Any] = {
            "type": "reservation_answer",
            "id": decision.id,
            "session": {"origin": self.identity.node_id, "id": decision.session_id},
            "version": decision.version,
            "issued_at": format_timestamp(now.replace(microsecond=0)),
            "state": decision.state,
        }
        if decision.state == "confirmed":
            body["seats"] = decision.seats
            body["join_url"] = await self._join_url(conn, decision.session_id)
        elif decision.state == "held":
            body["seats"] = decision.seats
            assert decision.hold_expires_at is not None
            body["hold_expires_at"] = format_timestamp(decision.hold_expires_at)
        elif decision.state == "waitlisted":
            body["position"] = decision.position
        elif decision.state == "rejected":
            body["reason"] = decision.reason
        elif decision.state == "cancelled":
            body["cancelled_by"] = decision.cancelled_by
        return body

    async def _join_url(self, conn: AsyncConnection, session_id: str) -> str:
        row = (
            await conn.execute(
                select(sessions.c.join_url, sessions.c.details_url).where(
                    sessions.c.id == session_id
                )
            )
        ).one()
        # Opening a session to partners requires a join link; the fallbacks
        # only cover a link removed afterwards.
        return str(
            row.join_url
            or row.details_url
            or self.settings.registration_template.format(
                id=f"{session_id}@{self.identity.node_id}"
            )
        )

    async def _notify(
        self, conn: AsyncConnection, ids: Iterable[str], now: datetime, *, skip: str | None = None
    ) -> None:
        """Queue a ``reservation_updated`` notice for each changed reservation."""
        for reservation_id in dict.fromkeys(ids):
            if reservation_id == skip:
                continue
            decision = await self.ledger.decision(conn, reservation_id)
            assert decision is not None
            inbox = await self._inbox(conn, decision.requester)
            if inbox is None:
                continue
            notice = {
                "type": "reservation_updated",
                "sender": self.identity.node_id,
                "issued_at": format_timestamp(now.replace(microsecond=0)),
                "answer": await self.answer(conn, decision, now),
            }
            await outbox_repo.enqueue(
                conn,
                peer_node_id=decision.requester,
                kind="reservation_updated",
                method="POST",
                url=inbox,
                body=json.dumps(notice, separators=(",", ":")),
                now=now,
            )

    async def _inbox(self, conn: AsyncConnection, node_id: str) -> str | None:
        peer = await peer_repo.get(conn, node_id)
        if peer is None or peer.state not in ("active", "suspended"):
            return None
        return str(json.loads(peer.descriptor)["endpoints"]["inbox"])

    # --- the protocol: PUT, GET, DELETE, confirm -------------------------------------------

    async def reserve(
        self, request: ReservationRequest, requester: str
    ) -> tuple[dict[str, Any], bool]:
        """Decide a request; return the answer and whether the reservation is new."""
        if request.requester != requester:
            raise ReservationError(
                "origin_mismatch",
                "requester ist nicht der Absender / requester is not the signer",
                status=401,
                field="requester",
            )
        if request.session.origin != self.identity.node_id:
            raise ReservationError(
                "schema_violation",
                "Sitzung gehört nicht diesem Knoten / session.origin is not this node",
                field="session.origin",
            )
        now = self.clock.now()
        async with self.db.write() as conn:
            try:
                decision, created = await self.ledger.reserve(conn, request, requester, now)
            except LedgerConflict:
                raise ReservationError(
                    "reservation_conflict",
                    "Andere Anfrage unter derselben ID / a different request under this id",
                    status=409,
                ) from None
            answer = await self.answer(conn, decision, now)
        if created:
            # The reservation's uuid and the partner, never the attendee (SPEC.md §12).
            log.info(
                "reservation %s from %s: %s%s",
                decision.id,
                requester,
                decision.state,
                f" ({decision.reason})" if decision.reason else "",
            )
            if self.metrics is not None:
                self.metrics.reservation(decision.state, decision.reason)
            self._changed(queued=False)  # seats changed; no notice for the answer itself
        return answer, created

    async def _own(self, conn: AsyncConnection, reservation_id: str, requester: str) -> Decision:
        decision = await self.ledger.decision(conn, reservation_id)
        if decision is None or decision.requester != requester:
            raise UNKNOWN
        return decision

    async def current(self, reservation_id: str, requester: str) -> dict[str, Any]:
        now = self.clock.now()
        async with self.db.read() as conn:
            return await self.answer(conn, await self._own(conn, reservation_id, requester), now)

    async def cancel(self, reservation_id: str, requester: str) -> dict[str, Any]:
        """``DELETE``: the requester cancels (idempotent)."""
        now = self.clock.now()
        async with self.db.write() as conn:
            await self._own(conn, reservation_id, requester)
            changed = await self.ledger.cancel(conn, reservation_id, "requester", now)
            await self._notify(conn, changed, now, skip=reservation_id)
            answer = await self.answer(conn, await self._own(conn, reservation_id, requester), now)
        if changed:
            self._changed()
        return answer

    async def confirm(self, reservation_id: str, requester: str) -> dict[str, Any]:
        """``POST …/confirm``: turn a valid hold into a seat (SPEC.md §9.4)."""
        now = self.clock.now()
        async with self.db.write() as conn:
            decision = await self._own(conn, reservation_id, requester)
            changed: list[str] = []
            if decision.state in ("held", "confirmed"):
                changed = await self.ledger.confirm_hold(conn, reservation_id, now)
                await self._notify(conn, changed, now, skip=reservation_id)
            answer = await self.answer(conn, await self._own(conn, reservation_id, requester), now)
        if changed:
            self._changed()
        return answer

    # --- the host admin -----------------------------------------------------------------

    async def decide(self, reservation_id: str, *, approve: bool) -> IncomingRow:
        """Approve or decline a pending reservation."""
        return await self._admin_change(
            lambda conn, now: self.ledger.decide_pending(
                conn, reservation_id, approve=approve, now=now
            ),
            reservation_id,
        )

    async def cancel_by_host(self, reservation_id: str) -> IncomingRow:
        return await self._admin_change(
            lambda conn, now: self.ledger.cancel(conn, reservation_id, "host", now),
            reservation_id,
        )

    async def _admin_change(self, change: Any, reservation_id: str) -> IncomingRow:
        now = self.clock.now()
        async with self.db.write() as conn:
            try:
                changed = await change(conn, now)
            except LedgerError as exc:
                raise ReservationError(exc.code, exc.message, status=exc.status) from None
            await self._notify(conn, changed, now)
        self._changed()
        found = await self.get(reservation_id)
        assert found is not None
        return found

    async def set_cap(self, session_id: str, node_id: str, cap: int | None) -> None:
        """Set (or with ``None`` remove) a partner's cap within the session's quota."""
        now = self.clock.now()
        async with self.db.write() as conn:
            if cap is None:
                await self.ledger.lock_session(conn, session_id)
                await conn.execute(
                    delete(partner_caps).where(
                        partner_caps.c.session_id == session_id,
                        partner_caps.c.requester == node_id,
                    )
                )
            else:
                try:
                    await self.ledger.set_cap(conn, session_id, node_id, cap)
                except LedgerError as exc:
                    raise ReservationError(exc.code, exc.message, status=exc.status) from None
            # A higher cap, or none, may let the first in line have free seats.
            promoted = await self.ledger.promote(conn, session_id, now)
            await self._notify(conn, promoted, now)
        if promoted:
            self._changed()

    async def caps(self, session_id: str) -> dict[str, dict[str, int]]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(partner_caps).where(partner_caps.c.session_id == session_id)
            )
            return {row.requester: {"cap": row.cap, "taken": row.taken} for row in rows}

    async def expire_holds(self) -> int:
        """Scheduled: holds past their time free their seats (``hold_expired``)."""
        now = self.clock.now()
        async with self.db.write() as conn:
            changed = await self.ledger.expire_holds(conn, now)
            await self._notify(conn, changed, now)
        if changed:
            self._changed()
        return len(changed)

    # --- hooks for the session service (inside its transaction) ------------------------

    async def quota_changed(self, conn: AsyncConnection, session_id: str, now: datetime) -> None:
        """More partner seats may free the waitlist."""
        await self._notify(conn, await self.ledger.promote(conn, session_id, now), now)

    async def session_closed(self, conn: AsyncConnection, session_id: str, now: datetime) -> None:
        """Closed to partners: seats taken stay, nobody is left waiting for a seat."""
        waiting = await conn.execute(
            select(reservations_in.c.id).where(
                reservations_in.c.session_id == session_id,
                reservations_in.c.state.in_(("waitlisted", "pending")),
            )
        )
        changed: list[str] = []
        for row in list(waiting):
            changed += await self.ledger.cancel(conn, row.id, "host", now)
        await self._notify(conn, changed, now)

    async def session_cancelled(
        self, conn: AsyncConnection, session_id: str, now: datetime
    ) -> None:
        """End every active reservation; one ``session_cancelled`` per requester (§8)."""
        ids = await self.ledger.cancel_session(conn, session_id, now)
        by_requester: dict[str, list[str]] = {}
        for reservation_id in ids:
            decision = await self.ledger.decision(conn, reservation_id)
            assert decision is not None
            by_requester.setdefault(decision.requester, []).append(reservation_id)
        for requester, own in sorted(by_requester.items()):
            inbox = await self._inbox(conn, requester)
            if inbox is None:
                continue
            for start in range(0, len(own), MAX_IDS_PER_NOTICE):
                notice = {
                    "type": "session_cancelled",
                    "sender": self.identity.node_id,
                    "issued_at": format_timestamp(now.replace(microsecond=0)),
                    "session": {"origin": self.identity.node_id, "id": session_id},
                    "reservations": own[start : start + MAX_IDS_PER_NOTICE],
                }
                await outbox_repo.enqueue(
                    conn,
                    peer_node_id=requester,
                    kind="session_cancelled",
                    method="POST",
                    url=inbox,
                    body=json.dumps(notice, separators=(",", ":")),
                    now=now,
                )

    # --- reading, for the admin ---------------------------------------------------------

    async def get(self, reservation_id: str) -> IncomingRow | None:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(reservations_in).where(reservations_in.c.id == reservation_id)
                )
            ).first()
            return await self._incoming(conn, row) if row else None

    async def _incoming(self, conn: AsyncConnection, row: Any) -> IncomingRow:
        decision = await self.ledger.decision(conn, row.id)
        assert decision is not None
        return replace(await self._plain(row), position=decision.position)

    async def for_session(self, session_id: str) -> list[IncomingRow]:
        """Every reservation of a session in arrival order (the waitlist's order)."""
        async with self.db.read() as conn:
            rows = list(
                await conn.execute(
                    select(reservations_in)
                    .where(reservations_in.c.session_id == session_id)
                    .order_by(reservations_in.c.seq)
                )
            )
            waiting = [r.id for r in rows if r.state == "waitlisted"]
            found = []
            for row in rows:
                item = await self._plain(row)
                if row.state == "waitlisted":
                    item = _with_position(item, waiting.index(row.id) + 1)
                found.append(item)
            return found

    async def _plain(self, row: Any) -> IncomingRow:
        return IncomingRow(
            row.id,
            row.requester,
            row.session_id,
            row.attendee_ref,
            row.attendee_name,
            row.attendee_email,
            row.seats,
            row.state,
            row.reason,
            row.cancelled_by,
            row.version,
            None,
            row.hold_expires_at,
            row.created_at,
            row.updated_at,
        )

    async def pending(self) -> list[IncomingRow]:
        """Reservations awaiting the admin's approval, oldest first."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(reservations_in)
                .where(reservations_in.c.state == "pending")
                .order_by(reservations_in.c.seq)
            )
            return [await self._plain(row) for row in rows]

    # --- privacy ------------------------------------------------------------------------

    async def export(self, ref: str) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(reservations_in)
                .where(reservations_in.c.attendee_ref == ref)
                .order_by(reservations_in.c.seq)
            )
            return [(await self._plain(row)).to_json() for row in rows]

    async def erase(self, ref: str) -> int:
        """Cancel the person's active reservations (telling the partners), then delete them."""
        now = self.clock.now()
        async with self.db.write() as conn:
            rows = list(
                await conn.execute(
                    select(reservations_in.c.id, reservations_in.c.state).where(
                        reservations_in.c.attendee_ref == ref
                    )
                )
            )
            for row in rows:
                if row.state in ACTIVE:
                    changed = await self.ledger.cancel(conn, row.id, "host", now)
                    await self._notify(conn, changed, now)
            await conn.execute(delete(reservations_in).where(reservations_in.c.attendee_ref == ref))
        if rows:
            self._changed()
        return len(rows)

    async def purge(self, ended_before: datetime) -> int:
        """Delete reservations of sessions that ended before *ended_before* (scheduled)."""
        async with self.db.write() as conn:
            candidates = await conn.execute(
                select(sessions.c.id, sessions.c.start_at, sessions.c.duration_minutes).where(
                    sessions.c.start_at < ended_before
                )
            )
            ended = [
                row.id
                for row in candidates
                if row.start_at + timedelta(minutes=row.duration_minutes) < ended_before
            ]
            purged = 0
            for start in range(0, len(ended), 500):
                result = await conn.execute(
                    delete(reservations_in).where(
                        reservations_in.c.session_id.in_(ended[start : start + 500])
                    )
                )
                purged += result.rowcount
            return purged


def _with_position(row: IncomingRow, position: int) -> IncomingRow:
    return replace(row, position=position)
