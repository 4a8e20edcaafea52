"""APScheduler wiring: which job runs how often.  The jobs live elsewhere.

Every job catches and logs its own failure so one bad run never stops the
scheduler; each is idempotent, so a run that overlaps a restart is harmless.
With several replicas every one of them fires every job, and
:class:`node.ticks.JobTicks` lets exactly one of them run each tick (the
others report "skipped"); see :mod:`node.ticks` for why that is safe.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from node.db import catalogue as catalogue_repo
from node.db import feed as feed_repo
from node.db import nonces as nonce_repo
from node.db import rate_limits as rate_repo
from node.db import sync as sync_repo
from node.observability.metrics import Metrics
from node.runtime import NodeServices
from node.ticks import JobTicks, Outcome

log = logging.getLogger(__name__)
Job = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    seconds: int
    start: datetime  # the first tick; APScheduler fires every ``seconds`` after it
    run: Callable[[], Awaitable[Outcome]]


def _guarded(
    name: str, job: Job, ticks: JobTicks, seconds: int, metrics: Metrics | None = None
) -> Callable[[], Awaitable[Outcome]]:
    async def run() -> Outcome:
        outcome = await ticks.run(name, seconds, job)  # ok | failed | skipped, never raises
        if metrics is not None:
            metrics.job_run(name, outcome)
        return outcome

    run.__name__ = name
    return run


def build_scheduler(node: NodeServices, *, metrics: Metrics | None = None) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")
    for job in scheduled_jobs(node, metrics=metrics):
        scheduler.add_job(
            job.run,
            IntervalTrigger(seconds=job.seconds, start_date=job.start, timezone=UTC),
            id=job.name,
            name=job.name,
            max_instances=1,
            coalesce=True,
        )
    return scheduler


def scheduled_jobs(node: NodeServices, *, metrics: Metrics | None = None) -> list[ScheduledJob]:
    """Every job of this replica, each run at most once per tick across replicas."""
    ticks = JobTicks(node.db, node.clock, node.settings.node_id, node.settings.lease_seconds)

    async def purge_nonces() -> int:
        async with node.db.write() as conn:
            return await nonce_repo.purge(conn, node.clock.now())

    async def purge_rate_buckets() -> int:
        async with node.db.write() as conn:
            return await rate_repo.purge(conn, node.clock.now())

    async def purge_tombstones() -> int:
        async with node.db.write() as conn:
            return await feed_repo.purge_tombstones(conn, node.clock.now())

    async def purge_catalogue() -> int:
        retention = timedelta(days=node.settings.catalogue_retention_days)
        async with node.db.write() as conn:
            await sync_repo.purge_rejections(conn, node.clock.now())
            return await catalogue_repo.purge(conn, ended_before=node.clock.now() - retention)

    async def pull_feeds() -> int:
        interval = timedelta(seconds=node.settings.poll_interval_seconds)
        return await node.subscriber.pull_due(interval)

    async def purge_attendees() -> int:
        """Attendee data goes N days after the session, on both sides (SPEC.md §12)."""
        cutoff = node.clock.now() - timedelta(days=node.settings.attendee_retention_days)
        return await node.host.purge(cutoff) + await node.requests.purge(cutoff)

    poll = max(node.settings.poll_interval_seconds // 5, 5)
    jobs: list[tuple[str, Job, int]] = [
        ("pull_feeds", pull_feeds, poll),
        ("purge_catalogue", purge_catalogue, 3600),
        ("deliver_outbox", node.deliverer.deliver_due, 5),
        ("stamp_feed", node.notifier.changed, 30),
        ("publish_endings", node.sessions.publish_endings, 60),
        ("publish_seats", node.sessions.publish_seats, 10),
        ("expire_holds", node.host.expire_holds, 15),
        ("purge_attendees", purge_attendees, 3600),
        ("sync_imports", node.importer.sync_due, 60),
        ("purge_nonces", purge_nonces, 600),
        ("purge_tombstones", purge_tombstones, 3600),
        ("purge_rate_buckets", purge_rate_buckets, 600),
    ]
    return [
        ScheduledJob(
            name,
            seconds,
            ticks.start_date(name, seconds),
            _guarded(name, job, ticks, seconds, metrics),
        )
        for name, job, seconds in jobs
    ]
