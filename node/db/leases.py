"""Leases: which replica does a piece of shared work, and until when.

Several replicas of a node (processes behind a load balancer) share one
PostgreSQL database and nothing else.  Two kinds of work must have exactly
one doer at a time, and both are decided here by a row:

* ``job_ticks``: one row per scheduled job, holding the last *tick* a
  replica claimed (:mod:`node.ticks`).
* ``outbox_claims``: one row per peer whose outbox a replica is delivering
  right now (:mod:`node.federation.outbox`).

Every claim is one statement, ``INSERT ... ON CONFLICT DO UPDATE ... WHERE
<the work is free> RETURNING``: it inserts the row on first use, takes it
over when the condition holds, and returns a row only to the replica that
got it.  On PostgreSQL the conflicting row is locked and the ``WHERE`` is
evaluated again on its newest committed version, so of two replicas
claiming at once exactly one sees a row come back; the other one's
condition is false by then.  SQLite has one writer at a time, so the same
statement is trivially exclusive there (and also keeps the CLI, a second
process on the same file, out of the ``serve`` process's way).

A held lease names its holder (:func:`new_holder`, unique per replica and
service) and ``lease_until``.  :class:`Lease` renews it in the background
every third of its length while the work runs, so a live replica keeps
it; a replica that dies (SIGKILL, power loss) stops renewing and the lease
runs out after at most ``lease_seconds``, after which another replica may
claim the work.  Leaving the work normally releases the lease at once.
Times come from the node's clock: replicas' clocks must agree to within a
small part of the lease (NTP), and tests move a ``ManualClock`` past it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from sqlalchemy import and_, delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from node.clock import Clock
from node.db.engine import Database
from node.db.tables import job_ticks, outbox_claims

log = logging.getLogger(__name__)
Renew = Callable[[AsyncConnection, datetime], Awaitable[bool]]
Release = Callable[[AsyncConnection], Awaitable[None]]


def new_holder() -> str:
    """``host:pid:random``: names the replica in the table, unique per service."""
    return f"{socket.gethostname()[:36]}:{os.getpid()}:{secrets.token_hex(4)}"


def _insert(conn: AsyncConnection, table: Any) -> Any:
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    return dialect.insert(table)


# --- scheduled jobs --------------------------------------------------------------


async def claim_tick(
    conn: AsyncConnection, name: str, tick: int, holder: str, now: datetime, until: datetime
) -> bool:
    """Claim *tick* of job *name*: only if no later or equal tick was claimed and
    the previous run is over (finished, or its lease ran out)."""
    row = job_ticks.c
    insert = _insert(conn, job_ticks).values(
        name=name, tick=tick, holder=holder, lease_until=until, runs=1
    )
    statement = insert.on_conflict_do_update(
        index_elements=[row.name],
        set_={
            "tick": insert.excluded.tick,
            "holder": insert.excluded.holder,
            "lease_until": insert.excluded.lease_until,
            "runs": row.runs + 1,
        },
        where=and_(
            row.tick < insert.excluded.tick,
            or_(row.lease_until.is_(None), row.lease_until <= now),
        ),
    ).returning(row.name)
    return (await conn.execute(statement)).first() is not None


async def renew_tick(
    conn: AsyncConnection, name: str, tick: int, holder: str, until: datetime
) -> bool:
    result = await conn.execute(
        update(job_ticks)
        .where(job_ticks.c.name == name, job_ticks.c.tick == tick, job_ticks.c.holder == holder)
        .values(lease_until=until)
    )
    return result.rowcount == 1


async def finish_tick(conn: AsyncConnection, name: str, tick: int, holder: str) -> None:
    await conn.execute(
        update(job_ticks)
        .where(job_ticks.c.name == name, job_ticks.c.tick == tick, job_ticks.c.holder == holder)
        .values(lease_until=None)
    )


# --- a peer's outbox ---------------------------------------------------------------


async def claim_peer(
    conn: AsyncConnection, peer_node_id: str, holder: str, now: datetime, until: datetime
) -> bool:
    """Claim delivery to *peer_node_id*: free, run out, or already ours."""
    row = outbox_claims.c
    insert = _insert(conn, outbox_claims).values(
        peer_node_id=peer_node_id, holder=holder, lease_until=until
    )
    statement = insert.on_conflict_do_update(
        index_elements=[row.peer_node_id],
        set_={"holder": insert.excluded.holder, "lease_until": insert.excluded.lease_until},
        where=or_(row.lease_until <= now, row.holder == insert.excluded.holder),
    ).returning(row.peer_node_id)
    return (await conn.execute(statement)).first() is not None


async def renew_peer(
    conn: AsyncConnection, peer_node_id: str, holder: str, until: datetime
) -> bool:
    result = await conn.execute(
        update(outbox_claims)
        .where(outbox_claims.c.peer_node_id == peer_node_id, outbox_claims.c.holder == holder)
        .values(lease_until=until)
    )
    return result.rowcount == 1


async def release_peer(conn: AsyncConnection, peer_node_id: str, holder: str) -> None:
    await conn.execute(
        delete(outbox_claims).where(
            outbox_claims.c.peer_node_id == peer_node_id, outbox_claims.c.holder == holder
        )
    )


# --- holding a lease ------------------------------------------------------------------


class Lease:
    """A claimed lease, renewed in the background while the work runs.

    ``async with Lease(...)`` starts the renewal and releases the lease on
    the way out (on errors and cancellation too; if even that write fails,
    the lease simply runs out).  ``lost`` turns true once a renewal finds
    that the row is no longer ours: the work should stop at its next step.
    """

    def __init__(
        self, db: Database, clock: Clock, seconds: float, renew: Renew, release: Release
    ) -> None:
        self.db = db
        self.clock = clock
        self.seconds = seconds
        self._renew = renew
        self._release = release
        self.lost = False
        self._task: asyncio.Task[None] | None = None

    def until(self) -> datetime:
        return self.clock.now() + timedelta(seconds=self.seconds)

    async def renew(self, conn: AsyncConnection) -> bool:
        """Renew inside the caller's transaction; false if the lease is lost."""
        if not await self._renew(conn, self.until()):
            self.lost = True
        return not self.lost

    async def __aenter__(self) -> Lease:
        self._task = asyncio.get_running_loop().create_task(self._keep())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.lost:
            return
        try:
            async with self.db.write() as conn:
                await self._release(conn)
        except Exception:
            log.warning("lease not released; it runs out by itself", exc_info=True)

    async def _keep(self) -> None:
        while not self.lost:
            await asyncio.sleep(self.seconds / 3)
            try:
                async with self.db.write() as conn:
                    await self.renew(conn)
            except Exception:
                log.warning("lease renewal failed; trying again", exc_info=True)
