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
import contextlib
import json
import multiprocessing
import os
import random
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from node.app import create_app
from node.db import Database
from node.db import feed as feed_repo
from node.db import peers as peer_repo
from node.db import sessions as session_repo
from node.db.engine import normalise_url
from node.db.sessions import SessionRow
from node.identity import NodeIdentity
from node.publishing.service import announcement_for
from node.settings import Settings
from protocol.httpsig import sign_request
from protocol.keyring import PinnedKeys, sign_descriptor
from protocol.keys import SigningKey
from protocol.models import CurrentKey, Endpoints, NodeDescriptorBody

TARGET_POLL_RATIO = 0.4
TARGET_POLL_BYTES = 1024
TARGET_PAGE_MS = 5.0
FEED_PATH = "/protocol/v1/feed"
STATS_PATH = "/_bench/stats"
NODE_ID = "bench.openseats.test"
READER_ID = "reader.openseats.test"
CEILING_BODY = b'{"items":[],"ok":true}'
START_TIMEOUT = 60.0


class BenchError(Exception):
    """A request failed or a server did not start: the run is invalid."""


# --- the servers (each in its own process) ---------------------------------------


@dataclass(frozen=True)
class ServerSpec:
    kind: str  # "node" | "ceiling"
    port: int
    cpu: int | None
    data_dir: str = ""
    database_url: str = ""
    schema: str | None = None
    profile: str | None = None


def node_settings(data_dir: Path, port: int) -> Settings:
    return Settings(
        node_id=NODE_ID,
        base_url=f"http://127.0.0.1:{port}",
        display_name="Bench",
        data_dir=data_dir,
        # One reader sends every request; the per-peer limit would answer 429.
        rate_limit_per_minute=10**9,
    )


@dataclass
class _Stats:
    durations: list[float] = field(default_factory=list)


def _instrument(app: web.Application, stats: _Stats) -> None:
    """Time every request outermost, and expose the timings and CPU time."""

    @web.middleware
    async def timing(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == STATS_PATH:
            return await handler(request)
        start = time.perf_counter()
        try:
            return await handler(request)
        finally:
            stats.durations.append(time.perf_counter() - start)

    async def stats_handler(request: web.Request) -> web.Response:
        body = {"cpu": time.process_time(), "durations": stats.durations}
        if "reset" in request.query:
            stats.durations = []
        return web.json_response(body)

    app.middlewares.insert(0, timing)
    app.router.add_get(STATS_PATH, stats_handler)


async def _ceiling_handler(request: web.Request) -> web.Response:
    return web.Response(body=CEILING_BODY, content_type="application/json")


async def _serve(spec: ServerSpec, ready: Connection) -> None:
    database: Database | None = None
    if spec.kind == "node":
        settings = node_settings(Path(spec.data_dir), spec.port)
        database = Database(spec.database_url, schema=spec.schema)
        app = create_app(settings, db=database, run_scheduler=False)
    else:
        app = web.Application()
        app.router.add_get(FEED_PATH, _ceiling_handler)
    _instrument(app, _Stats())
    runner = web.AppRunner(app, handle_signals=False)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    profiler = None
    try:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", spec.port).start()
        if spec.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        ready.send("ready")
        await stop.wait()
    finally:
        if profiler is not None and spec.profile:
            profiler.disable()
            profiler.dump_stats(spec.profile)
        await runner.cleanup()
        if database is not None:
            await database.dispose()


def _server_main(spec: ServerSpec, ready: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us with SIGTERM
    if spec.cpu is not None:
        os.sched_setaffinity(0, {spec.cpu})
    try:
        asyncio.run(_serve(spec, ready))
    except BaseException as exc:
        with contextlib.suppress(OSError):
            ready.send(f"failed: {exc!r}")
        raise


class ServerProcess:
    def __init__(self, spec: ServerSpec) -> None:
        context = multiprocessing.get_context("spawn")
        self.spec = spec
        self._ours, theirs = context.Pipe()
        self.process = context.Process(
            target=_server_main, args=(spec, theirs), name=f"bench-{spec.kind}", daemon=True
        )

    def start(self) -> None:
        self.process.start()
        if not self._ours.poll(START_TIMEOUT):
            raise BenchError(f"{self.spec.kind} server did not start in {START_TIMEOUT:.0f} s")
        try:
            message = self._ours.recv()
        except EOFError:
            message = f"exited with code {self.process.exitcode}"
        if message != "ready":
            raise BenchError(f"{self.spec.kind} server: {message}")

    def stop(self) -> None:
        if self.process.pid is None:
            return
        if self.process.is_alive():
            self.process.terminate()  # SIGTERM: a clean shutdown
            self.process.join(30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self._ours.close()


# --- the node's data -------------------------------------------------------------


def _session_row(index: int, now: datetime) -> SessionRow:
    session_id = f"{now:%Y}-{index:08x}"
    start = (now + timedelta(days=1 + index % 120)).replace(
        hour=8 + index % 10, minute=0, second=0, microsecond=0
    )
    return SessionRow(
        id=session_id,
        title=f"Lernsession {index}: KI-Werkzeuge im Arbeitsalltag",
        description=(
            "Wie formuliere ich gute Prompts, und wo helfen KI-Werkzeuge wirklich? "
            "Ein kurzer Impuls mit Beispielen aus der Praxis und Zeit für Fragen. " * 3
        ),
        format="impulse",
        languages=["de", "en"],
        start_at=start,
        timezone="Europe/Berlin",
        duration_minutes=60 + 30 * (index % 3),
        host_name="Anna Schröder",
        tags=["KI", "Prompting", "Einsteiger"],
        status="scheduled",
        join_url=None,
        details_url=f"https://bench.openseats.test/sessions/{session_id}",
        import_source=None,
        import_key=None,
        open_seats=12,
        audience_all=True,
        registration_mode="auto",
        waitlist=True,
        email_required=False,
        seats_taken=index % 7,
        version=1,
        announcement=None,
        created_at=now,
        updated_at=now,
        withdrawn_at=None,
        ended_published=False,
    )


async def _add_reader(database: Database, now: datetime) -> SigningKey:
    """Register a reader node as an active peer with its key pinned."""
    key = SigningKey.generate()
    base = "http://127.0.0.1:9"
    descriptor = sign_descriptor(
        NodeDescriptorBody(
            type="node_descriptor",
            protocol="openseats/1",
            node_id=READER_ID,
            display_name="Reader",
            base_url=base,
            endpoints=Endpoints(
                feed=f"{base}/protocol/v1/feed",
                inbox=f"{base}/protocol/v1/inbox",
                peering=f"{base}/protocol/v1/peering",
                reservations=f"{base}/protocol/v1/reservations",
            ),
            keys=[CurrentKey(key_id=key.key_id, public_key=key.public_key_b64)],
            issued_at=now,
            valid_until=now + timedelta(days=7),
        ),
        [key],
    )
    pinned = PinnedKeys.from_descriptor(descriptor)
    async with database.write() as conn:
        peer_id = await peer_repo.insert(
            conn,
            node_id=READER_ID,
            base_url=base,
            display_name="Reader",
            state="active",
            fingerprint=pinned.fingerprints()[0],
            descriptor=json.dumps(descriptor.to_json_dict()),
            descriptor_issued_at=descriptor.issued_at,
            now=now,
        )
        await peer_repo.pin_keys(conn, peer_id, pinned)
    return key


async def _seed(
    database: Database, data_dir: Path, port: int, sessions: int
) -> tuple[SigningKey, int]:
    """A node with *sessions* open, signed, stamped sessions.

    Returns the reader's key and the newest change number.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    await database.upgrade()
    settings = node_settings(data_dir, port)
    identity = NodeIdentity(settings, database)
    await identity.create_first_key(now)
    reader = await _add_reader(database, now)
    batch = 1000
    for first in range(0, sessions, batch):
        rows = []
        for index in range(first, min(first + batch, sessions)):
            row = _session_row(index, now)
            values = {name: getattr(row, name) for name in row.__dataclass_fields__}
            del values["audience"]
            values["announcement"] = announcement_for(identity, row, row.version, now)
            rows.append(values)
        async with database.write() as conn:
            for values in rows:
                await session_repo.insert(conn, values)
                await feed_repo.mark_changed(conn, values["id"], now)
    async with database.write() as conn:
        stamped = await feed_repo.stamp(conn)
    if stamped != sessions:
        raise BenchError(f"stamped {stamped} feed rows, expected {sessions}")
    async with database.read() as conn:
        latest = await feed_repo.latest_change(conn)
    return reader, latest


class PgSchema:
    """A fresh PostgreSQL schema for the run, dropped afterwards."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = "bench_" + uuid.uuid4().hex[:16]
        self.created = False

    async def create(self) -> None:
        engine = create_async_engine(normalise_url(self.url))
        try:
            async with engine.begin() as conn:
                await conn.execute(text(f'CREATE SCHEMA "{self.name}"'))
            self.created = True
        finally:
            await engine.dispose()

    async def drop(self) -> None:
        if not self.created:
            return
        engine = create_async_engine(normalise_url(self.url))
        try:
            async with engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))
        finally:
            await engine.dispose()


# --- the load generator ----------------------------------------------------------


@dataclass(frozen=True)
class Request:
    path: str
    headers: tuple[tuple[str, str], ...]

    def raw(self, host: str) -> bytes:
        lines = [f"GET {self.path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


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


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies: list[float]
    body_bytes: list[int]
    wire_bytes: list[int]
    first_body: bytes
    error: str | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            raise BenchError("chunked responses are not supported by the load generator")
    body = await reader.readexactly(length or 0)
    return status, head, body


class _Tally:
    def __init__(self, count: int) -> None:
        self._indexes: Iterator[int] = iter(range(count))
        self.latencies: list[float] = []
        self.body_bytes: list[int] = []
        self.wire_bytes: list[int] = []
        self.first_body = b""
        self.error: str | None = None

    def next_index(self) -> int | None:
        return next(self._indexes, None)

    def record(self, status: int, head_len: int, body: bytes, latency: float) -> None:
        if status != 200 and self.error is None:
            self.error = f"HTTP {status}: {body[:2000].decode(errors='replace')}"
            self._indexes = iter(())  # stop every worker
        if not self.first_body:
            self.first_body = body
        self.latencies.append(latency)
        self.body_bytes.append(len(body))
        self.wire_bytes.append(head_len + len(body))

    def result(self, seconds: float) -> LoadResult:
        return LoadResult(
            len(self.latencies),
            seconds,
            self.latencies,
            self.body_bytes,
            self.wire_bytes,
            self.first_body,
            self.error,
        )


def _content_length(head: bytes) -> int:
    lowered = head.lower()
    if b"\r\ntransfer-encoding:" in lowered:
        raise BenchError("chunked responses are not supported by the load generator")
    at = lowered.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    return int(lowered[at + 17 : lowered.index(b"\r\n", at + 2)])


class _Connection(asyncio.Protocol):
    """One keep-alive connection: sends the next request when a response is complete.

    It works in ``data_received`` without coroutines or stream buffers, so a
    request costs the load generator a few microseconds.
    """

    def __init__(self, payloads: list[bytes], tally: _Tally) -> None:
        self.payloads = payloads
        self.tally = tally
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.head_len = 0
        self.total = 0  # head + body of the response being read; 0: head not complete
        self.sent = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send_next(self) -> None:
        index = self.tally.next_index()
        if index is None:
            if not self.done.done():
                self.done.set_result(None)
            return
        assert self.transport is not None
        self.sent = time.perf_counter()
        self.transport.write(self.payloads[index])

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            while True:
                if not self.total:
                    end = self.buffer.find(b"\r\n\r\n")
                    if end < 0:
                        return
                    self.head_len = end + 4
                    self.total = self.head_len + _content_length(bytes(self.buffer[:end]))
                if len(self.buffer) < self.total:
                    return
                status = int(self.buffer[9:12])
                body = bytes(self.buffer[self.head_len : self.total])
                del self.buffer[: self.total]
                self.total = 0
                self.tally.record(status, self.head_len, body, time.perf_counter() - self.sent)
                self.send_next()
        except Exception as exc:
            if not self.done.done():
                self.done.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(BenchError(f"connection lost: {exc}"))


Ready = Callable[[], Awaitable[None]]


async def run_raw(port: int, requests: list[Request], concurrency: int, ready: Ready) -> LoadResult:
    """Send every request once over *concurrency* keep-alive connections.

    *ready* is awaited once the connections are open, just before the clock starts.
    """
    host = f"127.0.0.1:{port}"
    payloads = [request.raw(host) for request in requests]
    tally = _Tally(len(payloads))
    loop = asyncio.get_running_loop()
    connections: list[_Connection] = []
    try:
        for _ in range(min(concurrency, len(payloads))):
            _, connection = await loop.create_connection(
                lambda: _Connection(payloads, tally), "127.0.0.1", port
            )
            connections.append(connection)
        await ready()
        start = time.perf_counter()
        for connection in connections:
            connection.send_next()
        await asyncio.gather(*(connection.done for connection in connections))
        seconds = time.perf_counter() - start
    finally:
        for connection in connections:
            if connection.transport is not None:
                connection.transport.close()
    return tally.result(seconds)


async def run_aiohttp(
    port: int, requests: list[Request], concurrency: int, ready: Ready
) -> LoadResult:
    """The same with aiohttp's client and a pool of *concurrency* connections."""
    tally = _Tally(len(requests))
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


async def fetch_stats(port: int, *, reset: bool = True) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        query = "?reset=1" if reset else ""
        writer.write(f"GET {STATS_PATH}{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        status, _, body = await _read_response(reader)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    if status != 200:
        raise BenchError(f"stats endpoint answered {status}")
    stats: dict[str, Any] = json.loads(body)
    return stats


@dataclass
class Measured:
    load: LoadResult
    cpu_ms: float  # server process CPU time per request
    server_ms: list[float]  # server-side duration of each request


async def measure(client: str, port: int, requests: list[Request], concurrency: int) -> Measured:
    before: dict[str, Any] = {}

    async def ready() -> None:  # connections are open: accepting them is not counted
        before.update(await fetch_stats(port))

    run = run_raw if client == "raw" else run_aiohttp
    load = await run(port, requests, concurrency, ready)
    if load.error is not None:
        raise BenchError(f"request failed during the timed phase: {load.error}")
    after = await fetch_stats(port)
    cpu = (after["cpu"] - before["cpu"]) / load.requests * 1000
    return Measured(load, cpu, [d * 1000 for d in after["durations"]])


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


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
    args: argparse.Namespace, sizes: Sizes, seeded: Seeded, node_port: int, ceiling_port: int
) -> Rounds:
    rng = random.Random(20261123)
    key, latest = seeded.key, seeded.latest
    poll_query = f"?afterChangeNumber={latest}&limit={sizes.page}"

    def page_queries(count: int) -> list[str]:
        top = latest - sizes.page
        return [
            f"?afterChangeNumber={rng.randint(0, top)}&limit={sizes.page}" for _ in range(count)
        ]

    # Warm up both servers and check the answers are what we mean to measure.
    warm_polls = sign_all(key, node_port, [poll_query] * 100)
    await measure(args.client, ceiling_port, warm_polls, sizes.concurrency)
    polled = await measure(args.client, node_port, warm_polls, sizes.concurrency)
    paged = await measure(
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
        ceiling = await measure(args.client, ceiling_port, repeated, sizes.concurrency)
        poll = await measure(args.client, node_port, polls, sizes.concurrency)
        page = await measure(args.client, node_port, pages, sizes.concurrency)
        seq_poll = await measure(args.client, node_port, seq_polls, 1)
        seq_page = await measure(args.client, node_port, seq_pages, 1)

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


def pick_cpus() -> tuple[int | None, int | None]:
    """(server core, client core), or no pinning on a single core."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[0], cpus[1]


@dataclass(frozen=True)
class Seeded:
    key: SigningKey  # the reader's
    latest: int  # the newest change number
    url: str  # the database


async def prepare(
    args: argparse.Namespace, sizes: Sizes, data_dir: Path, port: int, schema: PgSchema | None
) -> Seeded:
    if schema is not None:
        await schema.create()
        database = Database(args.database_url, schema=schema.name)
    else:
        database = Database(f"sqlite:///{data_dir / 'openseats.db'}")
    try:
        key, latest = await _seed(database, data_dir, port, sizes.sessions)
    finally:
        await database.dispose()
    return Seeded(key, latest, database.url)


def run(
    args: argparse.Namespace, sizes: Sizes, server_cpu: int | None, client_cpu: int | None
) -> Rounds:
    """Seed a node, start both servers, measure; always stop and clean up."""
    engine = "postgresql" if args.database_url else "sqlite"
    schema = PgSchema(args.database_url) if args.database_url else None
    try:
        with tempfile.TemporaryDirectory(prefix="openseats-bench-feed-") as tmp:
            data_dir = Path(tmp) / "node"
            data_dir.mkdir()
            node_port, ceiling_port = free_port(), free_port()
            started = time.perf_counter()
            seeded = asyncio.run(prepare(args, sizes, data_dir, node_port, schema))
            print(
                f"seeded {sizes.sessions} sessions ({engine}) "
                f"in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            node_spec = ServerSpec(
                "node",
                node_port,
                server_cpu,
                str(data_dir),
                args.database_url or seeded.url,
                schema.name if schema else None,
                str(Path(args.profile).resolve()) if args.profile else None,
            )
            servers: list[ServerProcess] = []
            try:
                for spec in (ServerSpec("ceiling", ceiling_port, server_cpu), node_spec):
                    servers.append(ServerProcess(spec))
                    servers[-1].start()
                if client_cpu is not None:
                    os.sched_setaffinity(0, {client_cpu})
                return asyncio.run(load_phases(args, sizes, seeded, node_port, ceiling_port))
            finally:
                for server in servers:
                    server.stop()
    finally:
        if schema is not None:
            asyncio.run(schema.drop())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny size, for CI")
    parser.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL URL (a fresh schema is made and dropped); default: SQLite in a temp dir",
    )
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
