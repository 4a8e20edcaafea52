"""Benchmark: reservations between nodes, end to end, with contention.

Six nodes run in their own processes on real databases: a host and five
partners, peered with keys pinned (as after completed peerings).  The host
has 1,000 open sessions (the *uncontended* ones: each partner books only
its own fifth of them) and, per round, one session with 40 partner seats
that all five partners book at once (the *contended* one, with a
waitlist).  Each partner's catalogue is filled by a real pull of the
host's feed before the partners start.

Measures, in each round:

* ``e2e_rps``: reservations per second end to end.  The bench posts every
  reservation of the round to the partners' portal API
  (``POST /api/v1/sessions/{id}@{host}/reservations``, a portal token,
  several connections per partner, the contended requests spread through
  the uncontended ones) and then polls each partner's
  ``GET /api/v1/reservations?state=requested&limit=1`` until it is empty.
  The clock runs from the first POST until no reservation at any partner
  is ``requested`` any more, i.e. until the host's answer to the last
  signed ``PUT`` (sent by the partner's outbox, one message in flight per
  peer) was recorded; that moment is read from the partners' databases
  afterwards, so the polls only say when to look and can be sparse.
  ``answer_ms_p50``/``_p95`` is each reservation's time from its commit at
  the partner to the recorded answer (both the partner's clock).
* ``ceiling_rps``: the host alone deciding signed ``PUT``s, sent by the
  bench straight to the host under the five partners' keys, one in flight
  per partner as the protocol allows (pre-signed, the same body shape as a
  partner's): no end-to-end figure can beat it.  ``ratio`` = e2e / ceiling.
  These reservations (attendee refs ``ceiling-…``) exist at the host only.
* ``confirmed_ratio``: confirmed seats of the contended session / 40 (the
  host's view; 1.0 means every seat went and none twice).
* CPU time per reservation of the host and of all partners together.

Each figure is the median of the rounds.  After the rounds, once every
outbox has drained (a short settle), the bench reads all six databases and
counts invariant violations: a session with more seats confirmed or held
than its quota (or a seat count that disagrees with its reservations); a
reservation missing on either side; the host's state or version differing
from the partner's; a reservation still ``requested``; a uuid twice, or
one attendee seated twice in a session; an outbox dead letter.  Target:
``e2e_rps >= 300`` with zero violations.  Missed targets are reported, not
fatal; a failed request (a status other than the expected one) is.

Nodes use SQLite files in a temporary directory, or PostgreSQL with
``--database-url`` (a fresh schema per node, dropped afterwards).  The
nodes run their scheduled jobs as in production.  The last line printed is
one JSON object with the figures.

Usage: ``python bench/reserve.py [--smoke] [--database-url URL] [--rounds N]
[--per-partner N] [--profile DIR]`` (``--smoke``: tiny sizes for CI;
``--per-partner``: uncontended reservations per partner and round, 80 by
default, plus 20 each for the contended session; ``--profile``: run every
node under cProfile and write ``DIR/<node>.prof``; figures then include
the profiler's overhead).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import (
    BenchError,
    NodeConfig,
    Request,
    ServerProcess,
    ServerSpec,
    World,
    bench_parser,
    fetch_once,
    fetch_stats,
    percentile,
    publish_rows,
    register_peer,
    run_raw,
    session_row,
    stop_all,
)
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from node.catalogue.merge import store_local
from node.db import Database
from node.db import sessions as session_repo
from node.db import tokens as token_repo
from node.db.tables import outbox, reservations_in, reservations_out, sessions
from node.identity import NodeIdentity
from node.runtime import open_node
from protocol.httpsig import sign_request
from protocol.keys import SigningKey
from protocol.models import format_timestamp

TARGET_RPS = 300.0
CONTENDED_SEATS = 40
HOST = ("host", "host.openseats.test", "Gastgeber")
PARTNERS = [(f"p{n}", f"p{n}.openseats.test", f"Partner {n}") for n in range(1, 6)]
JOIN_URL = "https://meet.example.org/bench"
POLL_SECONDS = 0.05
SETTLE_SECONDS = 60.0
CEILING_PREFIX = "ceiling-"


@dataclass(frozen=True)
class Sizes:
    sessions: int  # uncontended sessions at the host
    uncontended: int  # reservations per partner per round
    contended: int  # requests per partner per round for the 40 seats
    warmup: int  # reservations per partner before the first round
    ceiling: int  # signed PUTs per round, host alone
    connections: int  # portal connections per partner
    rounds: int


SMOKE = Sizes(
    sessions=20, uncontended=10, contended=10, warmup=2, ceiling=50, connections=2, rounds=1
)
FULL = Sizes(
    sessions=1000,
    uncontended=80,
    contended=20,
    warmup=10,
    ceiling=300,
    connections=4,
    rounds=3,
)


# --- the world: a host, five partners, sessions, peerings ------------------------------


@dataclass
class Setup:
    host: NodeConfig
    partners: list[NodeConfig]
    keys: dict[str, SigningKey]  # each partner's signing key (for the ceiling)
    tokens: dict[str, str]  # each partner's portal token
    uncontended: list[str]  # session ids; partner i books those with index % 5 == i
    contended: list[str]  # one per round


def _session_rows(sizes: Sizes, now: datetime, rounds: int) -> tuple[list[Any], list[str]]:
    """The host's sessions: uncontended ones with room for every booking, then contended."""
    per_session = (
        (sizes.warmup + sizes.uncontended * rounds) * len(PARTNERS) + sizes.ceiling * rounds
    ) // sizes.sessions + 1
    roomy = max(CONTENDED_SEATS, 2 * per_session)
    rows = []
    for index in range(sizes.sessions + rounds):
        seats = roomy if index < sizes.sessions else CONTENDED_SEATS
        row = session_row(index, now, HOST[1])
        rows.append(
            replace(
                row,
                title=f"Lernsession {index}" + (" (begehrt)" if index >= sizes.sessions else ""),
                open_seats=seats,
                seats_taken=0,
                seats_published=0,
                join_url=f"{JOIN_URL}/{row.id}",
            )
        )
    return rows, [row.id for row in rows]


async def prepare(world: World, sizes: Sizes, rounds: int) -> Setup:
    """Databases, keys, peerings, tokens and the host's sessions (nothing is running yet)."""
    now = datetime.now(UTC).replace(microsecond=0)
    await world.create_schemas()
    host, partners = world.nodes["host"], [world.nodes[name] for name, _, _ in PARTNERS]
    databases = {config.name: config.database() for config in (host, *partners)}
    try:
        identities = {}
        keys = {}
        for config in (host, *partners):
            database = databases[config.name]
            await database.upgrade()
            identities[config.name] = NodeIdentity(config.settings(), database)
            keys[config.name] = await identities[config.name].create_first_key(now)
        host_descriptor = identities["host"].descriptor(now)
        tokens = {}
        for partner in partners:
            await register_peer(databases["host"], identities[partner.name].descriptor(now), now)
            await register_peer(databases[partner.name], host_descriptor, now)
            async with databases[partner.name].write() as conn:
                tokens[partner.name] = await token_repo.create(conn, "portal", "bench", now)
        rows, ids = _session_rows(sizes, now, rounds)
        await publish_rows(databases["host"], identities["host"], rows, now)
        async with databases["host"].write() as conn:  # its own catalogue, as the node does
            for row in rows:
                await store_local(conn, row, host.node_id, host.display_name, now)
    finally:
        for database in databases.values():
            await database.dispose()
    return Setup(
        host,
        partners,
        {partner.name: keys[partner.name] for partner in partners},
        tokens,
        ids[: sizes.sessions],
        ids[sizes.sessions :],
    )


async def pull_catalogues(setup: Setup) -> None:
    """Each partner pulls the host's feed (the real path) before it starts serving."""
    expected = len(setup.uncontended) + len(setup.contended)

    async def pull(partner: NodeConfig) -> None:
        database = partner.database()
        try:
            async with open_node(partner.settings(), db=database, migrate=False) as node:
                pulled = await node.subscriber.pull(setup.host.node_id, force=True)
        finally:
            await database.dispose()
        if pulled is None or pulled.merged != expected:
            raise BenchError(f"{partner.name} pulled {pulled}, expected {expected} merged")

    await asyncio.gather(*(pull(partner) for partner in setup.partners))


# --- the load ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Booking:
    session_id: str
    ref: str


def plan_round(
    setup: Setup, sizes: Sizes, label: str, contended: str | None
) -> list[list[Booking]]:
    """Each partner's bookings: its own uncontended sessions, the contended ones spread in."""
    rng = random.Random(f"{label}-plan")
    plans = []
    for number, partner in enumerate(setup.partners):
        own = setup.uncontended[number :: len(setup.partners)]
        count = sizes.uncontended if contended else sizes.warmup
        offset = rng.randrange(len(own))
        bookings = [
            Booking(own[(offset + i) % len(own)], f"{label}-{partner.name}-u{i}")
            for i in range(count)
        ]
        if contended:
            bookings += [
                Booking(contended, f"{label}-{partner.name}-c{i}") for i in range(sizes.contended)
            ]
            rng.shuffle(bookings)
        plans.append(bookings)
    return plans


def portal_posts(setup: Setup, partner: NodeConfig, bookings: list[Booking]) -> list[Request]:
    headers = (
        ("Authorization", f"Bearer {setup.tokens[partner.name]}"),
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
    )
    return [
        Request(
            f"/api/v1/sessions/{booking.session_id}@{setup.host.node_id}/reservations",
            headers,
            method="POST",
            body=json.dumps(
                {"attendee": {"ref": booking.ref, "display_name": f"Person {booking.ref}"}}
            ).encode(),
        )
        for booking in bookings
    ]


async def _until_answered(partner: NodeConfig, token: str, started: float, limit: float) -> None:
    """Poll the partner until none of its reservations is ``requested``.

    The poll only tells when to look; the round's end is read from the
    database afterwards (when the last answer was recorded), so polls can be
    sparse: about 50 per round, at most 20 a second, which the partner
    hardly notices.
    """
    request = Request(
        "/api/v1/reservations?state=requested&limit=1",
        (("Authorization", f"Bearer {token}"), ("Accept", "application/json")),
    )
    while True:
        status, body = await fetch_once(partner.port, request)
        if status != 200:
            raise BenchError(f"{partner.name}: listing reservations answered {status}: {body!r}")
        if not json.loads(body)["items"]:
            return
        elapsed = time.perf_counter() - started
        if elapsed > limit:
            raise BenchError(f"{partner.name}: reservations still requested after {limit:.0f} s")
        await asyncio.sleep(min(max(elapsed / 50, POLL_SECONDS), 1.0))


@dataclass
class RoundResult:
    reservations: int
    seconds: float  # first POST .. last answer recorded
    post_seconds: float  # first POST .. last POST accepted
    cpu: dict[str, float]  # node name -> CPU seconds during the round
    latencies: list[float]  # per reservation: commit at the partner .. answer recorded

    @property
    def rps(self) -> float:
        return self.reservations / self.seconds


async def _cpu(nodes: list[NodeConfig]) -> dict[str, float]:
    stats = await asyncio.gather(*(fetch_stats(node.port) for node in nodes))
    return {node.name: float(found["cpu"]) for node, found in zip(nodes, stats, strict=True)}


async def answers(
    databases: dict[str, Database], label: str
) -> tuple[list[float], datetime | None]:
    """The round's answer latencies (seconds) and when its last answer was recorded."""
    latencies = []
    last = None
    for name, database in databases.items():
        if name == "host":
            continue
        async with database.read() as conn:
            rows = await conn.execute(
                select(reservations_out.c.created_at, reservations_out.c.updated_at).where(
                    reservations_out.c.attendee_ref.like(f"{label}-%"),
                    reservations_out.c.state != "requested",
                )
            )
            for row in rows:
                latencies.append((row.updated_at - row.created_at).total_seconds())
                last = row.updated_at if last is None else max(last, row.updated_at)
    return latencies, last


async def e2e_round(
    setup: Setup,
    databases: dict[str, Database],
    plans: list[list[Booking]],
    label: str,
    connections: int,
) -> RoundResult:
    """Post every booking to the partners, wait for every answer, time it."""
    nodes = [setup.host, *setup.partners]
    posts = [
        portal_posts(setup, partner, bookings)
        for partner, bookings in zip(setup.partners, plans, strict=True)
    ]
    total = sum(len(p) for p in posts)
    limit = 120.0 + total / 2
    before = await _cpu(nodes)
    posted: list[float] = []

    async def one_partner(partner: NodeConfig, requests: list[Request]) -> None:
        load = await run_raw(partner.port, requests, connections, ok=(202,))
        if load.error is not None:
            raise BenchError(f"{partner.name}: a portal POST failed: {load.error}")
        posted.append(time.perf_counter())
        await _until_answered(partner, setup.tokens[partner.name], start, limit)

    started_at = datetime.now(UTC)
    start = time.perf_counter()
    await asyncio.gather(
        *(
            one_partner(partner, requests)
            for partner, requests in zip(setup.partners, posts, strict=True)
        )
    )
    after = await _cpu(nodes)
    latencies, last = await answers(databases, label)
    if last is None or len(latencies) != total:
        raise BenchError(f"{len(latencies)} of {total} reservations answered")
    return RoundResult(
        total,
        (last - started_at).total_seconds(),
        max(posted) - start,
        {name: after[name] - before[name] for name in after},
        latencies,
    )


def ceiling_puts(setup: Setup, sizes: Sizes, label: str) -> list[list[Request]]:
    """Signed PUTs straight to the host, as each partner's outbox would send them."""
    now = datetime.now(UTC)
    issued = format_timestamp(now.replace(microsecond=0))
    per_partner = sizes.ceiling // len(setup.partners)
    found = []
    for number, partner in enumerate(setup.partners):
        own = setup.uncontended[number :: len(setup.partners)]
        requests = []
        for i in range(per_partner):
            reservation_id = str(uuid.uuid4())
            ref = f"{CEILING_PREFIX}{label}-{partner.name}-{i}"
            body = json.dumps(
                {
                    "type": "reservation_request",
                    "id": reservation_id,
                    "requester": partner.node_id,
                    "session": {"origin": setup.host.node_id, "id": own[i % len(own)]},
                    "attendee": {"ref": ref, "display_name": f"Person {ref}"},
                    "seats": 1,
                    "hold": False,
                    "issued_at": issued,
                },
                ensure_ascii=False,
                separators=(",", ":"),
            ).encode()
            path = f"/protocol/v1/reservations/{reservation_id}"
            headers = sign_request(
                method="PUT",
                url=setup.host.url + path,
                body=body,
                key=setup.keys[partner.name],
                now=now,
            )
            headers.append(("Accept", "application/json"))
            requests.append(Request(path, tuple(headers), method="PUT", body=body))
        found.append(requests)
    return found


async def ceiling_round(setup: Setup, sizes: Sizes, label: str) -> tuple[float, float]:
    """The host's decision rate for signed PUTs, and its CPU ms per decision."""
    puts = ceiling_puts(setup, sizes, label)
    before = await _cpu([setup.host])
    start = time.perf_counter()
    loads = await asyncio.gather(
        *(run_raw(setup.host.port, requests, 1, ok=(201,)) for requests in puts)
    )
    seconds = time.perf_counter() - start
    after = await _cpu([setup.host])
    for load in loads:
        if load.error is not None:
            raise BenchError(f"a signed PUT to the host failed: {load.error}")
    count = sum(load.requests for load in loads)
    return count / seconds, (after["host"] - before["host"]) / count * 1000


# --- settling and checking ---------------------------------------------------------------


async def _count(conn: AsyncConnection, table: Table, *where: Any) -> int:
    return int(
        (await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one()
    )


async def settle(databases: dict[str, Database], limit: float = SETTLE_SECONDS) -> float:
    """Wait until no outbox holds a pending message and the host's seats are published."""
    started = time.perf_counter()
    while True:
        busy = 0
        for database in databases.values():
            async with database.read() as conn:
                busy += await _count(conn, outbox, outbox.c.state == "pending")
        async with databases["host"].read() as conn:
            busy += len(await session_repo.seats_unpublished(conn, datetime.now(UTC)))
        if not busy:
            return time.perf_counter() - started
        if time.perf_counter() - started > limit:
            raise BenchError(f"the nodes did not settle in {limit:.0f} s ({busy} still to do)")
        await asyncio.sleep(0.1)


@dataclass
class Checked:
    violations: Counter[str] = field(default_factory=Counter)
    host_states: Counter[str] = field(default_factory=Counter)
    contended: dict[str, Counter[str]] = field(default_factory=dict)  # session -> states
    contended_by_partner: dict[str, Counter[str]] = field(default_factory=dict)


async def check(setup: Setup, databases: dict[str, Database]) -> Checked:
    """Count invariant violations across all six databases (after settling)."""
    result = Checked()
    async with databases["host"].read() as conn:
        host_rows = list(
            await conn.execute(
                select(
                    reservations_in.c.id,
                    reservations_in.c.requester,
                    reservations_in.c.session_id,
                    reservations_in.c.attendee_ref,
                    reservations_in.c.seats,
                    reservations_in.c.state,
                    reservations_in.c.version,
                )
            )
        )
        session_rows = list(
            await conn.execute(select(sessions.c.id, sessions.c.open_seats, sessions.c.seats_taken))
        )
        result.violations["dead_letters"] += await _count(conn, outbox, outbox.c.state == "dead")

    seated: Counter[str] = Counter()
    attendees: Counter[tuple[str, str, str]] = Counter()
    ids: Counter[str] = Counter()
    for row in host_rows:
        ids[row.id] += 1
        result.host_states[row.state] += 1
        if row.state in ("confirmed", "held"):
            seated[row.session_id] += row.seats
            attendees[(row.session_id, row.requester, row.attendee_ref)] += 1
    for row in session_rows:
        if seated[row.id] > row.open_seats:
            result.violations["over_quota"] += 1
        if seated[row.id] != row.seats_taken:
            result.violations["seat_count_mismatch"] += 1
    result.violations["duplicate_uuid_host"] += sum(1 for n in ids.values() if n > 1)
    result.violations["attendee_seated_twice"] += sum(1 for n in attendees.values() if n > 1)

    host_by_id = {row.id: row for row in host_rows}
    contended = set(setup.contended)
    seen_at_partners: set[str] = set()
    for partner in setup.partners:
        async with databases[partner.name].read() as conn:
            rows = list(
                await conn.execute(
                    select(
                        reservations_out.c.id,
                        reservations_out.c.session_id,
                        reservations_out.c.state,
                        reservations_out.c.version,
                        reservations_out.c.delivery_error,
                    )
                )
            )
            result.violations["dead_letters"] += await _count(
                conn, outbox, outbox.c.state == "dead"
            )
        partner_ids: Counter[str] = Counter(row.id for row in rows)
        result.violations["duplicate_uuid_partner"] += sum(1 for n in partner_ids.values() if n > 1)
        for row in rows:
            seen_at_partners.add(row.id)
            if row.state == "requested":
                result.violations["still_requested"] += 1
            hosted = host_by_id.get(row.id)
            if hosted is None:
                result.violations["missing_at_host"] += 1
                continue
            if hosted.requester != partner.node_id:
                result.violations["wrong_requester"] += 1
            if (hosted.state, hosted.version) != (row.state, row.version):
                result.violations["state_mismatch"] += 1
            if row.session_id in contended:
                by_session = result.contended.setdefault(row.session_id, Counter())
                by_session[hosted.state] += hosted.seats
                by_partner = result.contended_by_partner.setdefault(row.session_id, Counter())
                if hosted.state == "confirmed":
                    by_partner[partner.name] += hosted.seats
    for row in host_rows:
        if row.id not in seen_at_partners and not row.attendee_ref.startswith(CEILING_PREFIX):
            result.violations["missing_at_partner"] += 1
    return result


# --- the run -----------------------------------------------------------------------------


@dataclass
class Outcome:
    rounds: list[RoundResult] = field(default_factory=list)
    ceiling_rps: list[float] = field(default_factory=list)
    ceiling_cpu_ms: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # seconds
    settle_seconds: float = 0.0
    checked: Checked | None = None


async def load_phases(setup: Setup, sizes: Sizes, rounds: int) -> Outcome:
    databases = {config.name: config.database() for config in (setup.host, *setup.partners)}
    outcome = Outcome()
    try:
        warm_plan = plan_round(setup, sizes, "warm", None)
        warm = await e2e_round(setup, databases, warm_plan, "warm", sizes.connections)
        await ceiling_round(setup, replace(sizes, ceiling=min(sizes.ceiling, 50)), "warm")
        print(f"  warm-up: {warm.reservations} reservations in {warm.seconds:.2f} s", flush=True)
        for number in range(1, rounds + 1):
            label = f"r{number}"
            await settle(databases)
            rps, cpu_ms = await ceiling_round(setup, sizes, label)
            outcome.ceiling_rps.append(rps)
            outcome.ceiling_cpu_ms.append(cpu_ms)
            await settle(databases)
            plans = plan_round(setup, sizes, label, setup.contended[number - 1])
            result = await e2e_round(setup, databases, plans, label, sizes.connections)
            outcome.rounds.append(result)
            latencies = result.latencies
            outcome.latencies += latencies
            print(
                f"  round {number}/{rounds}: {result.reservations} reservations in "
                f"{result.seconds:.2f} s = {result.rps:6.1f}/s end to end "
                f"(posted in {result.post_seconds:.2f} s); answer p50 "
                f"{percentile(latencies, 0.5) * 1000:.0f} ms; host alone {rps:6.1f}/s",
                flush=True,
            )
        outcome.settle_seconds = await settle(databases)
        outcome.checked = await check(setup, databases)
    finally:
        for database in databases.values():
            await database.dispose()
    return outcome


def run(args: argparse.Namespace, sizes: Sizes, rounds: int) -> tuple[Setup, Outcome]:
    """Seed, start the six nodes, measure, check; always stop servers and clean up."""
    profile_dir = Path(args.profile).resolve() if args.profile else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="openseats-bench-reserve-") as tmp:
        world = World(Path(tmp), args.database_url)
        servers: list[ServerProcess] = []
        try:
            world.add(*HOST)
            for partner in PARTNERS:
                world.add(*partner)
            started = time.perf_counter()
            setup = asyncio.run(prepare(world, sizes, rounds))
            prepared = time.perf_counter()

            for node in (setup.host, *setup.partners):
                profile = str(profile_dir / f"{node.name}.prof") if profile_dir else None
                spec = ServerSpec.for_node(node, None, profile=profile, scheduler=True)
                servers.append(ServerProcess(spec))
                servers[-1].launch()  # all at once: they start in parallel
            servers[0].wait_ready()
            # The partners' catalogues fill while they start (a database may
            # have writers in several processes).
            asyncio.run(pull_catalogues(setup))
            for server in servers[1:]:
                server.wait_ready()
            print(
                f"{world.engine}: host with {sizes.sessions} + {rounds} sessions, "
                f"{len(PARTNERS)} partners with full catalogues "
                f"(seeded in {prepared - started:.1f} s, started in "
                f"{time.perf_counter() - prepared:.1f} s)",
                flush=True,
            )
            return setup, asyncio.run(load_phases(setup, sizes, rounds))
        finally:
            stop_all(servers)
            world.drop_schemas()


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--rounds", type=int, help="measured rounds (default 3; smoke 1)")
    parser.add_argument(
        "--per-partner",
        type=int,
        help="uncontended reservations per partner and round (default 80; smoke 20)",
    )
    parser.add_argument("--profile", metavar="DIR", help="cProfile every node into DIR")
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else FULL
    if args.per_partner is not None:
        if args.per_partner < 1:
            parser.error("--per-partner must be >= 1")
        sizes = replace(sizes, uncontended=args.per_partner)
    rounds = args.rounds or sizes.rounds
    if rounds < 1:
        parser.error("--rounds must be >= 1")
    engine = "postgresql" if args.database_url else "sqlite"
    try:
        setup, outcome = run(args, sizes, rounds)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    checked = outcome.checked
    assert checked is not None
    median = statistics.median
    e2e = median(r.rps for r in outcome.rounds)
    ceiling = median(outcome.ceiling_rps)
    post_rps = median(r.reservations / r.post_seconds for r in outcome.rounds)
    host_cpu = median(r.cpu["host"] / r.reservations * 1000 for r in outcome.rounds)
    partners_cpu = median(
        sum(cpu for name, cpu in r.cpu.items() if name != "host") / r.reservations * 1000
        for r in outcome.rounds
    )
    confirmed = [checked.contended.get(sid, Counter())["confirmed"] for sid in setup.contended]
    confirmed_ratio = median(c / CONTENDED_SEATS for c in confirmed)
    violations = {name: count for name, count in sorted(checked.violations.items()) if count}
    total_violations = sum(violations.values())
    p50, p95 = (percentile(outcome.latencies, f) * 1000 for f in (0.5, 0.95))
    contended_requests = sizes.contended * len(PARTNERS)
    per_round = (sizes.uncontended + sizes.contended) * len(PARTNERS)
    last = setup.contended[-1]
    print(
        f"engine {engine}; {len(PARTNERS)} partners, {per_round} reservations a round "
        f"({contended_requests} of them for one session with {CONTENDED_SEATS} seats), "
        f"{rounds} rounds, {sizes.connections} portal connections per partner, unpinned"
    )
    print(
        f"end to end (POST .. answer seen)  {e2e:8.1f} reservations/s  "
        f"(target >= {TARGET_RPS:.0f}: {'met' if e2e >= TARGET_RPS else 'MISSED'})"
    )
    print(
        f"host alone, signed PUTs (ceiling) {ceiling:8.1f} decisions/s  ratio {e2e / ceiling:.3f}"
    )
    print(f"portal POSTs accepted             {post_rps:8.1f} /s")
    print(f"answer latency (commit .. answer) p50 {p50:.0f} ms, p95 {p95:.0f} ms")
    print(
        f"CPU per reservation               host {host_cpu:.2f} ms, partners {partners_cpu:.2f} ms "
        f"(host alone {median(outcome.ceiling_cpu_ms):.2f} ms per decision)"
    )
    print(
        f"contended session                 confirmed {confirmed} of {CONTENDED_SEATS} "
        f"(ratio {confirmed_ratio:.3f}); last round by partner "
        f"{dict(sorted(checked.contended_by_partner.get(last, Counter()).items()))}, "
        f"states {dict(checked.contended.get(last, Counter()))}"
    )
    print(f"host reservations by state        {dict(sorted(checked.host_states.items()))}")
    print(
        f"invariant violations              {total_violations} {violations or ''}"
        f"(settled in {outcome.settle_seconds:.2f} s)"
    )
    result = {
        "engine": engine,
        "partners": len(PARTNERS),
        "sessions": sizes.sessions,
        "contended_seats": CONTENDED_SEATS,
        "contended_requests": contended_requests,
        "reservations_per_round": per_round,
        "rounds": rounds,
        "connections_per_partner": sizes.connections,
        "e2e_rps": round(e2e, 1),
        "e2e_rps_rounds": [round(r.rps, 1) for r in outcome.rounds],
        "ceiling_rps": round(ceiling, 1),
        "ratio": round(e2e / ceiling, 3),
        "post_rps": round(post_rps, 1),
        "answer_ms_p50": round(p50, 1),
        "answer_ms_p95": round(p95, 1),
        "host_cpu_ms_per_reservation": round(host_cpu, 3),
        "partners_cpu_ms_per_reservation": round(partners_cpu, 3),
        "ceiling_host_cpu_ms": round(median(outcome.ceiling_cpu_ms), 3),
        "confirmed": confirmed,
        "confirmed_ratio": round(confirmed_ratio, 3),
        "invariant_violations": total_violations,
        "violations": violations,
        "settle_seconds": round(outcome.settle_seconds, 2),
        "target_rps": TARGET_RPS,
        "meets_rps_target": e2e >= TARGET_RPS,
        "meets_invariants": total_violations == 0,
        "profile": args.profile,
        "smoke": args.smoke,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
