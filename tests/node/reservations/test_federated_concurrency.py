"""500 signed reservation requests from 5 real partner nodes for 40 partner seats.

The partners are full nodes on loopback, peered with the host; each request
is a ``PUT /protocol/v1/reservations/{uuid}`` signed with its partner's key,
exactly as the partner's outbox would send it, and all 500 are in flight at
once.  On PostgreSQL the host runs as two processes sharing one database:
the in-process test node and a real ``openseats serve`` on another port
with the same identity (keys in ``<data>/keys/``, settings from
``<data>/openseats.toml`` and ``OPENSEATS_*``).  Both count as the host's
public ``base_url``, like replicas behind a load balancer, so requests are
signed for that URL and sent to either process.  The PostgreSQL schema of
:class:`node.db.Database` cannot be chosen from the settings, so the
replicas share a database of their own, created for the test.

Exactly 40 are confirmed, the other 460 are waitlisted (or rejected as
``full`` without a waitlist), nothing errors, every answer matches the
host's row, and cancelling seats promotes the waitlist exactly.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from node.app import create_app
from node.clock import ManualClock
from node.db import Database
from node.db import tokens as token_repo
from node.db.tables import sessions
from node.identity import NodeIdentity
from node.settings import CONFIG_NAME, Settings, write_config
from protocol.httpsig import sign_request
from protocol.models import format_timestamp
from tests.node.conftest import NodeFactory, RunningNode, free_port, peer, sync
from tests.node.processes import clean_environment, own_pg_database, serving
from tests.node.reservations.helpers import open_session

PARTNERS = 5
REQUESTS = 500
SEATS = 40
RATE_LIMIT = 100_000  # per peer and process; the default would answer 429


@asynccontextmanager
async def running_host(url: str, data: Path, clock: ManualClock) -> AsyncIterator[RunningNode]:
    """The host in this process, like ``make_node`` but on the database at *url*."""
    port = free_port()
    settings = Settings(
        node_id="host.openseats.test",
        base_url=f"http://127.0.0.1:{port}",
        display_name="HOST",
        data_dir=data,
        rate_limit_per_minute=RATE_LIMIT,
    )
    data.mkdir(parents=True, exist_ok=True)
    database = Database(url)
    await database.upgrade()
    await NodeIdentity(settings, database).create_first_key(clock.now())
    async with database.write() as conn:
        token = await token_repo.create(conn, "admin", "tests", clock.now())
    server = TestServer(
        create_app(settings, clock=clock, db=database, run_scheduler=False),
        host="127.0.0.1",
        port=port,
    )
    await server.start_server()
    host = RunningNode("host", settings, server, aiohttp.ClientSession(), token, database, clock)
    try:
        yield host
    finally:
        await host.http.close()
        await server.close()
        await database.dispose()


@asynccontextmanager
async def second_process(host: RunningNode, database_url: str) -> AsyncIterator[str]:
    """``openseats serve`` on the host's data dir and database; yields its address."""
    port = free_port()
    write_config(
        host.settings.data_dir / CONFIG_NAME,
        {
            "node_id": host.node_id,
            "base_url": host.url,
            "display_name": host.settings.display_name,
            "listen_port": port,
        },
    )
    env = clean_environment(
        database_url=database_url,
        rate_limit_per_minute=str(RATE_LIMIT),
        database_pool_size="8",  # other tests run beside this one
    )
    async with serving(host.settings.data_dir, env, port):
        yield f"http://127.0.0.1:{port}"


@asynccontextmanager
async def host_replicas(
    engine: str, tmp_path: Path, clock: ManualClock
) -> AsyncIterator[tuple[RunningNode, list[str]]]:
    """The host and the addresses its processes listen on (one, or two on PostgreSQL)."""
    if engine == "sqlite":
        async with running_host(f"sqlite:///{tmp_path / 'host.db'}", tmp_path / "host", clock) as h:
            yield h, [h.url]
        return
    async with (
        own_pg_database() as url,
        running_host(url, tmp_path / "host", clock) as host,
        second_process(host, url) as second,
    ):
        yield host, [host.url, second]


def catch_up(clock: ManualClock) -> None:
    """The second process checks signatures against the real time."""
    clock.advance(seconds=(datetime.now(UTC) - clock.now()).total_seconds())


def reservation_request(
    partner: RunningNode, host: RunningNode, sid: str, n: int, clock: ManualClock
) -> tuple[str, bytes]:
    """A ``ReservationRequest`` as the partner's requester builds it."""
    reservation_id = str(uuid.uuid4())
    body = {
        "type": "reservation_request",
        "id": reservation_id,
        "requester": partner.node_id,
        "session": {"origin": host.node_id, "id": sid},
        "attendee": {"ref": f"emp-{n}", "display_name": f"Person {n}"},
        "seats": 1,
        "hold": False,
        "issued_at": format_timestamp(clock.now()),
    }
    return reservation_id, json.dumps(body, separators=(",", ":")).encode()


async def signed(
    partner: RunningNode,
    host: RunningNode,
    address: str,
    method: str,
    reservation_id: str,
    body: bytes = b"",
) -> tuple[int, dict[str, Any]]:
    """Sign for the host's public URL, as the outbox does, and send it to *address*."""
    path = f"/protocol/v1/reservations/{reservation_id}"
    headers = sign_request(
        method=method,
        url=host.url + path,
        body=body,
        key=partner.node.identity.signing_key,
        now=partner.node.clock.now(),
    )
    headers.append(("Accept", "application/json"))
    async with partner.http.request(
        method, address + path, data=body or None, headers=headers
    ) as response:
        return response.status, await response.json(content_type=None)


async def host_rows(host: RunningNode, sid: str) -> dict[str, Any]:
    return {row.id: row for row in await host.node.host.for_session(sid)}


async def seats_taken(host: RunningNode, sid: str) -> int:
    async with host.node.db.read() as conn:
        found = await conn.execute(select(sessions.c.seats_taken).where(sessions.c.id == sid))
        return int(found.scalar_one())


def check_counts(rows: dict[str, Any], taken: int, confirmed: int, waiting: int) -> None:
    """Seats taken equal the confirmed rows; the waitlist is numbered 1..n in order."""
    assert len([row for row in rows.values() if row.state == "confirmed"]) == taken == confirmed
    queue = sorted(_queue(rows), key=lambda r: r.position)
    assert [row.position for row in queue] == list(range(1, waiting + 1))


@pytest.mark.parametrize("waitlist", [True, False], ids=["waitlist", "no-waitlist"])
async def test_500_concurrent_requests_for_40_seats(
    engine: str, make_node: NodeFactory, clock: ManualClock, tmp_path: Path, waitlist: bool
) -> None:
    partners = [await make_node(f"partner{n}") for n in range(PARTNERS)]
    async with host_replicas(engine, tmp_path, clock) as (host, addresses):
        for partner in partners:
            await peer(partner, host)
        sid = await open_session(host, clock, seats=SEATS, waitlist=waitlist)
        await sync(host, *partners)
        catch_up(clock)

        plan = []
        for n in range(REQUESTS):
            partner = partners[n % PARTNERS]
            reservation_id, body = reservation_request(partner, host, sid, n, clock)
            plan.append((partner, addresses[n % len(addresses)], reservation_id, body))
        results = await asyncio.gather(
            *(signed(p, host, address, "PUT", rid, body) for p, address, rid, body in plan)
        )

        # Nothing errors: every request was decided and answered 201.
        assert Counter(status for status, _ in results) == {201: REQUESTS}, [
            answer for status, answer in results if status != 201
        ][:3]
        answers = {answer["id"]: answer for _, answer in results}
        assert set(answers) == {rid for _, _, rid, _ in plan}
        other = "waitlisted" if waitlist else "rejected"
        assert Counter(a["state"] for a in answers.values()) == {
            "confirmed": SEATS,
            other: REQUESTS - SEATS,
        }
        if not waitlist:
            assert {a["reason"] for a in answers.values() if a["state"] == "rejected"} == {"full"}

        # Row by row, the host's database says what each answer said.
        rows = await host_rows(host, sid)
        assert set(rows) == set(answers)
        owner = {rid: partner.node_id for partner, _, rid, _ in plan}
        for rid, answer in answers.items():
            row = rows[rid]
            assert (row.requester, row.state, row.version, row.seats, row.reason) == (
                owner[rid],
                answer["state"],
                answer["version"],
                1,
                answer.get("reason"),
            ), rid
        waiting = REQUESTS - SEATS if waitlist else 0
        check_counts(rows, await seats_taken(host, sid), SEATS, waiting)
        # An answer's position counts the earlier waiting rows it could see:
        # exact where writes are serial (SQLite), never too high on
        # PostgreSQL, where an earlier request may not have committed yet.
        for rid, answer in answers.items():
            if answer["state"] == "waitlisted":
                assert 1 <= answer["position"] <= rows[rid].position, rid
                if engine == "sqlite":
                    assert answer["position"] == rows[rid].position, rid

        # Ten confirmed reservations are cancelled at once, through both
        # processes: exactly the first ten waiting move up, in order.
        confirmed = sorted(rid for rid, row in rows.items() if row.state == "confirmed")
        cancelled, kept = confirmed[:10], confirmed[10:]
        queue = sorted(_queue(rows), key=lambda r: r.position)
        partner_of = {rid: partner for partner, _, rid, _ in plan}
        catch_up(clock)
        done = await asyncio.gather(
            *(
                signed(partner_of[rid], host, addresses[n % len(addresses)], "DELETE", rid)
                for n, rid in enumerate(cancelled)
            )
        )
        assert [status for status, _ in done] == [200] * len(cancelled)
        assert {(a["state"], a["cancelled_by"]) for _, a in done} == {("cancelled", "requester")}
        after = await host_rows(host, sid)
        assert {rid for rid, row in after.items() if row.state == "cancelled"} == set(cancelled)
        promoted = [row.id for row in queue[: len(cancelled)]]
        seated = SEATS if waitlist else SEATS - len(cancelled)
        check_counts(after, await seats_taken(host, sid), seated, max(waiting - len(cancelled), 0))
        assert {rid for rid, row in after.items() if row.state == "confirmed"} == {
            *kept,
            *promoted,
        }
        assert all(after[rid].version == 2 for rid in [*cancelled, *promoted])
        rest = [row.id for row in queue[len(cancelled) :]]
        assert [row.id for row in sorted(_queue(after), key=lambda r: r.position)] == rest
        assert sorted(after) == sorted(answers)  # nothing lost, nothing doubled


def _queue(rows: dict[str, Any]) -> list[Any]:
    return [row for row in rows.values() if row.state == "waitlisted"]
