"""The host-side seat ledger (see the package docstring for the state graph)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from node.db.tables import partner_caps, reservations_in, session_audience, sessions
from node.db.tables import peers as peers_table
from protocol.canonical import canonical_bytes
from protocol.models import ReservationRequest

ACTIVE = ("confirmed", "held", "waitlisted", "pending")
SEATED = ("confirmed", "held")
HOLD_MINUTES = 5
MAX_SEATS_PER_REQUEST = 2


class LedgerConflict(Exception):
    """The same reservation id with a different request (409)."""


class LedgerError(Exception):
    """An operation that is not possible in the reservation's state."""

    def __init__(self, code: str, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass(frozen=True)
class Decision:
    """A reservation's state after an operation, for the answer and notices."""

    id: str
    requester: str
    session_id: str
    state: str
    version: int
    seats: int
    reason: str | None = None
    position: int | None = None
    hold_expires_at: datetime | None = None
    cancelled_by: str | None = None


@dataclass(frozen=True)
class _Cap:
    cap: int
    taken: int


def first_in_line(waiting: Iterable[Any], caps: dict[str, list[int]]) -> Iterator[Any]:
    """The waiting rows, in order, that are not held back by their partner's cap.

    A row whose partner has no room left under its cap is skipped, and so
    is every later row of that partner (a partner's requests keep their
    order).  *caps* maps requester to ``[cap, taken]``; the caller may raise
    ``taken`` between items.
    """
    held_back: set[str] = set()
    for row in waiting:
        if row.requester in held_back:
            continue
        cap = caps.get(row.requester)
        if cap is not None and cap[1] + row.seats > cap[0]:
            held_back.add(row.requester)
            continue
        yield row


def request_hash(request: ReservationRequest) -> str:
    """What makes two PUTs "the same request" (``issued_at`` may differ on retry)."""
    body = request.to_json_dict()
    body.pop("issued_at", None)
    return hashlib.sha256(canonical_bytes(body)).hexdigest()


class SeatLedger:
    def __init__(
        self,
        *,
        registration_cutoff: timedelta = timedelta(0),
        hold: timedelta = timedelta(minutes=HOLD_MINUTES),
        max_seats: int = MAX_SEATS_PER_REQUEST,
    ) -> None:
        self.cutoff = registration_cutoff
        self.hold = hold
        self.max_seats = max_seats

    # --- reading ---------------------------------------------------------------

    async def decision(self, conn: AsyncConnection, reservation_id: str) -> Decision | None:
        row = (
            await conn.execute(
                select(reservations_in).where(reservations_in.c.id == reservation_id)
            )
        ).first()
        return await self._decision(conn, row) if row else None

    async def _decision(self, conn: AsyncConnection, row: Any) -> Decision:
        position = None
        if row.state == "waitlisted":
            position = (
                await conn.execute(
                    select(func.count())
                    .select_from(reservations_in)
                    .where(
                        reservations_in.c.session_id == row.session_id,
                        reservations_in.c.state == "waitlisted",
                        reservations_in.c.seq <= row.seq,
                    )
                )
            ).scalar_one()
        return Decision(
            row.id,
            row.requester,
            row.session_id,
            row.state,
            row.version,
            row.seats,
            row.reason,
            position,
            row.hold_expires_at,
            row.cancelled_by,
        )

    # --- deciding a new request -----------------------------------------------------

    async def reserve(
        self, conn: AsyncConnection, request: ReservationRequest, requester: str, now: datetime
    ) -> tuple[Decision, bool]:
        """Decide a request; return the decision and whether it is new.

        The same uuid with the same request returns the stored decision; with
        a different request it raises :class:`LedgerConflict`.
        """
        digest = request_hash(request)
        existing = (
            await conn.execute(select(reservations_in).where(reservations_in.c.id == request.id))
        ).first()
        if existing is not None:
            if existing.request_hash != digest or existing.requester != requester:
                raise LedgerConflict(request.id)
            return await self._decision(conn, existing), False
        state, reason, expires = await self._decide(conn, request, requester, now)
        email_required = False  # the email is kept only if the host asks for one
        if request.attendee.email is not None:
            email_required = bool(
                (
                    await conn.execute(
                        select(sessions.c.email_required).where(sessions.c.id == request.session.id)
                    )
                ).scalar()
            )
        await conn.execute(
            reservations_in.insert().values(
                id=request.id,
                requester=requester,
                session_id=request.session.id,
                request_hash=digest,
                attendee_ref=request.attendee.ref,
                attendee_name=request.attendee.display_name,
                attendee_email=request.attendee.email if email_required else None,
                seats=request.seats,
                state=state,
                reason=reason,
                version=1,
                hold_expires_at=expires,
                created_at=now,
                updated_at=now,
            )
        )
        if state != "waitlisted":  # no position to count: the decision is the row written
            written = Decision(
                request.id,
                requester,
                request.session.id,
                state,
                1,
                request.seats,
                reason,
                hold_expires_at=expires,
            )
            return written, True
        found = await self.decision(conn, request.id)
        assert found is not None
        return found, True

    async def _decide(
        self, conn: AsyncConnection, request: ReservationRequest, requester: str, now: datetime
    ) -> tuple[str, str | None, datetime | None]:
        """The first rejection that applies, in the order of SPEC.md §9.3, else a seat."""
        # The session row is locked first by every change of its seats (PostgreSQL;
        # SQLite has one writer): one lock order, and decisions on one session
        # follow each other, so waitlist positions never repeat.
        session = (
            await conn.execute(
                select(sessions).where(sessions.c.id == request.session.id).with_for_update()
            )
        ).first()
        # A session partners never saw does not exist for them.
        if session is None or session.withdrawn_at is not None or session.announcement is None:
            return "rejected", "unknown_session", None
        if not session.audience_all and not await self._in_audience(conn, session.id, requester):
            return "rejected", "not_in_audience", None
        if session.status == "cancelled":
            return "rejected", "session_cancelled", None
        if now >= session.start_at + timedelta(minutes=session.duration_minutes):
            return "rejected", "session_ended", None
        if now >= session.start_at - self.cutoff:
            return "rejected", "registration_closed", None
        if session.open_seats <= 0:
            return "rejected", "closed_to_partners", None
        if session.email_required and not request.attendee.email:
            return "rejected", "email_required", None
        if request.seats > min(self.max_seats, session.open_seats):
            return "rejected", "too_many_seats", None
        duplicate = (
            await conn.execute(
                select(func.count())
                .select_from(reservations_in)
                .where(
                    reservations_in.c.session_id == session.id,
                    reservations_in.c.requester == requester,
                    reservations_in.c.attendee_ref == request.attendee.ref,
                    reservations_in.c.state.in_(ACTIVE),
                )
            )
        ).scalar_one()
        if duplicate:
            return "rejected", "duplicate_attendee", None
        cap = await self._cap(conn, session.id, requester)
        if cap is not None and 0 < cap.cap < request.seats:  # can never fit: do not queue it
            return "rejected", "too_many_seats", None
        if session.registration_mode == "approval":
            return "pending", None, None
        return await self._seat_or_queue(
            conn, session, requester, request.seats, hold=request.hold, now=now, cap=cap
        )

    async def _in_audience(self, conn: AsyncConnection, session_id: str, requester: str) -> bool:
        found = (
            await conn.execute(
                select(func.count())
                .select_from(
                    session_audience.join(
                        peers_table, peers_table.c.id == session_audience.c.peer_id
                    )
                )
                .where(
                    session_audience.c.session_id == session_id, peers_table.c.node_id == requester
                )
            )
        ).scalar_one()
        return bool(found)

    async def _seat_or_queue(
        self,
        conn: AsyncConnection,
        session: Any,
        requester: str,
        seats: int,
        *,
        hold: bool,
        now: datetime,
        cap: Any,
        seq: int | None = None,
    ) -> tuple[str, str | None, datetime | None]:
        """Seat the request, unless somebody who came earlier is first in line."""
        if await self._someone_first(conn, session.id, requester, seq):
            taken: str | None = "full"
        else:
            taken = await self._take(conn, session.id, requester, seats, cap)
        if taken is None:
            return ("held", None, now + self.hold) if hold else ("confirmed", None, None)
        if session.waitlist:
            return "waitlisted", None, None
        return "rejected", taken, None

    async def _cap(self, conn: AsyncConnection, session_id: str, requester: str) -> Any:
        return (
            await conn.execute(
                select(partner_caps.c.cap, partner_caps.c.taken).where(
                    partner_caps.c.session_id == session_id,
                    partner_caps.c.requester == requester,
                )
            )
        ).first()

    async def _someone_first(
        self, conn: AsyncConnection, session_id: str, requester: str, seq: int | None
    ) -> bool:
        """Whether free seats would go to someone waiting before this request.

        That is anyone waiting who is not held back by their partner's cap,
        and anyone waiting of the same partner (its requests keep their
        order).  *seq* is the request's place in line when it has one (an
        approved request); a new request comes after everyone.
        """
        query = select(reservations_in.c.requester, reservations_in.c.seats).where(
            reservations_in.c.session_id == session_id, reservations_in.c.state == "waitlisted"
        )
        if seq is not None:
            query = query.where(reservations_in.c.seq < seq)
        waiting = list(await conn.execute(query.order_by(reservations_in.c.seq)))
        if not waiting:
            return False
        caps = await self._caps(conn, session_id)
        return requester in {row.requester for row in waiting} or any(
            True for _ in first_in_line(waiting, caps)
        )

    async def _caps(self, conn: AsyncConnection, session_id: str) -> dict[str, list[int]]:
        """The session's caps as ``{requester: [cap, taken]}``."""
        rows = await conn.execute(
            select(partner_caps.c.requester, partner_caps.c.cap, partner_caps.c.taken).where(
                partner_caps.c.session_id == session_id
            )
        )
        return {row.requester: [row.cap, row.taken] for row in rows}

    async def _take(
        self, conn: AsyncConnection, session_id: str, requester: str, seats: int, cap: Any
    ) -> str | None:
        """Take seats atomically; ``None`` on success, else why not.

        *cap* is the partner's cap row as read in this transaction (or
        ``None``).  The session row is updated before the cap row, the
        order every change of seats keeps.
        """
        if cap is not None and cap.taken + seats > cap.cap:
            return "partner_cap_reached"
        result = await conn.execute(
            update(sessions)
            .where(
                sessions.c.id == session_id, sessions.c.seats_taken + seats <= sessions.c.open_seats
            )
            .values(seats_taken=sessions.c.seats_taken + seats)
        )
        if result.rowcount != 1:
            return "full"
        if cap is not None:
            capped = await conn.execute(
                update(partner_caps)
                .where(
                    partner_caps.c.session_id == session_id,
                    partner_caps.c.requester == requester,
                    partner_caps.c.taken + seats <= partner_caps.c.cap,
                )
                .values(taken=partner_caps.c.taken + seats)
            )
            if capped.rowcount != 1:  # changed since it was read: give the seats back
                await conn.execute(
                    update(sessions)
                    .where(sessions.c.id == session_id)
                    .values(seats_taken=sessions.c.seats_taken - seats)
                )
                return "partner_cap_reached"
        return None

    async def _release(
        self, conn: AsyncConnection, session_id: str, requester: str, seats: int
    ) -> None:
        await conn.execute(
            update(sessions)
            .where(sessions.c.id == session_id)
            .values(seats_taken=sessions.c.seats_taken - seats)
        )
        await self._release_cap(conn, session_id, requester, seats)

    async def _release_cap(
        self, conn: AsyncConnection, session_id: str, requester: str, seats: int
    ) -> None:
        await conn.execute(
            update(partner_caps)
            .where(partner_caps.c.session_id == session_id, partner_caps.c.requester == requester)
            .values(taken=partner_caps.c.taken - seats)
        )

    # --- changing existing reservations ------------------------------------------------

    async def _move(self, conn: AsyncConnection, row: Any, now: datetime, **values: Any) -> None:
        await conn.execute(
            update(reservations_in)
            .where(reservations_in.c.id == row.id)
            .values(version=reservations_in.c.version + 1, updated_at=now, **values)
        )

    async def _row(self, conn: AsyncConnection, reservation_id: str) -> Any:
        """The row, locked until commit after its session's row (PostgreSQL).

        A state change then reads a state no concurrent transaction is
        changing (two cancels of one reservation never release its seats
        twice), and every transaction that changes seats locks the session
        row first, so none waits for another in a circle.  SQLite has one
        writer and needs neither.
        """
        if conn.dialect.name != "sqlite":
            session_id = (
                await conn.execute(
                    select(reservations_in.c.session_id).where(
                        reservations_in.c.id == reservation_id
                    )
                )
            ).scalar()
            if session_id is not None:
                await self.lock_session(conn, session_id)
        row = (
            await conn.execute(
                select(reservations_in)
                .where(reservations_in.c.id == reservation_id)
                .with_for_update()
            )
        ).first()
        if row is None:
            raise LedgerError(
                "unknown_reservation", "Keine solche Reservierung / no such reservation", status=404
            )
        return row

    async def lock_session(self, conn: AsyncConnection, session_id: str) -> None:
        """Lock the session row until commit (a no-op on SQLite's single writer)."""
        if conn.dialect.name != "sqlite":
            await conn.execute(
                select(sessions.c.id).where(sessions.c.id == session_id).with_for_update()
            )

    async def cancel(
        self, conn: AsyncConnection, reservation_id: str, by: str, now: datetime
    ) -> list[str]:
        """Cancel (idempotent); return the ids of every reservation that changed."""
        row = await self._row(conn, reservation_id)
        if row.state not in ACTIVE:
            return []
        if row.state in SEATED:
            await self._release(conn, row.session_id, row.requester, row.seats)
        await self._move(
            conn, row, now, state="cancelled", cancelled_by=by, reason=None, hold_expires_at=None
        )
        return [row.id, *await self.promote(conn, row.session_id, now)]

    async def promote(self, conn: AsyncConnection, session_id: str, now: datetime) -> list[str]:
        """Give free seats to the waitlist, first come, first served.

        The first in line whose partner is not at its cap gets seats when
        they fit; while they do not, everyone behind waits too.  A partner
        at its cap holds back only its own requests.  The caller has
        locked the session row.
        """
        waiting = list(
            await conn.execute(
                select(reservations_in)
                .where(
                    reservations_in.c.session_id == session_id,
                    reservations_in.c.state == "waitlisted",
                )
                .order_by(reservations_in.c.seq)
                .with_for_update()
            )
        )
        if not waiting:
            return []
        caps = await self._caps(conn, session_id)
        promoted = []
        for row in first_in_line(waiting, caps):
            cap = caps.get(row.requester)
            limit = _Cap(cap[0], cap[1]) if cap is not None else None
            if await self._take(conn, session_id, row.requester, row.seats, limit) is not None:
                break
            if cap is not None:
                cap[1] += row.seats
            await self._move(conn, row, now, state="confirmed")
            promoted.append(row.id)
        return promoted

    async def confirm_hold(
        self, conn: AsyncConnection, reservation_id: str, now: datetime
    ) -> list[str]:
        row = await self._row(conn, reservation_id)
        if row.state == "confirmed":
            return []
        if row.state != "held":
            raise LedgerError(
                "not_held", f"Reservierung ist {row.state} / reservation is {row.state}"
            )
        if row.hold_expires_at <= now:
            return await self.expire_holds(conn, now)
        await self._move(conn, row, now, state="confirmed", hold_expires_at=None)
        return [row.id]

    async def expire_holds(self, conn: AsyncConnection, now: datetime) -> list[str]:
        """Holds past their time free their seats, one session after another."""
        expired = (reservations_in.c.state == "held") & (reservations_in.c.hold_expires_at <= now)
        session_ids = sorted(
            (
                await conn.execute(select(reservations_in.c.session_id).where(expired).distinct())
            ).scalars()
        )
        changed: list[str] = []
        for session_id in session_ids:
            await self.lock_session(conn, session_id)
            rows = list(
                await conn.execute(
                    select(reservations_in)
                    .where(expired, reservations_in.c.session_id == session_id)
                    .order_by(reservations_in.c.seq)
                    .with_for_update()
                )
            )
            for row in rows:
                await self._release(conn, row.session_id, row.requester, row.seats)
                await self._move(
                    conn, row, now, state="rejected", reason="hold_expired", hold_expires_at=None
                )
                changed.append(row.id)
            changed += await self.promote(conn, session_id, now)
        return changed

    async def decide_pending(
        self, conn: AsyncConnection, reservation_id: str, *, approve: bool, now: datetime
    ) -> list[str]:
        row = await self._row(conn, reservation_id)
        if row.state != "pending":
            raise LedgerError(
                "not_pending", f"Reservierung ist {row.state} / reservation is {row.state}"
            )
        if not approve:
            await self._move(conn, row, now, state="rejected", reason="declined_by_host")
            return [row.id]
        session = (
            await conn.execute(select(sessions).where(sessions.c.id == row.session_id))
        ).one()
        cap = await self._cap(conn, row.session_id, row.requester)
        state, reason, _ = await self._seat_or_queue(
            conn, session, row.requester, row.seats, hold=False, now=now, cap=cap, seq=row.seq
        )
        await self._move(conn, row, now, state=state, reason=reason)
        return [row.id]

    async def set_quota(
        self, conn: AsyncConnection, session_id: str, seats: int, now: datetime
    ) -> list[str]:
        """Change the partner quota; it can never drop below the seats taken."""
        result = await conn.execute(
            update(sessions)
            .where(sessions.c.id == session_id, sessions.c.seats_taken <= seats)
            .values(open_seats=seats)
        )
        if result.rowcount != 1:
            raise LedgerError(
                "quota_below_taken",
                "Mehr Plätze vergeben als das neue "
                "Kontingent / more seats taken than the new quota",
            )
        return await self.promote(conn, session_id, now)

    async def set_cap(
        self, conn: AsyncConnection, session_id: str, requester: str, cap: int
    ) -> None:
        await self.lock_session(conn, session_id)
        taken = (
            await conn.execute(
                select(func.coalesce(func.sum(reservations_in.c.seats), 0)).where(
                    reservations_in.c.session_id == session_id,
                    reservations_in.c.requester == requester,
                    reservations_in.c.state.in_(SEATED),
                )
            )
        ).scalar_one()
        if taken > cap:
            raise LedgerError(
                "cap_below_taken", "Obergrenze unter vergebenen Plätzen / cap below seats taken"
            )
        await conn.execute(
            partner_caps.delete().where(
                partner_caps.c.session_id == session_id, partner_caps.c.requester == requester
            )
        )
        await conn.execute(
            partner_caps.insert().values(
                session_id=session_id, requester=requester, cap=cap, taken=taken
            )
        )

    async def cancel_session(
        self, conn: AsyncConnection, session_id: str, now: datetime
    ) -> list[str]:
        """The host cancelled the session: every active reservation ends, seats free."""
        await self.lock_session(conn, session_id)
        rows = list(
            await conn.execute(
                select(reservations_in)
                .where(
                    reservations_in.c.session_id == session_id, reservations_in.c.state.in_(ACTIVE)
                )
                .with_for_update()
            )
        )
        for row in rows:
            if row.state in SEATED:
                await self._release(conn, row.session_id, row.requester, row.seats)
            await self._move(
                conn, row, now, state="cancelled", cancelled_by="host", hold_expires_at=None
            )
        return [row.id for row in rows]
