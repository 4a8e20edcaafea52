"""What the benchmarks share: nodes in their own processes, and the load generator.

* :class:`World` makes the nodes of a run (a data dir, a port and a
  database each: a SQLite file, or with a PostgreSQL URL a fresh schema
  per node, :class:`PgSchema`, dropped afterwards);
  :func:`register_peer` peers them directly in the database (keys
  pinned, as after a completed peering) and :func:`publish_rows` seeds
  signed, stamped sessions into a node's feed.
* :class:`ServerProcess` runs a node (or a *ceiling*: an aiohttp trivial
  handler answering a small constant JSON body) in a process of its own,
  pinned to one core if asked, optionally under cProfile.  Every server
  is timed outermost and answers ``GET /_bench/stats`` with its CPU time
  and the server-side duration of each request.
* :func:`run_raw` is a small keep-alive HTTP/1.1 client on raw asyncio
  protocols, cheaper per request than aiohttp's client so that it does not
  cap a ceiling; :func:`measure` wraps it with the server's CPU time.

The scripts run as ``python bench/NAME.py``: their own directory is
``sys.path[0]``, so they import this module as ``_common`` (and the
processes they spawn inherit that path).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

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
from protocol.keyring import PinnedKeys, sign_descriptor
from protocol.keys import SigningKey
from protocol.models import CurrentKey, Endpoints, NodeDescriptor, NodeDescriptorBody

STATS_PATH = "/_bench/stats"
START_TIMEOUT = 60.0


class BenchError(Exception):
    """A request failed, a result is wrong, or a server did not start: the run is invalid."""


# --- the nodes of a run ------------------------------------------------------------------


@dataclass(frozen=True)
class NodeConfig:
    name: str
    node_id: str
    display_name: str
    data_dir: str
    port: int
    database_url: str  # a SQLite file's URL, or the PostgreSQL URL as given
    schema: str | None
    options: tuple[tuple[str, Any], ...] = ()  # further settings

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self) -> Settings:
        values: dict[str, Any] = {
            # One client sends every request; the per-peer limit would answer 429.
            "rate_limit_per_minute": 10**9,
            **dict(self.options),
        }
        return Settings(
            node_id=self.node_id,
            base_url=self.url,
            display_name=self.display_name,
            data_dir=Path(self.data_dir),
            **values,
        )

    def database(self) -> Database:
        return Database(self.database_url, schema=self.schema)


class PgSchema:
    """A fresh PostgreSQL schema for one node, dropped afterwards."""

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


@dataclass
class World:
    """The nodes of the run: their directories, ports and databases."""

    tmp: Path
    database_url: str  # "" for SQLite
    schemas: dict[str, PgSchema] = field(default_factory=dict)
    nodes: dict[str, NodeConfig] = field(default_factory=dict)

    @property
    def engine(self) -> str:
        return "postgresql" if self.database_url else "sqlite"

    def add(self, name: str, node_id: str, display_name: str, **options: Any) -> NodeConfig:
        data_dir = self.tmp / name
        data_dir.mkdir()
        if self.database_url:
            schema = PgSchema(self.database_url)
            self.schemas[name] = schema
            url, schema_name = self.database_url, schema.name
        else:
            url, schema_name = f"sqlite:///{data_dir / 'openseats.db'}", None
        config = NodeConfig(
            name,
            node_id,
            display_name,
            str(data_dir),
            free_port(),
            url,
            schema_name,
            tuple(sorted(options.items())),
        )
        self.nodes[name] = config
        return config

    async def create_schemas(self) -> None:
        for schema in self.schemas.values():
            await schema.create()

    def drop_schemas(self) -> None:
        """Drop every schema made (synchronously: called after the event loops ended)."""
        for schema in self.schemas.values():
            asyncio.run(schema.drop())


def signed_descriptor(
    node_id: str, display_name: str, base_url: str, key: SigningKey, now: datetime
) -> NodeDescriptor:
    """A node's descriptor signed with *key*, for a peer whose key the bench holds."""
    return sign_descriptor(
        NodeDescriptorBody(
            type="node_descriptor",
            protocol="openseats/1",
            node_id=node_id,
            display_name=display_name,
            base_url=base_url,
            endpoints=Endpoints(
                feed=f"{base_url}/protocol/v1/feed",
                inbox=f"{base_url}/protocol/v1/inbox",
                peering=f"{base_url}/protocol/v1/peering",
                reservations=f"{base_url}/protocol/v1/reservations",
            ),
            keys=[CurrentKey(key_id=key.key_id, public_key=key.public_key_b64)],
            issued_at=now,
            valid_until=now + timedelta(days=7),
        ),
        [key],
    )


async def register_peer(database: Database, descriptor: NodeDescriptor, now: datetime) -> None:
    """An active peer with its keys pinned, as after a completed peering."""
    pinned = PinnedKeys.from_descriptor(descriptor)
    async with database.write() as conn:
        peer_id = await peer_repo.insert(
            conn,
            node_id=descriptor.node_id,
            base_url=descriptor.base_url,
            display_name=descriptor.display_name,
            state="active",
            fingerprint=pinned.fingerprints()[0],
            descriptor=json.dumps(descriptor.to_json_dict(), ensure_ascii=False),
            descriptor_issued_at=descriptor.issued_at,
            now=now,
        )
        await peer_repo.pin_keys(conn, peer_id, pinned)


def session_row(index: int, now: datetime, node_id: str) -> SessionRow:
    """A plain open session, starting within the next 120 days."""
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
        details_url=f"https://{node_id}/sessions/{session_id}",
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


async def publish_rows(
    database: Database,
    identity: NodeIdentity,
    rows: Iterable[SessionRow],
    now: datetime,
    batch: int = 1000,
) -> int:
    """Insert sessions with their signed announcements into the feed; return how many.

    Raises :class:`BenchError` unless the feed stamped each of them.
    """
    count = 0
    pending: list[dict[str, Any]] = []

    async def flush() -> None:
        async with database.write() as conn:
            for values in pending:
                await session_repo.insert(conn, values)
                await feed_repo.mark_changed(conn, values["id"], now)
        pending.clear()

    for row in rows:
        values = {name: getattr(row, name) for name in row.__dataclass_fields__}
        del values["audience"]
        values["announcement"] = announcement_for(identity, row, row.version, now)
        pending.append(values)
        count += 1
        if len(pending) >= batch:
            await flush()
    await flush()
    async with database.write() as conn:
        stamped = await feed_repo.stamp(conn)
    if stamped != count:
        raise BenchError(f"stamped {stamped} feed rows, expected {count}")
    return count


# --- the servers (each in its own process) -----------------------------------------------


@dataclass(frozen=True)
class ServerSpec:
    kind: str  # "node" | "ceiling"
    port: int
    cpu: int | None
    node: NodeConfig | None = None
    profile: str | None = None  # cProfile the server into this file
    scheduler: bool = False  # run the node's scheduled jobs too
    ceiling_path: str = ""  # the ceiling answers GET here ...
    ceiling_body: bytes = b""  # ... with this JSON body

    @classmethod
    def for_node(
        cls,
        node: NodeConfig,
        cpu: int | None,
        *,
        profile: str | None = None,
        scheduler: bool = False,
    ) -> ServerSpec:
        return cls("node", node.port, cpu, node, profile, scheduler)

    @classmethod
    def for_ceiling(cls, port: int, cpu: int | None, path: str, body: bytes) -> ServerSpec:
        return cls("ceiling", port, cpu, ceiling_path=path, ceiling_body=body)

    @property
    def name(self) -> str:
        return self.node.name if self.node is not None else self.kind


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


def _ceiling_app(spec: ServerSpec) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=spec.ceiling_body, content_type="application/json")

    app = web.Application()
    app.router.add_get(spec.ceiling_path, handler)
    return app


async def _serve(spec: ServerSpec, ready: Connection) -> None:
    database: Database | None = None
    if spec.node is not None:
        database = spec.node.database()
        app = create_app(spec.node.settings(), db=database, run_scheduler=spec.scheduler)
    else:
        app = _ceiling_app(spec)
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
        self.name = spec.name
        self._ours, theirs = context.Pipe()
        self.process = context.Process(
            target=_server_main, args=(spec, theirs), name=f"bench-{self.name}", daemon=True
        )

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the process without waiting (start several, then wait for each)."""
        self.process.start()

    def wait_ready(self) -> None:
        if not self._ours.poll(START_TIMEOUT):
            raise BenchError(f"{self.name} server did not start in {START_TIMEOUT:.0f} s")
        try:
            message = self._ours.recv()
        except EOFError:
            message = f"exited with code {self.process.exitcode}"
        if message != "ready":
            raise BenchError(f"{self.name} server: {message}")

    def memory_kb(self) -> dict[str, int]:
        """VmHWM (peak) and VmRSS (now) of the server process, in kB."""
        found = {}
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name in ("VmHWM", "VmRSS"):
                    found[name] = int(value.split()[0])
        return found

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


def bench_parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark takes: ``--smoke`` and ``--database-url``."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    parser.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL URL (a fresh schema per node, dropped afterwards); "
        "default: SQLite files in a temporary directory",
    )
    return parser


def stop_all(servers: Iterable[ServerProcess]) -> None:
    """Stop servers in parallel: signal each, then wait for each."""
    running = [server for server in servers if server.process.pid is not None]
    for server in running:
        if server.process.is_alive():
            server.process.terminate()
    for server in running:
        server.stop()


def pick_cpus() -> tuple[int | None, int | None]:
    """(server core, client core), or no pinning on a single core."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[0], cpus[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


# --- the load generator ------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    label: str = ""
    method: str = "GET"
    body: bytes = b""

    def raw(self, host: str) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.body or self.method not in ("GET", "HEAD", "DELETE"):
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies: list[float]  # in completion order (request order with one in flight)
    body_bytes: list[int]
    wire_bytes: list[int]
    first_body: bytes
    error: str | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


class Tally:
    """Hands out request indexes and records each response; the first failure stops all."""

    def __init__(self, count: int, ok: Iterable[int] = (200,)) -> None:
        self._indexes: Iterator[int] = iter(range(count))
        self.ok = frozenset(ok)
        self.latencies: list[float] = []
        self.body_bytes: list[int] = []
        self.wire_bytes: list[int] = []
        self.first_body = b""
        self.error: str | None = None

    def next_index(self) -> int | None:
        return next(self._indexes, None)

    def record(self, status: int, head_len: int, body: bytes, latency: float) -> None:
        if status not in self.ok and self.error is None:
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


def content_length(head: bytes) -> int:
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

    def __init__(self, payloads: list[bytes], tally: Tally) -> None:
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
                    self.total = self.head_len + content_length(bytes(self.buffer[:end]))
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


async def _nothing() -> None:
    return None


async def run_raw(
    port: int,
    requests: list[Request],
    concurrency: int,
    ready: Ready = _nothing,
    *,
    ok: Iterable[int] = (200,),
) -> LoadResult:
    """Send every request once over *concurrency* keep-alive connections.

    *ready* is awaited once the connections are open, just before the clock
    starts.  A status not in *ok* stops the run and is its ``error``.
    """
    host = f"127.0.0.1:{port}"
    payloads = [request.raw(host) for request in requests]
    tally = Tally(len(payloads), ok)
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


async def fetch_once(port: int, request: Request) -> tuple[int, bytes]:
    """One request on a connection of its own: (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request.raw(f"127.0.0.1:{port}"))
        head = await reader.readuntil(b"\r\n\r\n")
        body = await reader.readexactly(content_length(head[:-4]))
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return int(head[9:12]), body


async def fetch_stats(port: int, *, reset: bool = True) -> dict[str, Any]:
    """A server's CPU time so far and its request durations (then forgotten if *reset*)."""
    status, body = await fetch_once(port, Request(STATS_PATH + ("?reset=1" if reset else "")))
    if status != 200:
        raise BenchError(f"stats endpoint answered {status}")
    stats: dict[str, Any] = json.loads(body)
    return stats


@dataclass
class Measured:
    load: LoadResult
    cpu_ms: float  # server process CPU time per request
    server_ms: list[float]  # server-side duration of each request


Runner = Callable[[int, list[Request], int, Ready], Awaitable[LoadResult]]


async def measure(
    port: int, requests: list[Request], concurrency: int, run: Runner = run_raw
) -> Measured:
    """Load a server with *requests*; a failed request raises :class:`BenchError`."""
    before: dict[str, Any] = {}

    async def ready() -> None:  # connections are open: accepting them is not counted
        before.update(await fetch_stats(port))

    load = await run(port, requests, concurrency, ready)
    if load.error is not None:
        raise BenchError(f"request failed during the timed phase: {load.error}")
    after = await fetch_stats(port)
    cpu = (after["cpu"] - before["cpu"]) / load.requests * 1000
    return Measured(load, cpu, [d * 1000 for d in after["durations"]])
