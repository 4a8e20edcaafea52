"""Benchmark: the RPDE feed endpoint against the aiohttp trivial-handler ceiling.

Measures, in one run:

* ``ceiling_rps``: requests per second of a trivial aiohttp handler that
  returns a small constant JSON body (the ceiling: no endpoint served by
  aiohttp on this machine can be faster);
* ``poll_rps``: a *no-change poll* of ``GET /protocol/v1/feed`` by an active
  peer, ``afterChangeNumber`` = the newest change, which answers the RPDE
  last page (no items, ``next`` = itself), plus its size in bytes;
* ``page_rps``: *full-page fetches* (500 items) from a node with 10,000
  open sessions, each at a random position of the feed;
* ``page_server_ms_p50``/``_p95``: the server time of one full page,
  measured inside the server process (a timing middleware wrapped around
  the product app, outermost) with one request in flight at a time, so it
  is the cost of a page and not the wait behind other requests.

Every request carries its own fresh RFC 9421 signature (nonces are single
use and the node stores them); they are all signed before the timed phase.
The ceiling receives byte-for-byte the same requests, so both servers parse
the same headers.  Servers run in their own processes (pinned to one core
when the machine has two or more, the load generator on another), the
node on a real database: SQLite in a temporary directory, or PostgreSQL
with ``--database-url`` (a fresh schema, dropped afterwards).  The load
generator is a small keep-alive HTTP/1.1 client on raw asyncio streams,
cheaper per request than aiohttp's client so that it does not cap the
ceiling; ``--client aiohttp`` uses aiohttp's client instead.

Each figure is the median of several rounds.  The last line printed is one
JSON object with the figures.  Targets: a no-change poll answers in under
1 KB at ``>= 0.4 x`` the ceiling's requests per second; a full page costs
no more than 5 ms of server time.  Missed targets are reported, not
fatal; a failed request (any status but 200) is.

Usage: ``python bench/feed.py [--smoke] [--database-url URL] [--client raw|aiohttp]
[--profile FILE]`` (``--smoke``: a tiny size for CI; ``--profile``: run the
node process under cProfile and write its stats to FILE; figures then
include the profiler's overhead).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from _common import (
    STATS_PATH,
    BenchError,
    LoadResult,
    Measured,
    NodeConfig,
    Ready,
    Request,
    ServerProcess,
    ServerSpec,
    Tally,
    World,
    bench_parser,
    free_port,
    measure,
    percentile,
    pick_cpus,
    publish_rows,
    register_peer,
    run_raw,
    session_row,
    signed_descriptor,
    stop_all,
)

from node.db import feed as feed_repo
from node.identity import NodeIdentity
from protocol.httpsig import sign_request
from protocol.keys import SigningKey

TARGET_POLL_RATIO = 0.4
TARGET_POLL_BYTES = 1024
TARGET_PAGE_MS = 5.0
FEED_PATH = "/protocol/v1/feed"
NODE_ID = "bench.openseats.test"
READER_ID = "reader.openseats.test"
CEILING_BODY = b'{"items":[],"ok":true}'


# --- the node's data -------------------------------------------------------------


async def _seed(node: NodeConfig, sessions: int) -> tuple[SigningKey, int]:
    """A node with *sessions* open, signed, stamped sessions, and a reader peered.

    Returns the reader's key and the newest change number.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    database = node.database()
    try:
        await database.upgrade()
        identity = NodeIdentity(node.settings(), database)
        await identity.create_first_key(now)
        reader = SigningKey.generate()
        await register_peer(
            database, signed_descriptor(READER_ID, "Reader", "http://127.0.0.1:9", reader, now), now
        )
        rows = (session_row(index, now, NODE_ID) for index in range(sessions))
        await publish_rows(database, identity, rows, now)
        async with database.read() as conn:
            latest = await feed_repo.latest_change(conn)
    finally:
        await database.dispose()
    return reader, latest


# --- the load generator ----------------------------------------------------------


def sign_all(key: SigningKey, port: int, queries: list[str]) -> list[Request]:
    """One freshly signed request per query (each with its own nonce)."""
    now = datetime.now(UTC)
    signed = []
    for query in queries:
        path = FEED_PATH + query
        headers = sign_request(
            method="GET", url=f"http://127.0.0.1:{port}{path}", body=b"", key=key, now=now
        )
        signed.append(Request(path, tuple(headers)))
    return signed


async def run_aiohttp(
    port: int, requests: list[Request], concurrency: int, ready: Ready
) -> LoadResult:
    """The same with aiohttp's client and a pool of *concurrency* connections."""
    tally = Tally(len(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:

        async def touch() -> None:
            async with session.get(base + STATS_PATH) as response:
                await response.read()

        await asyncio.gather(*(touch() for _ in range(concurrency)))  # open the pool first
        await ready()

        async def worker() -> None:
            while (index := tally.next_index()) is not None:
                request = requests[index]
                sent = time.perf_counter()
                async with session.get(base + request.path, headers=list(request.headers)) as r:
                    body = await r.read()
                    head_len = sum(len(k) + len(v) + 4 for k, v in r.raw_headers) + 17
                    tally.record(r.status, head_len, body, time.perf_counter() - sent)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - start
    return tally.result(seconds)


async def measure_with(
    client: str, port: int, requests: list[Request], concurrency: int
) -> Measured:
    return await measure(port, requests, concurrency, run_raw if client == "raw" else run_aiohttp)


# --- the run ---------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    sessions: int
    page: int
    polls: int
    pages: int
    sequential: int
    rounds: int
    concurrency: int
    ceiling: int  # the ceiling is fast: more requests, so its timing is not noise


SMOKE = Sizes(
    sessions=300,
    page=100,
    polls=200,
    pages=20,
    sequential=10,
    rounds=1,
    concurrency=32,
    ceiling=400,
)
FULL = Sizes(
    sessions=10_000,
    page=500,
    polls=4000,
    pages=300,
    sequential=100,
    rounds=3,
    concurrency=32,
    ceiling=40_000,
)


def check_responses(poll: bytes, page: bytes, size: int, port: int) -> None:
    """The poll is RPDE's last page; the page holds *size* full items."""
    polled = json.loads(poll)
    if polled["items"] or not polled["next"].startswith(f"http://127.0.0.1:{port}{FEED_PATH}?"):
        raise BenchError(f"the no-change poll is not a last page: {poll[:300]!r}")
    items = json.loads(page)["items"]
    if len(items) != size or any(item["state"] != "updated" for item in items):
        raise BenchError(f"a full page has {len(items)} items, expected {size} updated ones")


@dataclass
class Rounds:
    ceiling_rps: list[float] = field(default_factory=list)
    ceiling_cpu: list[float] = field(default_factory=list)
    poll_rps: list[float] = field(default_factory=list)
    poll_cpu: list[float] = field(default_factory=list)
    poll_server_p50: list[float] = field(default_factory=list)
    page_rps: list[float] = field(default_factory=list)
    page_cpu: list[float] = field(default_factory=list)
    page_server_p50: list[float] = field(default_factory=list)
    page_server_p95: list[float] = field(default_factory=list)
    page_latency_p50: list[float] = field(default_factory=list)
    poll_bytes: int = 0
    poll_wire_bytes: int = 0
    page_bytes: int = 0


async def load_phases(
    args: argparse.Namespace,
    sizes: Sizes,
    key: SigningKey,
    latest: int,
    node_port: int,
    ceiling_port: int,
) -> Rounds:
    """Warm up, check the answers, then measure every phase in each round."""
    rng = random.Random(20261123)
    poll_query = f"?afterChangeNumber={latest}&limit={sizes.page}"

    def page_queries(count: int) -> list[str]:
        top = latest - sizes.page
        return [
            f"?afterChangeNumber={rng.randint(0, top)}&limit={sizes.page}" for _ in range(count)
        ]

    # Warm up both servers and check the answers are what we mean to measure.
    warm_polls = sign_all(key, node_port, [poll_query] * 100)
    await measure_with(args.client, ceiling_port, warm_polls, sizes.concurrency)
    polled = await measure_with(args.client, node_port, warm_polls, sizes.concurrency)
    paged = await measure_with(
        args.client, node_port, sign_all(key, node_port, page_queries(10)), sizes.concurrency
    )
    check_responses(polled.load.first_body, paged.load.first_body, sizes.page, node_port)

    result = Rounds()
    for number in range(1, sizes.rounds + 1):
        polls = sign_all(key, node_port, [poll_query] * sizes.polls)
        pages = sign_all(key, node_port, page_queries(sizes.pages))
        seq_polls = sign_all(key, node_port, [poll_query] * sizes.sequential)
        seq_pages = sign_all(key, node_port, page_queries(sizes.sequential))

        # The ceiling gets the very same request bytes as the poll that follows
        # (repeated: it checks no nonces).
        repeated = (polls * (sizes.ceiling // len(polls) + 1))[: sizes.ceiling]
        ceiling = await measure_with(args.client, ceiling_port, repeated, sizes.concurrency)
        poll = await measure_with(args.client, node_port, polls, sizes.concurrency)
        page = await measure_with(args.client, node_port, pages, sizes.concurrency)
        seq_poll = await measure_with(args.client, node_port, seq_polls, 1)
        seq_page = await measure_with(args.client, node_port, seq_pages, 1)

        result.ceiling_rps.append(ceiling.load.rps)
        result.ceiling_cpu.append(ceiling.cpu_ms)
        result.poll_rps.append(poll.load.rps)
        result.poll_cpu.append(poll.cpu_ms)
        result.poll_server_p50.append(percentile(seq_poll.server_ms, 0.5))
        result.page_rps.append(page.load.rps)
        result.page_cpu.append(page.cpu_ms)
        result.page_server_p50.append(percentile(seq_page.server_ms, 0.5))
        result.page_server_p95.append(percentile(seq_page.server_ms, 0.95))
        result.page_latency_p50.append(percentile(seq_page.load.latencies, 0.5) * 1000)
        result.poll_bytes = max(poll.load.body_bytes)
        result.poll_wire_bytes = max(poll.load.wire_bytes)
        result.page_bytes = round(statistics.median(page.load.body_bytes))
        print(
            f"  round {number}/{sizes.rounds}: ceiling {ceiling.load.rps:7.0f}/s  "
            f"poll {poll.load.rps:7.0f}/s  page {page.load.rps:6.0f}/s  "
            f"page server p50 {result.page_server_p50[-1]:.2f} ms",
            flush=True,
        )
    return result


def run(
    args: argparse.Namespace, sizes: Sizes, server_cpu: int | None, client_cpu: int | None
) -> Rounds:
    """Seed a node, start both servers, measure; always stop and clean up."""
    with tempfile.TemporaryDirectory(prefix="openseats-bench-feed-") as tmp:
        world = World(Path(tmp), args.database_url)
        try:
            node = world.add("node", NODE_ID, "Bench")
            asyncio.run(world.create_schemas())
            started = time.perf_counter()
            key, latest = asyncio.run(_seed(node, sizes.sessions))
            print(
                f"seeded {sizes.sessions} sessions ({world.engine}) "
                f"in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            profile = str(Path(args.profile).resolve()) if args.profile else None
            specs = [
                ServerSpec.for_ceiling(free_port(), server_cpu, FEED_PATH, CEILING_BODY),
                ServerSpec.for_node(node, server_cpu, profile=profile),
            ]
            servers: list[ServerProcess] = []
            try:
                for spec in specs:
                    servers.append(ServerProcess(spec))
                    servers[-1].start()
                if client_cpu is not None:
                    os.sched_setaffinity(0, {client_cpu})
                return asyncio.run(load_phases(args, sizes, key, latest, node.port, specs[0].port))
            finally:
                stop_all(servers)
        finally:
            world.drop_schemas()


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--client", choices=["raw", "aiohttp"], default="raw")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the node process into FILE")
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else FULL
    engine = "postgresql" if args.database_url else "sqlite"
    server_cpu, client_cpu = pick_cpus()
    try:
        rounds = run(args, sizes, server_cpu, client_cpu)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    median = statistics.median
    ceiling_rps, poll_rps, page_rps = (
        median(rounds.ceiling_rps),
        median(rounds.poll_rps),
        median(rounds.page_rps),
    )
    poll_ratio, page_ratio = poll_rps / ceiling_rps, page_rps / ceiling_rps
    page_p50, page_p95 = median(rounds.page_server_p50), median(rounds.page_server_p95)
    # Server CPU per request * requests per second: how busy the ceiling's core was.
    busy = median(rounds.ceiling_cpu) * ceiling_rps / 1000
    poll_cpu_ratio = median(rounds.ceiling_cpu) / median(rounds.poll_cpu)
    pinned = (
        f"server on cpu {server_cpu}, client on cpu {client_cpu}"
        if server_cpu is not None
        else "unpinned"
    )
    print(f"engine {engine}, {sizes.sessions} sessions, page of {sizes.page} items")
    print(f"concurrency {sizes.concurrency}, client {args.client}, {pinned}")
    print(f"aiohttp trivial handler (ceiling)  {ceiling_rps:8.0f} req/s")
    print(
        f"no-change poll                     {poll_rps:8.0f} req/s  "
        f"{poll_ratio:5.2f} x ceiling (target >= {TARGET_POLL_RATIO})"
    )
    print(
        f"no-change poll size                {rounds.poll_bytes:8d} bytes body, "
        f"{rounds.poll_wire_bytes} with headers (target < {TARGET_POLL_BYTES})"
    )
    page_label = f"full page ({sizes.page} items)"
    print(f"{page_label:35s}{page_rps:8.0f} req/s  {page_ratio:7.4f} x ceiling")
    print(f"full page size                     {rounds.page_bytes:8d} bytes")
    print(
        f"full page server time              {page_p50:8.2f} ms p50, {page_p95:.2f} ms p95 "
        f"(target <= {TARGET_PAGE_MS} ms)"
    )
    print(f"full page client latency (1 in flight) {median(rounds.page_latency_p50):.2f} ms p50")
    print(
        "server CPU per request             "
        f"ceiling {median(rounds.ceiling_cpu):.3f} ms, poll {median(rounds.poll_cpu):.3f} ms, "
        f"page {median(rounds.page_cpu):.2f} ms"
    )
    print(f"no-change poll server time         {median(rounds.poll_server_p50):8.2f} ms p50")
    print(
        f"ceiling server busy                {busy:8.2f} of one core"
        + ("  (client-bound: the ceiling is a lower bound)" if busy < 0.9 else "")
    )
    print(
        f"poll / ceiling by server CPU       {poll_cpu_ratio:8.3f}  "
        "(the ratio if neither side were client-bound)"
    )
    result = {
        "engine": engine,
        "sessions": sizes.sessions,
        "concurrency": sizes.concurrency,
        "client": args.client,
        "rounds": sizes.rounds,
        "ceiling_rps": round(ceiling_rps),
        "poll_rps": round(poll_rps),
        "poll_ratio": round(poll_ratio, 3),
        "poll_bytes": rounds.poll_bytes,
        "poll_wire_bytes": rounds.poll_wire_bytes,
        "poll_server_ms_p50": round(median(rounds.poll_server_p50), 3),
        "page_items": sizes.page,
        "page_bytes": rounds.page_bytes,
        "page_rps": round(page_rps, 1),
        "page_ratio": round(page_ratio, 4),
        "page_server_ms_p50": round(page_p50, 3),
        "page_server_ms_p95": round(page_p95, 3),
        "page_latency_ms_p50": round(median(rounds.page_latency_p50), 3),
        "ceiling_server_cpu_ms": round(median(rounds.ceiling_cpu), 4),
        "poll_server_cpu_ms": round(median(rounds.poll_cpu), 4),
        "page_server_cpu_ms": round(median(rounds.page_cpu), 3),
        "ceiling_server_busy": round(busy, 3),
        "poll_cpu_ratio": round(poll_cpu_ratio, 4),
        "target_poll_ratio": TARGET_POLL_RATIO,
        "target_poll_bytes": TARGET_POLL_BYTES,
        "target_page_ms": TARGET_PAGE_MS,
        "meets_poll_target": poll_ratio >= TARGET_POLL_RATIO,
        "meets_bytes_target": rounds.poll_wire_bytes < TARGET_POLL_BYTES,
        "meets_page_target": page_p50 <= TARGET_PAGE_MS,
        "profile": args.profile,
        "smoke": args.smoke,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
