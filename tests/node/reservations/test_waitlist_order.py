"""Who is first in line (SPEC.md §9.6), one decision at a time, on both engines.

The state machines check the order under random interleavings; these name
the cases the rule was written for: a two-seat request is not starved by
later one-seat requests, a partner at its cap holds back only itself, a
request that can never fit its cap is not queued, and an approved request
keeps its place by arrival.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from node.db import Database
from node.db.tables import partner_caps, reservations_in, sessions
from node.reservations.ledger import SeatLedger
from tests.node.conftest import Schemas, new_database
from tests.node.reservations.test_ledger_invariants import NOW, make_request, session_row

X, Y = "x.example.org", "y.example.org"


@pytest.fixture
async def ledger_db(engine: str, tmp_path: Path, schemas: Schemas) -> AsyncIterator[Database]:
    db = await new_database(engine, tmp_path, schemas)
    yield db
    await db.dispose()


async def reserve(db: Database, partner: str, ref: str, seats: int = 1) -> tuple[str, str]:
    request = make_request(str(uuid.uuid4()), partner, ref, seats, False)
    async with db.write() as conn:
        decision, _ = await SeatLedger().reserve(conn, request, partner, NOW)
    return decision.id, decision.state


async def states(db: Database) -> dict[str, str]:
    async with db.read() as conn:
        rows = await conn.execute(select(reservations_in.c.id, reservations_in.c.state))
        return {row.id: row.state for row in rows}


async def test_two_seats_are_not_starved_by_later_single_seats(ledger_db: Database) -> None:
    async with ledger_db.write() as conn:
        await conn.execute(session_row(open_seats=2))
    first, state = await reserve(ledger_db, X, "a")
    assert state == "confirmed"
    pair, state = await reserve(ledger_db, Y, "b", seats=2)
    assert state == "waitlisted"  # one seat free, two asked
    later, state = await reserve(ledger_db, X, "c")
    assert state == "waitlisted", "a later single seat must not overtake the pair"
    async with ledger_db.write() as conn:
        changed = await SeatLedger().cancel(conn, first, "requester", NOW)
    assert changed == [first, pair]
    found = await states(ledger_db)
    assert (found[pair], found[later]) == ("confirmed", "waitlisted")


async def test_a_cap_holds_back_only_its_own_partner(ledger_db: Database) -> None:
    async with ledger_db.write() as conn:
        await conn.execute(session_row(open_seats=3))
        await conn.execute(partner_caps.insert().values(session_id="s-1", requester=X, cap=1))
    _, state = await reserve(ledger_db, X, "a")
    assert state == "confirmed"
    held_back, state = await reserve(ledger_db, X, "b")
    assert state == "waitlisted"  # X is at its cap
    _, state = await reserve(ledger_db, Y, "c")
    assert state == "confirmed", "X's cap must not hold back Y"
    # More than X's cap could ever give: rejected at once, not queued behind.
    _, state = await reserve(ledger_db, X, "d", seats=2)
    assert state == "rejected"
    async with ledger_db.read() as conn:
        reasons = {
            row.reason
            for row in await conn.execute(
                select(reservations_in.c.reason).where(reservations_in.c.state == "rejected")
            )
        }
        taken = (await conn.execute(select(sessions.c.seats_taken))).scalar_one()
    assert reasons == {"too_many_seats"}
    assert taken == 2
    # Lifting X's cap lets X's waiting request in.
    async with ledger_db.write() as conn:
        await conn.execute(partner_caps.delete())
        assert await SeatLedger().promote(conn, "s-1", NOW) == [held_back]


async def test_an_approved_request_keeps_its_place_by_arrival(ledger_db: Database) -> None:
    async with ledger_db.write() as conn:
        await conn.execute(session_row(open_seats=1, registration_mode="approval"))
    ledger = SeatLedger()
    early, _ = await reserve(ledger_db, X, "a")
    seated, _ = await reserve(ledger_db, Y, "b")
    late, _ = await reserve(ledger_db, Y, "c")
    assert set((await states(ledger_db)).values()) == {"pending"}
    async with ledger_db.write() as conn:
        await ledger.decide_pending(conn, seated, approve=True, now=NOW)
        await ledger.decide_pending(conn, late, approve=True, now=NOW)
        # Approved last, but it came first: it goes before the later one.
        await ledger.decide_pending(conn, early, approve=True, now=NOW)
    async with ledger_db.read() as conn:
        decision = await ledger.decision(conn, early)
    assert decision is not None
    assert (decision.state, decision.position) == ("waitlisted", 1)
    async with ledger_db.write() as conn:
        assert await ledger.cancel(conn, seated, "requester", NOW) == [seated, early]
    found = await states(ledger_db)
    assert (found[early], found[late]) == ("confirmed", "waitlisted")
