"""Scheduled jobs on two replicas: each job runs once per tick, and a dead one's work is done.

Both replicas fire every job of :func:`node.scheduler.scheduled_jobs` at
the same moment, tick after tick (the shared ``ManualClock`` moves an hour,
a new tick for every job).  Runs are counted three ways: the outcomes the
two replicas report (exactly one "ok" and one "skipped" per job and tick),
the ``job_ticks`` table (``runs`` grows by one per tick), and side effects
at a real partner node, which records every protocol request it gets: one
feed pull per tick, one notice for one expired hold.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from node.clock import ManualClock
from node.db import leases as lease_repo
from node.db import outbox as outbox_repo
from node.db.tables import job_ticks, reservations_in
from node.runtime import NodeServices
from node.scheduler import ScheduledJob, scheduled_jobs
from node.ticks import JobTicks
from tests.node.conftest import NodeFactory, RunningNode, peer, sync
from tests.node.replicas.conftest import ReplicaFactory, count_requests
from tests.node.reservations.helpers import open_session, portal_token, reserve

TICKS = 3


async def ticks_table(node: NodeServices) -> dict[str, tuple[int, int, object, str]]:
    async with node.db.read() as conn:
        rows = await conn.execute(select(job_ticks))
        return {row.name: (row.tick, row.runs, row.lease_until, row.holder) for row in rows}


async def held_reservation(home: RunningNode, partner: RunningNode, clock: ManualClock) -> str:
    """A partner's employee holds a seat at *home*; returns the reservation id."""
    sid = await open_session(home, clock, seats=2)
    await sync(home, partner)
    answer = await reserve(partner, home, sid, await portal_token(partner), "emp-1", hold=True)
    await sync(partner, home)
    async with home.node.db.read() as conn:
        state = (
            await conn.execute(
                select(reservations_in.c.state).where(reservations_in.c.id == answer["id"])
            )
        ).scalar_one()
    assert state == "held"
    return str(answer["id"])


async def quiet(home: RunningNode, partner: RunningNode) -> None:
    """Seat changes are re-published half a second after a commit, in the
    background: do what is left now, so every notice due has been sent."""
    await home.node.sessions.publish_seats()
    await home.node.deliverer.deliver_due()
    await home.settle()
    await partner.settle()


async def updates_for(node: NodeServices, reservation_id: str) -> int:
    async with node.db.read() as conn:
        messages = await outbox_repo.list_messages(conn)
    return sum(1 for m in messages if m.kind == "reservation_updated" and reservation_id in m.body)


async def test_every_job_runs_once_per_tick_across_two_replicas(
    make_node: NodeFactory, add_replica: ReplicaFactory, clock: ManualClock
) -> None:
    home, partner = await make_node("home"), await make_node("partner")
    await peer(partner, home)
    await open_session(partner, clock, seats=2)
    await sync(partner, home)
    hold = await held_reservation(home, partner, clock)
    second = await add_replica(home)
    await quiet(home, partner)
    for services in (home.node, second.node):
        # Only the jobs work from here: no delivery woken after a commit, no
        # seats re-published half a second later (that would be a second
        # source of requests at the partner, beside the jobs being counted).
        services.host.on_changed = None
        services.notifier.on_queued = None
        services.requests.on_queued = None
    seen = await count_requests(partner)
    async with home.node.db.read() as conn:  # what reached the partner before counting
        before = {m.id for m in await outbox_repo.list_messages(conn) if m.state == "sent"}
    jobs = {"home": scheduled_jobs(home.node), "second": scheduled_jobs(second.node)}
    names = [job.name for job in jobs["home"]]
    assert len(names) == len(set(names)) >= 12

    for tick in range(1, TICKS + 1):
        clock.advance(hours=1)
        start = len(seen)  # what arrives from here on belongs to this tick
        runs: list[tuple[ScheduledJob, asyncio.Task[str]]] = []
        for job in [*jobs["home"], *jobs["second"]]:  # fired together, as the scheduler does
            runs.append((job, asyncio.create_task(job.run())))
        outcomes: dict[str, list[str]] = {name: [] for name in names}
        for job, task in runs:
            outcomes[job.name].append(await task)
        await home.settle()
        await partner.settle()

        for name in names:
            assert sorted(outcomes[name]) == ["ok", "skipped"], (tick, name, outcomes[name])
        table = await ticks_table(home.node)
        expected = JobTicks(home.node.db, clock, home.node_id, 30)
        for job in jobs["home"]:
            current, runs_so_far, lease_until, _ = table[job.name]
            assert current == expected.tick(job.name, job.seconds), job.name
            assert (runs_so_far, lease_until) == (tick, None), job.name  # finished, released
        # At the partner: one pull of its feed (up to date: one page) per tick.
        assert Counter(m for m, path in seen[start:] if path == "/protocol/v1/feed") == {
            "GET": 1
        }, tick
    assert len({holder for *_, holder in (await ticks_table(home.node)).values()}) <= 2

    await quiet(home, partner)
    # The hold ran out in the first hour: expired once, one notice queued.
    assert await updates_for(home.node, hold) == 1
    # Every notice the jobs queued for the partner (seat changes, the
    # expiry) that was sent arrived exactly once.
    async with home.node.db.read() as conn:
        queued = [m for m in await outbox_repo.list_messages(conn) if m.id not in before]
    sent = [m for m in queued if m.peer_node_id == partner.node_id and m.state == "sent"]
    assert "reservation_updated" in {m.kind for m in sent}
    assert [m.attempts for m in sent] == [1] * len(sent)
    assert seen.count(("POST", "/protocol/v1/inbox")) == len(sent)


async def test_a_job_killed_mid_run_is_taken_over_after_its_lease(
    make_node: NodeFactory, add_replica: ReplicaFactory, clock: ManualClock
) -> None:
    """A replica claimed ``expire_holds`` and died: the tick stays taken until the
    lease runs out; then the next tick's winner expires the hold, once."""
    home, partner = await make_node("home", lease_seconds=30), await make_node("partner")
    await peer(partner, home)
    hold = await held_reservation(home, partner, clock)
    second = await add_replica(home)
    clock.advance(minutes=6)  # the hold is past its time
    expire = {job.name: job for job in scheduled_jobs(second.node)}["expire_holds"]
    ticks = JobTicks(home.node.db, clock, home.node_id, 30)

    now = clock.now()
    async with home.node.db.write() as conn:  # what the killed replica left behind
        tick = ticks.tick("expire_holds", 15)
        assert await lease_repo.claim_tick(
            conn, "expire_holds", tick, "killed:1:0", now, now + timedelta(seconds=30)
        )
    assert await expire.run() == "skipped"  # the same tick: already claimed
    clock.advance(seconds=15)
    assert await expire.run() == "skipped"  # the next tick: the dead run's lease still holds
    assert await updates_for(home.node, hold) == 0  # nothing was done yet

    clock.advance(seconds=16)  # lease over; a new tick
    assert await expire.run() == "ok"
    assert (await ticks_table(home.node))["expire_holds"][3] != "killed:1:0"
    assert await updates_for(home.node, hold) == 1  # expired once: one notice
    first = {job.name: job for job in scheduled_jobs(home.node)}["expire_holds"]
    assert await asyncio.gather(first.run(), expire.run()) == ["skipped", "skipped"]
    clock.advance(seconds=15)
    assert sorted(await asyncio.gather(first.run(), expire.run())) == ["ok", "skipped"]
    assert await updates_for(home.node, hold) == 1  # nothing done twice


async def test_a_running_job_holds_later_ticks_and_a_failed_one_frees_them(
    make_node: NodeFactory, add_replica: ReplicaFactory, clock: ManualClock
) -> None:
    home = await make_node("home")
    second = await add_replica(home)
    one = JobTicks(home.node.db, clock, home.node_id, 30)
    two = JobTicks(second.node.db, clock, home.node_id, 30)
    started, finish = asyncio.Event(), asyncio.Event()
    done: list[str] = []

    async def slow() -> None:
        started.set()
        await finish.wait()
        done.append("slow")

    async def quick() -> None:
        done.append("quick")

    async def broken() -> None:
        raise RuntimeError("the job broke")

    running = asyncio.create_task(one.run("job", 10, slow))
    await asyncio.wait_for(started.wait(), 30)
    clock.advance(seconds=10)  # the next tick, within the running one's lease (30 s)
    assert await two.run("job", 10, quick) == "skipped"
    finish.set()
    assert await running == "ok"
    assert await two.run("job", 10, quick) == "ok"  # the tick is free again, not lost
    clock.advance(seconds=10)
    assert await two.run("job", 10, broken) == "failed"
    clock.advance(seconds=10)
    assert await one.run("job", 10, quick) == "ok"  # a failure releases the lease
    assert done == ["slow", "quick", "quick"]
