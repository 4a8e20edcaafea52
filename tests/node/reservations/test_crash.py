"""A requester killed with SIGKILL mid-reservation loses nothing and books nothing twice.

Both nodes are real ``openseats serve`` processes on loopback (SQLite).

(a) *Between writing and sending*: the host is down when the portal asks,
so the requester stores the reservation and its outbox ``PUT`` but cannot
send it; then it is killed.  After both restart, the stored ``PUT`` goes
out and the reservation becomes ``confirmed``.

(b) *Between sending and recording the answer*: a loopback proxy in front
of the host (the host's ``base_url`` is the proxy's, so partners address
the proxy) forwards the ``PUT``, reads the host's answer (the host has
committed), and kills the requester before returning anything.  The
restarted requester resends the identical bytes, the host repeats its
answer with 200, and there is still exactly one reservation and one seat.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.node.conftest import free_port
from tests.node.test_cli import OPENSEATS, run, wait_for_port

TITLE = "Werkstatt: Barrierefreie PDFs"
# Pulls happen because of feed_changed notices, not because a timer fired.
NODE_ENV = {"OPENSEATS_POLL_INTERVAL_SECONDS": "3600"}
HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def call(method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    return status, json.loads(raw) if raw else None


@dataclass
class CliNode:
    """One ``openseats`` node run as a user runs it."""

    name: str
    data: Path
    port: int  # where it listens
    url: str  # its public base URL (the proxy's for a proxied host)
    fingerprint: str = ""
    admin_token: str = ""
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def node_id(self) -> str:
        return f"{self.name}.crash.test"

    @property
    def local(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.processes[-1]

    def init(self) -> None:
        out = run(
            "init",
            "--data",
            str(self.data),
            "--node-id",
            self.node_id,
            "--url",
            self.url,
            "--port",
            str(self.port),
            "--display-name",
            self.name.upper(),
        ).stdout
        self.fingerprint = out.strip().splitlines()[-1].split(": ")[-1]
        self.admin_token = run(
            "token", "create", "--role", "admin", "--data", str(self.data)
        ).stdout.strip()

    def serve(self) -> None:
        with (self.data.parent / f"{self.name}.log").open("ab") as log:
            self.processes.append(
                subprocess.Popen(
                    [*OPENSEATS, "serve", "--data", str(self.data)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **NODE_ENV},
                )
            )
        wait_for_port(self.port)

    def stop(self) -> None:
        self.process.terminate()
        assert self.process.wait(20) == 0

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return call(method, f"{self.local}/admin/api/v1{path}", self.admin_token, body)

    def api(self, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
        return call(method, f"{self.local}/api/v1{path}", token, body)

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        """Read the node's SQLite database directly (the process may be dead)."""
        with closing(sqlite3.connect(self.data / "openseats.db", timeout=10)) as conn:
            return list(conn.execute(query))


class KillingProxy:
    """A loopback proxy in front of the host, run in its own thread and loop.

    It forwards every request verbatim.  When it sees the first reservation
    ``PUT``, it waits for ``release``, forwards it, reads the host's whole
    answer, SIGKILLs ``victim`` and only then returns (to nobody).
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.target = ""
        self.victim: subprocess.Popen[bytes] | None = None
        self.release = threading.Event()
        self.killed = threading.Event()
        #: (request body, answer status, answer body) of every reservation PUT.
        self.puts: list[tuple[bytes, int, bytes]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        is_put = request.method == "PUT" and request.path.startswith("/protocol/v1/reservations/")
        if is_put and not self.killed.is_set():
            assert await asyncio.to_thread(self.release.wait, 30)
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
        async with self._client.request(
            request.method,
            self.target + request.path_qs,
            data=body or None,
            headers=headers,
            allow_redirects=False,
        ) as answer:
            payload = await answer.read()
            status = answer.status
            back = [(k, v) for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP]
        if is_put:
            self.puts.append((body, status, payload))
            if not self.killed.is_set():
                assert self.victim is not None
                self.victim.send_signal(signal.SIGKILL)
                await asyncio.to_thread(self.victim.wait, 10)
                self.killed.set()
        return web.Response(status=status, body=payload, headers=back)

    async def _start(self) -> None:
        self._client = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        await self._runner.cleanup()
        await self._client.close()

    def start(self) -> None:
        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self._start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._stop())
            loop.close()

        self._thread = threading.Thread(target=main, name="killing-proxy", daemon=True)
        self._thread.start()
        assert ready.wait(10)

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


@pytest.fixture
def proxy() -> Iterator[KillingProxy]:
    running = KillingProxy(free_port())
    running.start()
    yield running
    running.release.set()
    running.stop()


@pytest.fixture
def nodes() -> Iterator[list[CliNode]]:
    made: list[CliNode] = []
    yield made
    for node in made:
        for process in node.processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)


@dataclass
class Alliance:
    host: CliNode
    requester: CliNode
    session_id: str
    entry_id: str
    portal: str


def federate(tmp_path: Path, made: list[CliNode], proxy: KillingProxy | None = None) -> Alliance:
    """Two peered nodes; the host's session is open and in the requester's catalogue.

    With a *proxy*, the host's public URL is the proxy's and the proxy
    forwards to the host's port.
    """
    host_port, requester_port = free_port(), free_port()
    host_url = f"http://127.0.0.1:{proxy.port if proxy else host_port}"
    host = CliNode("lex", tmp_path / "lex", host_port, host_url)
    if proxy is not None:
        proxy.target = host.local
    requester = CliNode(
        "datev", tmp_path / "datev", requester_port, f"http://127.0.0.1:{requester_port}"
    )
    made += [host, requester]
    with ThreadPoolExecutor(2) as pool:  # each CLI start costs seconds; run both at once
        list(pool.map(CliNode.init, made))
        list(pool.map(CliNode.serve, made))

    status, body = requester.admin(
        "POST", "/peers", {"url": host.url, "fingerprint": host.fingerprint}
    )
    assert status == 201, body
    status, body = host.admin("POST", f"/peers/{requester.node_id}/accept")
    assert (status, body["state"]) == (200, "active"), body
    status, body = requester.admin("POST", "/tokens", {"role": "portal", "label": "Intranet"})
    assert status == 201, body
    portal = body["token"]

    start = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    status, body = host.admin(
        "POST",
        "/sessions",
        {
            "title": TITLE,
            "description": "Wie PDFs für alle lesbar werden.",
            "format": "workshop",
            "languages": ["de"],
            "start": start.isoformat(),
            "timezone": "Europe/Berlin",
            "duration_minutes": 90,
            "host_name": "Anna Schröder",
            "tags": [],
            "join_url": "https://meet.example.org/pdf",
        },
    )
    assert status == 201, body
    session_id = body["id"]
    status, body = host.admin(
        "PUT", f"/sessions/{session_id}/opening", {"seats": 2, "audience": "all"}
    )
    assert status == 200, body

    def entry() -> str | None:
        status, page = requester.api("GET", "/catalogue", portal)
        assert status == 200, page
        return next((i["id"] for i in page["items"] if i["title"] == TITLE), None)

    entry_id = wait_until(entry, 60, "the host's session in the requester's catalogue")
    return Alliance(host, requester, session_id, entry_id, portal)


def reserve(alliance: Alliance) -> str:
    status, body = alliance.requester.api(
        "POST",
        f"/sessions/{alliance.entry_id}/reservations",
        alliance.portal,
        {"attendee": {"ref": "emp-7", "display_name": "Mia Weber"}},
    )
    assert status == 202, body
    assert body["state"] == "requested"
    return str(body["id"])


def state_at_requester(alliance: Alliance, reservation_id: str) -> str:
    status, body = alliance.requester.api("GET", f"/reservations/{reservation_id}", alliance.portal)
    assert status == 200, body
    return str(body["state"])


def assert_booked_once(alliance: Alliance, reservation_id: str) -> None:
    """Both sides agree: one confirmed reservation, one seat, one request sent."""
    status, body = alliance.requester.api("GET", f"/reservations/{reservation_id}", alliance.portal)
    assert (status, body["state"], body["version"]) == (200, "confirmed", 1), body
    assert body["join_url"] == "https://meet.example.org/pdf"
    status, listing = alliance.requester.api("GET", "/reservations", alliance.portal)
    assert status == 200, listing
    assert [item["id"] for item in listing["items"]] == [reservation_id]
    status, seen = alliance.host.admin("GET", f"/sessions/{alliance.session_id}/reservations")
    assert status == 200, seen
    assert [(r["id"], r["state"], r["seats"]) for r in seen["reservations"]] == [
        (reservation_id, "confirmed", 1)
    ]
    assert seen["taken"] == 1
    sent = alliance.requester.rows("SELECT state FROM outbox WHERE kind = 'reservation_request'")
    assert sent == [("sent",)]


def test_killed_between_writing_and_sending(tmp_path: Path, nodes: list[CliNode]) -> None:
    alliance = federate(tmp_path, nodes)
    host, requester = alliance.host, alliance.requester

    host.stop()
    reservation_id = reserve(alliance)
    # Written, tried against the dead host, not sent.
    tried = wait_until(
        lambda: requester.rows(
            "SELECT state FROM outbox WHERE kind = 'reservation_request' AND attempts > 0"
        ),
        30,
        "a failed delivery attempt",
    )
    assert tried == [("pending",)]
    requester.kill()
    assert requester.rows("SELECT id, state, version FROM reservations_out") == [
        (reservation_id, "requested", 0)
    ]

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(CliNode.serve, (host, requester)))
    wait_until(
        lambda: state_at_requester(alliance, reservation_id) == "confirmed",
        60,
        "the stored request to be delivered and answered",
    )
    assert_booked_once(alliance, reservation_id)


def test_killed_between_sending_and_recording_the_answer(
    tmp_path: Path, nodes: list[CliNode], proxy: KillingProxy
) -> None:
    alliance = federate(tmp_path, nodes, proxy)
    host, requester = alliance.host, alliance.requester
    proxy.victim = requester.process

    reservation_id = reserve(alliance)
    proxy.release.set()
    wait_until(proxy.killed.is_set, 60, "the proxy to kill the requester")

    # The host committed its decision; the requester never heard of it.
    status, seen = host.admin("GET", f"/sessions/{alliance.session_id}/reservations")
    assert status == 200, seen
    assert [(r["id"], r["state"]) for r in seen["reservations"]] == [(reservation_id, "confirmed")]
    assert requester.rows("SELECT state, version FROM reservations_out") == [("requested", 0)]
    assert requester.rows("SELECT state FROM outbox WHERE kind = 'reservation_request'") == [
        ("pending",)
    ]

    requester.serve()
    wait_until(
        lambda: state_at_requester(alliance, reservation_id) == "confirmed",
        60,
        "the resent request's answer to be recorded",
    )
    assert_booked_once(alliance, reservation_id)

    assert len(proxy.puts) == 2
    (first_body, first_status, first_answer), (again_body, again_status, again_answer) = proxy.puts
    assert again_body == first_body  # the identical bytes, from the outbox
    assert (first_status, again_status) == (201, 200)
    first, again = json.loads(first_answer), json.loads(again_answer)
    first.pop("issued_at")
    again.pop("issued_at")
    assert again == first
    assert (first["state"], first["version"]) == ("confirmed", 1)
