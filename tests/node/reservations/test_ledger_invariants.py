"""The seat ledger under random interleavings (hypothesis stateful testing).

A real database (SQLite file, and PostgreSQL in a fresh schema) holds one
session with a partner quota; a state machine reserves, retries, cancels,
confirms and expires holds, approves, changes the quota and cancels the
session in random order, and after every step checks the invariants:

* seats taken never exceed the partner quota, and equal the seated sum;
* seats per partner never exceed that partner's cap;
* the waitlist is strictly FIFO: nobody who waited got a seat while
  somebody who came earlier is still waiting;
* a retried request never creates a second reservation or seat;
* no reservation is ever lost.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from sqlalchemy import select

from node.db import Database
from node.db.tables import partner_caps, reservations_in, sessions
from node.reservations.ledger import SEATED, LedgerConflict, LedgerError, SeatLedger
from protocol.models import ReservationRequest
from tests.node.conftest import Schemas, new_database

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PARTNERS = ["lernwelt.example.com", "kiwi.example.de", "bosch.example.com"]
CAPPED = "kiwi.example.de"
HOST = "lex.example.org"


def make_request(
    reservation_id: str, partner: str, ref: str, seats: int, hold: bool
) -> ReservationRequest:
    return ReservationRequest.model_validate(
        {
            "type": "reservation_request",
            "id": reservation_id,
            "requester": partner,
            "session": {"origin": HOST, "id": "s-1"},
            "attendee": {"ref": ref, "display_name": f"Person {ref}"},
            "seats": seats,
            "hold": hold,
            "issued_at": "2026-11-23T09:00:00Z",
        }
    )


def session_row(**changes: Any) -> Any:
    """The INSERT for the one ledger session "s-1" both ledger tests use."""
    values: dict[str, Any] = {
        "id": "s-1",
        "title": "KI-Prompting",
        "description": "",
        "format": "impulse",
        "languages": ["de"],
        "start_at": NOW + timedelta(days=5),
        "timezone": "Europe/Berlin",
        "duration_minutes": 60,
        "host_name": "Anna",
        "tags": [],
        "status": "scheduled",
        "open_seats": 40,
        "audience_all": True,
        "registration_mode": "auto",
        "waitlist": True,
        "email_required": False,
        "seats_taken": 0,
        "version": 1,
        "announcement": "{}",
        "created_at": NOW,
        "updated_at": NOW,
        "ended_published": False,
    }
    return sessions.insert().values(**{**values, **changes})


class LedgerMachine(RuleBasedStateMachine):
    engine = "sqlite"
    tmp: Path

    reservations = Bundle("reservations")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.schemas = Schemas()
        self.db: Database = self.run(
            new_database(self.engine, self.tmp, self.schemas, uuid.uuid4().hex[:8])
        )
        self.ledger = SeatLedger()
        self.now = NOW
        self.requests: dict[str, ReservationRequest] = {}
        self.ever_waitlisted: set[str] = set()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.db.dispose())
        self.run(self.schemas.drop_all())
        self.loop.close()

    @initialize(
        quota=st.integers(0, 6),
        approval=st.booleans(),
        cap=st.integers(0, 3),
        waitlist=st.booleans(),
    )
    def create_session(self, quota: int, approval: bool, cap: int, waitlist: bool) -> None:
        async def create() -> None:
            async with self.db.write() as conn:
                await conn.execute(
                    session_row(
                        open_seats=quota,
                        registration_mode="approval" if approval else "auto",
                        waitlist=waitlist,
                    )
                )
                await self.ledger.set_cap(conn, "s-1", CAPPED, cap)

        self.run(create())

    async def _track(self, changed: list[str]) -> None:
        async with self.db.read() as conn:
            for rid in changed:
                decision = await self.ledger.decision(conn, rid)
                assert decision is not None
                if decision.state == "waitlisted":
                    self.ever_waitlisted.add(rid)

    @rule(
        target=reservations,
        partner=st.sampled_from(PARTNERS),
        ref=st.sampled_from(["a", "b", "c", "d", "e", "f"]),
        seats=st.integers(1, 3),
        hold=st.booleans(),
    )
    def reserve(self, partner: str, ref: str, seats: int, hold: bool) -> str:
        rid = str(uuid.uuid4())
        request = make_request(rid, partner, ref, seats, hold)
        self.requests[rid] = request

        async def go() -> None:
            async with self.db.write() as conn:
                decision, new = await self.ledger.reserve(conn, request, partner, self.now)
            assert new
            await self._track([decision.id])

        self.run(go())
        return rid

    @rule(rid=reservations)
    def retry(self, rid: str) -> None:
        request = self.requests[rid]

        async def go() -> None:
            async with self.db.read() as conn:
                before = await self.ledger.decision(conn, rid)
            async with self.db.write() as conn:
                decision, new = await self.ledger.reserve(
                    conn, request, request.requester, self.now
                )
            assert not new
            assert decision == before
            changed = request.model_copy(update={"seats": request.seats % 3 + 1})
            with pytest.raises(LedgerConflict):
                async with self.db.write() as conn:
                    await self.ledger.reserve(conn, changed, request.requester, self.now)

        self.run(go())

    @rule(rid=reservations)
    def cancel(self, rid: str) -> None:
        async def go() -> None:
            async with self.db.write() as conn:
                changed = await self.ledger.cancel(conn, rid, "requester", self.now)
            await self._track(changed)

        self.run(go())

    @rule(rid=reservations)
    def confirm_hold(self, rid: str) -> None:
        async def go() -> None:
            try:
                async with self.db.write() as conn:
                    changed = await self.ledger.confirm_hold(conn, rid, self.now)
            except LedgerError:
                return
            await self._track(changed)

        self.run(go())

    @rule(minutes=st.integers(1, 7))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

        async def go() -> None:
            async with self.db.write() as conn:
                changed = await self.ledger.expire_holds(conn, self.now)
            await self._track(changed)

        self.run(go())

    @rule(rid=reservations, approve=st.booleans())
    def decide(self, rid: str, approve: bool) -> None:
        async def go() -> None:
            try:
                async with self.db.write() as conn:
                    changed = await self.ledger.decide_pending(
                        conn, rid, approve=approve, now=self.now
                    )
            except LedgerError:
                return
            await self._track(changed)

        self.run(go())

    @rule(quota=st.integers(0, 8))
    def change_quota(self, quota: int) -> None:
        async def go() -> None:
            try:
                async with self.db.write() as conn:
                    changed = await self.ledger.set_quota(conn, "s-1", quota, self.now)
            except LedgerError:
                return
            await self._track(changed)

        self.run(go())

    @precondition(lambda self: len(self.requests) > 3)
    @rule()
    def cancel_session(self) -> None:
        async def go() -> None:
            async with self.db.write() as conn:
                await self.ledger.cancel_session(conn, "s-1", self.now)

        self.run(go())

    def rows(self) -> tuple[list[Any], Any, list[Any]]:
        async def read() -> tuple[list[Any], Any, list[Any]]:
            async with self.db.read() as conn:
                rows = list(
                    await conn.execute(select(reservations_in).order_by(reservations_in.c.seq))
                )
                session = (await conn.execute(select(sessions))).one()
                caps = list(await conn.execute(select(partner_caps)))
            return rows, session, caps

        return self.run(read())  # type: ignore[no-any-return]

    @invariant()
    def invariants(self) -> None:
        rows, session, caps = self.rows()
        seated = sum(r.seats for r in rows if r.state in SEATED)
        assert seated == session.seats_taken
        assert seated <= session.open_seats
        for cap in caps:
            mine = sum(r.seats for r in rows if r.state in SEATED and r.requester == cap.requester)
            assert mine == cap.taken
            assert mine <= cap.cap
        assert {r.id for r in rows} == set(self.requests)  # nothing lost, nothing doubled
        waiting = [r for r in rows if r.state == "waitlisted"]
        if waiting:
            first = waiting[0].seq
            jumped = [
                r.id
                for r in rows
                if r.seq > first and r.id in self.ever_waitlisted and r.state in SEATED
            ]
            assert not jumped, "a later waitlisted reservation got a seat first"


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_ledger_invariants(engine: str, tmp_path: Path) -> None:
    machine = type(f"LedgerMachine_{engine}", (LedgerMachine,), {"engine": engine, "tmp": tmp_path})
    runner = machine.TestCase
    runner.settings = settings(
        max_examples=25 if engine == "sqlite" else 10,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    runner().runTest()
