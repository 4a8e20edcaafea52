"""Schemathesis fuzzes a running node with the OpenAPI document (issue 7, API contract).

What runs: LEX, the node under test, and four partners (DATEV, KIWI, BOSCH,
RUDI), each a full aiohttp app with its own database on loopback, served
from a thread with its own event loop so that schemathesis can call them
with its synchronous HTTP client.  LEX is seeded so that operations hit
real rows: local sessions (open with approval, open automatically,
closed), DATEV's open session in LEX's catalogue, reservations both ways
(pending and confirmed at LEX; confirmed and held at DATEV), BOSCH and RUDI
asking LEX to peer, KIWI ready to be asked, a subscribed calendar URL, two
dead letters and spare tokens.

How it fuzzes: every operation in ``docs/openapi.yaml``, first one seeded
request with known ids and a valid body (so each operation reaches real
rows at least once), then positive and negative generation with a bounded
number of examples each (:data:`EXAMPLES`), derandomized and without a
Hypothesis deadline.  Generated path parameters are swapped for seeded ids
about half the time; otherwise almost every request would end in a 404.
Every answer must pass schemathesis' stateless checks: no 5xx
(``not_a_server_error``), a documented status code, content type and
headers, and a body matching the documented schema, error codes included.
Failures are collected over all operations, so one run lists every
finding.  The number of requests is printed (and written to the terminal
summary line) and must reach a floor.

The one 5xx the contract has is ``502 peer_unreachable`` from ``POST
/admin/api/v1/peers`` when the partner's URL does not answer; the fuzzer
points that operation at a closed loopback port on purpose, so those
answers are counted apart and checked against the schema, not as server
errors.

Safety rails, each enforced here rather than hoped for:

- the node must never fetch a URL off this machine: every ``url`` in a
  generated body (peering, calendar imports) is rewritten to a loopback
  address (KIWI, the test's calendar server, LEX itself or a closed port)
  and asserted to be loopback before the request is sent;
- the fuzzer must not lock itself out: ``DELETE /tokens/{id}`` only ever
  gets the spare tokens' ids, never those of the admin and portal tokens it
  uses (a generated id that hits one is swapped for a spare);
- what ends things runs last: reads, then changes, then cancelling and
  suspending, then deletions (deepest path first), privacy erasure and the
  partnership last of all, so earlier operations still find seeded rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import warnings
from collections import Counter
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import hypothesis
import pytest
import requests
import schemathesis
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from node.app import create_app
from node.clock import ManualClock
from node.db import outbox as outbox_repo
from node.db import tokens as token_repo
from node.identity import NodeIdentity
from node.settings import Settings
from node.web.access_log import RedactingAccessLogger
from tests.node.conftest import RunningNode, Schemas, free_port, new_database, peer, sync
from tests.node.reservations.helpers import api, open_session, portal_token, reserve
from tests.node.test_feed import new_session
from tests.node.test_sessions_api import session_body

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
#: Examples per operation and generation mode.  SQLite is the fuzzing target;
#: PostgreSQL gets a short run of the same cases.
EXAMPLES = {"sqlite": 40, "postgresql": 5}
#: The run must send at least this many requests per example budget, or the
#: fuzzing did not happen (e.g. every strategy was filtered away).
FLOOR_PER_EXAMPLE = 40
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
METHOD_ORDER = {"GET": 0, "POST": 1, "PUT": 1, "PATCH": 1, "DELETE": 4}
LATE = {
    "POST /admin/api/v1/sessions/{id}/cancel": 2,
    "POST /admin/api/v1/peers/{node_id}/suspend": 2,
    "POST /admin/api/v1/peers/{node_id}/resume": 3,
    "DELETE /admin/api/v1/privacy/{ref}": 5,
    "DELETE /admin/api/v1/peers/{node_id}": 6,
}
LOOPBACK = "127.0.0.1"
CALENDAR = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//OpenSeats tests//DE\r
BEGIN:VEVENT\r
UID:fuzz-calendar-1@example.org\r
DTSTAMP:20260101T000000Z\r
DTSTART:{start}\r
DURATION:PT1H\r
SUMMARY:Impuls: Schemathesis im Alltag\r
ORGANIZER;CN=Jana Beispiel:mailto:jana@example.org\r
END:VEVENT\r
END:VCALENDAR\r
"""
T = TypeVar("T")


class LoopThread:
    """An event loop in a thread: the nodes live there, the fuzzer calls from here."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Target:
    """The seeded node under test and what the fuzzer may use of it."""

    nodes: dict[str, RunningNode]
    admin_token: str
    portal_token: str
    protected_token_ids: set[int]
    calendar_url: str
    closed_url: str
    known: dict[str, list[Any]] = field(default_factory=dict)
    bodies: dict[str, Any] = field(default_factory=dict)

    @property
    def lex(self) -> RunningNode:
        return self.nodes["lex"]

    def pool(self, label: str, name: str) -> list[Any]:
        """Seeded values for a path parameter of the operation *label*."""
        return self.known.get(f"{label} {name}") or self.known.get(name, [])


async def _start_node(
    name: str, engine: str, tmp_path: Path, schemas: Schemas, clock: ManualClock
) -> RunningNode:
    """A node like conftest's ``make_node``, started on this thread's loop."""
    port = free_port()
    settings = Settings(
        node_id=f"{name}.openseats.test",
        base_url=f"http://{LOOPBACK}:{port}",
        display_name=name.upper(),
        data_dir=tmp_path / name,
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = await new_database(engine, tmp_path, schemas, name)
    await NodeIdentity(settings, database).create_first_key(clock.now())
    async with database.write() as conn:
        token = await token_repo.create(conn, "admin", "fuzzer", clock.now())
    app = create_app(settings, clock=clock, db=database, run_scheduler=False)
    server = TestServer(app, host=LOOPBACK, port=port)
    await server.start_server(access_log_class=RedactingAccessLogger)
    return RunningNode(name, settings, server, aiohttp.ClientSession(), token, database, clock)


async def _calendar_server(clock: ManualClock) -> TestServer:
    start = (clock.now() + timedelta(days=20)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    async def calendar(request: web.Request) -> web.Response:
        return web.Response(text=CALENDAR.format(start=start), content_type="text/calendar")

    app = web.Application()
    app.router.add_get("/calendar.ics", calendar)
    server = TestServer(app, host=LOOPBACK, port=free_port())
    await server.start_server()
    return server


async def _dead_letter(lex: RunningNode, datev: RunningNode) -> None:
    """A message DATEV refuses for good: it answers 404 to a path it does not serve."""
    async with lex.node.db.write() as conn:
        await outbox_repo.enqueue(
            conn,
            peer_node_id=datev.node_id,
            kind="feed_changed",
            method="POST",
            url=f"{datev.url}/protocol/v1/gone",
            body="{}",
            now=lex.node.clock.now(),
        )
    await lex.node.deliverer.deliver_due()


async def _seed(nodes: dict[str, RunningNode], clock: ManualClock, calendar: str) -> Target:
    lex, datev = nodes["lex"], nodes["datev"]
    await peer(lex, datev)
    for asking in ("bosch", "rudi"):  # they asked LEX; LEX has not answered yet
        status, body = await nodes[asking].admin(
            "POST", "/peers", {"url": lex.url, "fingerprint": lex.fingerprint}
        )
        assert status == 201, body
    lex_portal, datev_portal = await portal_token(lex), await portal_token(datev)
    approval = await open_session(lex, clock, seats=3, registration_mode="approval")
    automatic = await open_session(lex, clock, seats=2)
    closed = await new_session(lex, clock)
    remote = await open_session(datev, clock, seats=4)
    await sync(lex, datev)
    # DATEV's employees at LEX: one pending approval, one confirmed.
    await reserve(datev, lex, approval, datev_portal, "emp-1")
    await reserve(datev, lex, automatic, datev_portal, "emp-2")
    # LEX's employees at DATEV: one confirmed, one held.
    mine = await reserve(lex, datev, remote, lex_portal, "emp-3")
    held = await reserve(lex, datev, remote, lex_portal, "emp-4", hold=True)
    await sync(lex, datev)
    for reservation, state in ((mine, "confirmed"), (held, "held")):
        status, body = await api(lex, "GET", f"/reservations/{reservation['id']}", lex_portal)
        assert (status, body["state"]) == (200, state), body
    status, body = await lex.admin("POST", "/imports", {"url": calendar, "interval_minutes": 60})
    assert (status, body["imported"]) == (200, 1), body
    await _dead_letter(lex, datev)
    await _dead_letter(lex, datev)
    for role in ("admin", "portal", "calendar", "calendar"):
        status, body = await lex.admin("POST", "/tokens", {"role": role, "label": "spare"})
        assert status == 201, body
    async with lex.node.db.read() as conn:
        tokens = await token_repo.list_tokens(conn)
        dead = await outbox_repo.list_messages(conn, state="dead")
    _, pending = await lex.admin("GET", "/reservations/pending")
    _, incoming = await lex.admin("GET", f"/sessions/{automatic}/reservations")
    _, sources = await lex.admin("GET", "/imports/sources")
    # The fuzzer's own admin and portal tokens must survive DELETE /tokens/{id}.
    in_use = {t.id for t in tokens if t.label != "spare"}
    target = Target(
        nodes=nodes,
        admin_token=lex.admin_token,
        portal_token=lex_portal,
        protected_token_ids=in_use,
        calendar_url=calendar,
        closed_url=f"http://{LOOPBACK}:{free_port()}",
    )
    entries = [f"{sid}@{lex.node_id}" for sid in (approval, automatic, closed)]
    remote_entry = f"{remote}@{datev.node_id}"
    outgoing = [mine["id"], held["id"]]
    target.known = {
        # "id" means a local session under /admin, else an entry or a reservation
        "id": [approval, automatic, closed],
        "GET /api/v1/sessions/{id} id": [
            *entries,
            remote_entry,
            f"{remote_entry}.ics",
            f"{entries[0]}.ics",
            f"{remote_entry}.jsonld",
        ],
        "POST /api/v1/sessions/{id}/reservations id": [remote_entry, remote_entry, entries[0]],
        "GET /api/v1/reservations/{id} id": [*outgoing, *(f"{r}.ics" for r in outgoing)],
        "DELETE /api/v1/reservations/{id} id": outgoing,
        "POST /api/v1/reservations/{id}/confirm id": [held["id"], mine["id"]],
        "node_id": [n.node_id for n in nodes.values() if n is not lex],
        "POST /admin/api/v1/peers/{node_id}/accept node_id": [nodes["bosch"].node_id],
        "POST /admin/api/v1/peers/{node_id}/decline node_id": [nodes["rudi"].node_id],
        "uuid": [r["id"] for r in pending["items"] + incoming["reservations"]],
        "action": ["approve", "decline", "cancel"],
        "ref": ["emp-1", "emp-2", "emp-3", "emp-4"],
        "message_id": [m.id for m in dead],
        "source_id": [s["id"] for s in sources["sources"]],
        "token_id": [t.id for t in tokens if t.label == "spare"],
    }
    kiwi = nodes["kiwi"]
    target.bodies = {
        "POST /admin/api/v1/sessions": session_body(clock),
        "PATCH /admin/api/v1/sessions/{id}": {"title": "Impuls: Verträge lesen"},
        "PUT /admin/api/v1/sessions/{id}/opening": {"seats": 3, "audience": "all"},
        "PUT /admin/api/v1/sessions/{id}/caps/{node_id}": {"cap": 2},
        "POST /admin/api/v1/peers": {"url": kiwi.url, "fingerprint": kiwi.fingerprint},
        "POST /admin/api/v1/tokens": {"role": "calendar", "label": "Outlook"},
        "POST /admin/api/v1/imports": {"url": calendar},
        "POST /api/v1/sessions/{id}/reservations": {
            "attendee": {"ref": "emp-5", "display_name": "Person emp-5"}
        },
    }
    assert all(target.known.values()), target.known
    assert len(dead) == 2, dead
    return target


@pytest.fixture
def target(engine: str, tmp_path: Path) -> Iterator[Target]:
    loop = LoopThread()
    schemas = Schemas()
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    nodes: dict[str, RunningNode] = {}
    servers: list[TestServer] = []

    async def start() -> Target:
        calendar = await _calendar_server(clock)
        servers.append(calendar)
        for name in ("lex", "datev", "kiwi", "bosch", "rudi"):
            nodes[name] = await _start_node(name, engine, tmp_path, schemas, clock)
        return await _seed(nodes, clock, f"http://{LOOPBACK}:{calendar.port}/calendar.ics")

    async def stop() -> None:
        for running in nodes.values():
            await running.settle()
            await running.http.close()
            await running.server.close()
            assert running.database is not None
            await running.database.dispose()
        for server in servers:
            await server.close()
        await schemas.drop_all()

    try:
        yield loop.run(start())
    finally:
        loop.run(stop())
        loop.close()


# --- the fuzzing loop ------------------------------------------------------------------


def _loopback_url(target: Target, original: str, pick: int) -> str:
    """Replace a generated URL by one on this machine, keeping its path for variety."""
    try:
        parts = urlsplit(original)
        tail = parts.path + (f"?{parts.query}" if parts.query else "")
    except ValueError:  # "http://[": still only ever sent to loopback
        tail = "/["
    bases = [target.nodes["kiwi"].url, target.calendar_url, target.closed_url, target.lex.url]
    base = bases[pick % len(bases)]
    url = base if pick < len(bases) else base.rstrip("/") + (tail or "/")
    assert urlsplit(url).hostname == LOOPBACK, url
    return url


def _adjust(case: schemathesis.Case, target: Target, data: st.DataObject) -> None:
    """Seeded ids for path parameters, loopback URLs, and no self-revocation."""
    label = f"{case.method.upper()} {case.path}"
    for name in list(case.path_parameters or {}):
        pool = target.pool(label, name)
        if pool and data.draw(st.booleans(), label=f"seeded {name}"):
            case.path_parameters[name] = data.draw(st.sampled_from(pool), label=name)
    if label == "DELETE /admin/api/v1/tokens/{token_id}":
        sent = str((case.path_parameters or {}).get("token_id")).strip().lstrip("+0")
        if sent in {str(token_id) for token_id in target.protected_token_ids}:
            case.path_parameters["token_id"] = target.known["token_id"][0]
    if isinstance(case.body, dict) and "url" in case.body:
        original = case.body["url"]
        pick = data.draw(st.integers(0, 7), label="url")
        case.body["url"] = _loopback_url(
            target, original if isinstance(original, str) else "", pick
        )
        if label == "POST /admin/api/v1/peers" and data.draw(st.booleans(), label="real peer"):
            kiwi = target.nodes["kiwi"]
            case.body.update(url=kiwi.url, fingerprint=kiwi.fingerprint)


def _order(operation: schemathesis.APIOperation) -> tuple[int, int, str]:
    """Reads first, then changes, then what ends things (cancel, suspend), then deletes.

    Deletes go deepest path first (a session's caps before the session), and
    the partnership last of all, so each operation still finds seeded rows.
    """
    label = f"{operation.method.upper()} {operation.path}"
    depth = -operation.path.count("/")
    if label in LATE:
        return LATE[label], 0, label
    return METHOD_ORDER[operation.method.upper()], depth, label


@dataclass
class Run:
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    statuses: dict[str, Counter[str]] = field(default_factory=dict)
    unreachable_peer: int = 0

    def record(self, label: str, response: schemathesis.Response) -> None:
        code = ""
        if response.status_code >= 400 and _is_json(response):
            code = " " + str(response.json().get("code"))
        self.statuses.setdefault(label, Counter())[f"{response.status_code}{code}"] += 1


def _is_json(response: schemathesis.Response) -> bool:
    return "json" in "".join(response.headers.get("content-type", []))


def _unreachable_peer(label: str, response: schemathesis.Response) -> bool:
    """``POST /peers`` with a URL that does not answer: 502 ``peer_unreachable``, by design."""
    if label != "POST /admin/api/v1/peers" or response.status_code != 502:
        return False
    return _is_json(response) and response.json().get("code") == "peer_unreachable"


class Fuzzer:
    """Sends cases to LEX, checks every answer, and keeps count."""

    def __init__(self, target: Target, session: requests.Session) -> None:
        self.target = target
        self.session = session
        self.run = Run()
        self.seen: set[str] = set()

    def send(self, case: schemathesis.Case, how: str) -> None:
        label = f"{case.method.upper()} {case.path}"
        admin = case.path.startswith("/admin/")
        token = self.target.admin_token if admin else self.target.portal_token
        response = case.call(
            base_url=self.target.lex.url,
            session=self.session,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        self.run.requests += 1
        self.run.record(label, response)
        checks = CHECKS
        if _unreachable_peer(label, response):
            self.run.unreachable_peer += 1
            checks = CHECKS[1:]  # the documented 502: everything but the 5xx check
        try:
            case.validate_response(response, checks=checks)
        except FailureGroup as exc:
            key = "|".join(sorted(f"{label} {f.title} {f.message[:80]}" for f in exc.exceptions))
            if key not in self.seen:
                self.seen.add(key)
                self.run.failures.append(f"{label} [{how}]\n{str(exc).strip()[:3000]}")

    def seeded(self, operation: schemathesis.APIOperation) -> None:
        """One request that must reach real rows: seeded ids and a valid body."""
        label = f"{operation.method.upper()} {operation.path}"
        names = [p.name for p in operation.path_parameters]
        path = {name: self.target.pool(label, name)[0] for name in names}
        body = self.target.bodies.get(label)
        if body is None:
            case = operation.Case(path_parameters=path)
        else:
            case = operation.Case(path_parameters=path, body=body, media_type="application/json")
        self.send(case, "seeded")

    def fuzz(self, operation: schemathesis.APIOperation, examples: int) -> None:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            self._fuzz(operation, mode, examples)

    def _fuzz(
        self, operation: schemathesis.APIOperation, mode: schemathesis.GenerationMode, examples: int
    ) -> None:
        strategy = operation.as_strategy(generation_mode=mode)

        @hypothesis.settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(case=strategy, data=st.data())
        def fuzz(case: schemathesis.Case, data: st.DataObject) -> None:
            _adjust(case, self.target, data)
            if mode is schemathesis.GenerationMode.POSITIVE:
                # JSON Schema counts 1.0 as an integer; the node's strict JSON
                # refuses it (float_not_allowed, which negative mode still sends).
                case.body = _integral(case.body)
            self.send(case, mode.value)

        with contextlib.suppress(hypothesis.errors.Unsatisfiable):
            fuzz()  # Unsatisfiable: nothing to negate in this operation


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


class FuzzSummary(UserWarning):
    """How many requests the fuzzing sent; a warning so that pytest shows it after the
    run, also from xdist workers (CI runs ``-n 2``), where printed output is lost."""


def test_fuzz_running_node(engine: str, target: Target, record_property: Any) -> None:
    schema = schemathesis.openapi.from_path(SPEC)
    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=_order)
    with requests.Session() as session:
        fuzzer = Fuzzer(target, session)
        for operation in operations:
            fuzzer.seeded(operation)
            fuzzer.fuzz(operation, EXAMPLES[engine])
        # The fuzzer never locked itself out: both of its tokens still work.
        for path, token in (
            ("/admin/api/v1/node", target.admin_token),
            ("/api/v1/reservations", target.portal_token),
        ):
            answer = session.get(
                f"{target.lex.url}{path}", headers={"Authorization": f"Bearer {token}"}
            )
            assert answer.status_code == 200, answer.text
    run = fuzzer.run
    summary = (
        f"schemathesis ({engine}): {run.requests} requests to {len(operations)} operations, "
        f"{len(run.failures)} failing checks (5xx or schema), "
        f"{run.unreachable_peer} documented 502 peer_unreachable"
    )
    warnings.warn(summary, FuzzSummary, stacklevel=1)
    record_property("schemathesis_requests", run.requests)
    assert not run.failures, "\n\n".join([summary, *run.failures])
    assert len(operations) >= 45
    assert run.requests >= FLOOR_PER_EXAMPLE * EXAMPLES[engine], summary
    if engine == "sqlite":  # the full run: seeding made every operation succeed at least once
        unreached = {
            label: dict(answers)
            for label, answers in run.statuses.items()
            if not any(answer < "4" for answer in answers)
        }
        assert not unreached, f"never a 2xx/3xx answer: {unreached}"
