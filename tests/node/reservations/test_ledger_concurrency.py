"""500 concurrent reservations from 5 partners for 40 partner seats.

On PostgreSQL the requests go through two separate engines (two connection
pools, as two host processes would have) sharing one database.  Exactly 40
seats are confirmed, the rest are waitlisted (or rejected as full when the
session has no waitlist), nothing errors, and the counts match row by row.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from node.db import Database
from node.db.tables import reservations_in, sessions
from node.reservations.ledger import SeatLedger
from tests.node.conftest import PG_URL, Schemas, new_database
from tests.node.reservations.test_ledger_invariants import make_request, session_row

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PARTNERS = [f"partner{n}.example.org" for n in range(5)]


@pytest.mark.parametrize("waitlist", [True, False])
async def test_exactly_forty_confirmed(
    engine: str, tmp_path: Path, schemas: Schemas, waitlist: bool
) -> None:
    db = await new_database(engine, tmp_path, schemas)
    second = Database(PG_URL, schema=db.schema) if engine == "postgresql" else db
    engines = [db, second]
    try:
        async with db.write() as conn:
            await conn.execute(session_row(waitlist=waitlist))
        ledger = SeatLedger()

        async def reserve(n: int) -> str:
            partner = PARTNERS[n % 5]
            request = make_request(str(uuid.uuid4()), partner, f"ref{n}", 1, False)
            async with engines[n % 2].write() as conn:
                decision, _ = await ledger.reserve(conn, request, partner, NOW)
            return decision.state

        states = await asyncio.gather(*(reserve(n) for n in range(500)))
        assert states.count("confirmed") == 40
        other = "waitlisted" if waitlist else "rejected"
        assert states.count(other) == 460
        async with db.read() as conn:
            rows = list(await conn.execute(select(reservations_in)))
            taken = (await conn.execute(select(sessions.c.seats_taken))).scalar_one()
        assert len(rows) == 500
        assert sum(1 for r in rows if r.state == "confirmed") == 40 == taken
        if not waitlist:
            assert {r.reason for r in rows if r.state == "rejected"} == {"full"}
    finally:
        if second is not db:
            await second.dispose()
        await db.dispose()
