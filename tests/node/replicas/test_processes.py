"""Two real ``openseats serve`` processes on one PostgreSQL database; one is SIGKILLed.

PostgreSQL only (``PG_ONLY``): a database of its own, created for the test
and dropped after it, because a separate process cannot be pointed at a
schema.  Both processes are one node (same data dir, keys and settings,
each on its own port), running their schedulers on the real clock with a
short lease (``OPENSEATS_LEASE_SECONDS=2``).

First two ``openseats db upgrade`` run at once on the empty database and
both succeed.  Then a burst of outbox messages is queued for a partner,
here the :class:`CountingPeer` at the network boundary, which holds the
21st message open.  Whichever process delivers it (its pid is in the
peer's ``outbox_claims`` row) is killed with SIGKILL right then, between
sending and recording the answer.  The other process takes over once the
lease has run out, sends that message again, and the rest in order: the
partner got every message, in order, each once except the one that was in
flight at the kill, which it gets twice and deduplicates by its id.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from node.db import Database
from node.db.tables import outbox_claims
from node.identity import NodeIdentity
from node.settings import CONFIG_NAME, Settings, write_config
from tests.node.conftest import free_port
from tests.node.processes import clean_environment, own_pg_database, serving
from tests.node.replicas.conftest import PG_ONLY, CountingPeer, outbox_states, queue_messages

MESSAGES = 60
HELD = 20  # the message in flight when its sender is killed
SINK = "partner.openseats.test"


def environment(database_url: str) -> dict[str, str]:
    return clean_environment(
        database_url=database_url, lease_seconds="2", poll_interval_seconds="3600"
    )


async def cli(data: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "node.cli", *args, "--data", str(data)]
    return await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=60
    )


async def claimed_by(db: Database) -> int | None:
    """The pid in the partner's outbox claim (``host:pid:random``), if any."""
    async with db.read() as conn:
        holder = (
            await conn.execute(
                select(outbox_claims.c.holder).where(outbox_claims.c.peer_node_id == SINK)
            )
        ).scalar()
    return int(holder.split(":")[1]) if holder else None


@PG_ONLY
async def test_a_process_killed_mid_burst_loses_nothing_and_doubles_one(
    engine: str, tmp_path: Path, counting_peer: CountingPeer
) -> None:
    async with own_pg_database() as url:
        data = tmp_path / "home"
        data.mkdir()
        ports = [free_port(), free_port()]
        values = {
            "node_id": "home.openseats.test",
            "base_url": f"http://127.0.0.1:{ports[0]}",
            "display_name": "HOME",
        }
        write_config(data / CONFIG_NAME, values)
        env = environment(url)

        # Two replicas migrate the empty database at the same moment.
        upgrades = await asyncio.gather(*(cli(data, env, "db", "upgrade") for _ in range(2)))
        assert [u.returncode for u in upgrades] == [0, 0], [u.stderr for u in upgrades]

        db = Database(url)
        try:
            settings = Settings(data_dir=data, database_url=url, **values)
            await NodeIdentity(settings, db).create_first_key(datetime.now(UTC))
            async with serving(data, env, ports[0]) as one, serving(data, env, ports[1]) as two:
                counting_peer.delay = 0.02
                counting_peer.hold = (SINK, HELD)
                await queue_messages(db, counting_peer, SINK, MESSAGES, datetime.now(UTC))

                await asyncio.wait_for(counting_peer.holding.wait(), 30)
                killed = await claimed_by(db)
                assert killed in (one.pid, two.pid)
                os.kill(killed, signal.SIGKILL)
                counting_peer.release.set()  # its connection is gone with it
                survivor = two if killed == one.pid else one

                await counting_peer.wait_for(
                    lambda: len(set(counting_peer.received[SINK])) == MESSAGES, 30
                )
                await _until_all_sent(db)
                assert survivor.poll() is None
        finally:
            await db.dispose()

    received = counting_peer.received[SINK]
    assert received == [*range(HELD + 1), *range(HELD, MESSAGES)]
    assert counting_peer.first_arrivals(SINK) == list(range(MESSAGES))


async def _until_all_sent(db: Database) -> None:
    for _ in range(300):
        if await outbox_states(db, SINK) == [("sent", 1)] * MESSAGES:
            return
        await asyncio.sleep(0.1)  # the other process records its last answers
    raise AssertionError(await outbox_states(db, SINK))
