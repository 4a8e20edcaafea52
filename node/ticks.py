"""Scheduled jobs across replicas: each job runs once per tick, on one replica.

Every replica runs the same APScheduler (:mod:`node.scheduler`), so without
coordination two replicas would pull every feed, sweep every hold and purge
every table twice.  Instead, time is cut into *ticks* per job: tick ``k``
of a job with interval ``s`` is the moment ``phase + k*s`` (epoch seconds),
where ``phase`` is derived from the node id and the job name.  All
replicas of one node therefore fire a job at the same moments (the
scheduler's start date is the phase), while different organisations'
nodes and different jobs are spread out instead of all pulling on the
minute.  A run computes its tick from the node's clock (rounded to the
nearest tick, so firing a little late or early still names the right one)
and claims it with one statement on ``job_ticks``
(:func:`node.db.leases.claim_tick`):

    INSERT (name, tick, holder, lease_until) ... ON CONFLICT (name) DO UPDATE
      SET tick = :tick, holder = :me, lease_until = :lease
      WHERE job_ticks.tick < :tick AND (lease_until IS NULL OR lease_until <= :now)
      RETURNING name

**Exactly once per tick.**  The row's ``tick`` only grows, and only a
statement that finds it smaller can set it, so of all replicas firing tick
``k`` exactly one gets a row back and runs the job ("ok" or "failed");
the others get nothing and report "skipped".  A tick no replica fires
(all of them stopped, or late beyond APScheduler's grace time) is not run;
the next one does its work.  ``lease_until`` is the run's lease
(:class:`node.db.leases.Lease`, renewed while the job runs and cleared when
it ends): while a run is still going, later ticks are skipped on every
replica, as ``max_instances=1`` does within one process.

**A replica killed mid-job** stops renewing its lease; once it has run out
(``lease_seconds``) the next tick is claimed by a live replica.  Nothing
is lost, because every job's work lives in the database (due pulls, pending
outbox rows, held reservations past their time, rows past retention) and
is found again by the next run; nothing is done twice, because each job is
idempotent and its work items are themselves conditional: holds are
expired under a row lock (``SELECT ... FOR UPDATE`` of rows still
``held``), an outbox message is delivered under its peer's claim and moves
on only from the state it was read in, a purge deletes what is still
there, a pull merges only strictly newer versions.

On SQLite (one process) the claim costs one small write per job run; the
same code runs on both engines.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from node.clock import Clock
from node.db import Database
from node.db import leases as lease_repo

log = logging.getLogger(__name__)
Outcome = Literal["ok", "failed", "skipped"]
Job = Callable[[], Awaitable[object]]


class JobTicks:
    """Claims ticks for one replica's scheduler; ``holder`` names the replica."""

    def __init__(self, db: Database, clock: Clock, node_id: str, lease_seconds: float) -> None:
        self.db = db
        self.clock = clock
        self.node_id = node_id
        self.lease_seconds = lease_seconds
        self.holder = lease_repo.new_holder()

    def phase(self, name: str, interval: int) -> float:
        """Seconds after the epoch of tick 0: the same on every replica of this node."""
        digest = hashlib.sha256(f"{self.node_id}/{name}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % (interval * 1000) / 1000

    def start_date(self, name: str, interval: int) -> datetime:
        """When APScheduler should fire first: every later fire is a tick."""
        return datetime.fromtimestamp(self.phase(name, interval), UTC)

    def tick(self, name: str, interval: int) -> int:
        """The tick nearest to now."""
        elapsed = self.clock.now().timestamp() - self.phase(name, interval)
        return round(elapsed / interval)

    async def run(self, name: str, interval: int, job: Job) -> Outcome:
        """Run *job* if this replica wins the current tick; never raises."""
        tick = self.tick(name, interval)
        now = self.clock.now()
        until = now + timedelta(seconds=self.lease_seconds)
        try:
            async with self.db.write() as conn:
                claimed = await lease_repo.claim_tick(conn, name, tick, self.holder, now, until)
        except Exception:
            log.exception("job %s: tick %d could not be claimed", name, tick)
            return "failed"
        if not claimed:
            return "skipped"

        async def renew(conn: AsyncConnection, until: datetime) -> bool:
            return await lease_repo.renew_tick(conn, name, tick, self.holder, until)

        async def finish(conn: AsyncConnection) -> None:
            await lease_repo.finish_tick(conn, name, tick, self.holder)

        async with lease_repo.Lease(self.db, self.clock, self.lease_seconds, renew, finish):
            try:
                await job()
            except Exception:
                log.exception("job %s failed", name)
                return "failed"
        return "ok"
