"""``/metrics``: the token guard, the separate port, and what a real flow counts.

The flow is the real one between two nodes over loopback: peering, a feed
pull, a reservation through the portal API answered by the host, a job
run by hand through the scheduler's own wrapper.  The exposition is
parsed with prometheus-client's parser, as Prometheus would read it.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from node.clock import ManualClock
from node.db.tables import peers
from node.observability.metrics import METRICS
from node.scheduler import build_scheduler
from tests.node.conftest import NodeFactory, RunningNode, free_port, peer, sync
from tests.node.reservations.helpers import api, open_session, portal_token, reserve, state_of
from tests.node.test_subscription_bad_input import (  # the fake partner feed of those tests
    EvilFeed,
    item,
    serve_pages,
    signed,
)

TOKEN = "metrics-token-0123456789abcdef"
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "openseats-dashboard.json"
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(url: str, token: str | None = TOKEN) -> tuple[int, str, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


def parse(exposition: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def metrics_of(node: RunningNode) -> Samples:
    status, _, text = await scrape(f"{node.url}/metrics")
    assert status == 200, text
    return parse(text)


@pytest.mark.parametrize("engine", ["sqlite"])
async def test_token_guard_and_metrics_port(make_node: NodeFactory) -> None:
    closed = await make_node("kiwi")
    status, _, body = await scrape(f"{closed.url}/metrics")
    assert status == 404, body  # no token configured: not there at all
    assert '"code": "not_found"' in body

    port = free_port()
    node = await make_node("lex", metrics_token=TOKEN, metrics_port=port)
    for wrong in (None, "metrics-token-0123456789abcdeX", TOKEN + "x"):
        status, _, body = await scrape(f"{node.url}/metrics", wrong)
        assert status == 401, body
        assert '"code": "unauthenticated"' in body
    async with aiohttp.ClientSession() as http:
        basic = {"Authorization": f"Basic {TOKEN}"}
        async with http.get(f"{node.url}/metrics", headers=basic) as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")

    status, kind, body = await scrape(f"{node.url}/metrics")
    assert status == 200
    assert kind.startswith("text/plain; version=0.0.4")
    assert "openseats_database_up 1.0" in body

    # The private port needs no token; it serves only /metrics.
    status, _, body = await scrape(f"http://127.0.0.1:{port}/metrics", None)
    assert status == 200
    assert "openseats_http_requests_total" in body
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
            assert response.status == 404
        async with http.get(f"http://127.0.0.1:{port}/api/v1/catalogue") as response:
            assert response.status == 404


async def test_a_real_flow_is_counted(make_node: NodeFactory, clock: ManualClock) -> None:
    lex = await make_node("lex", metrics_token=TOKEN)
    datev = await make_node("datev", metrics_token=TOKEN)
    await peer(datev, lex)
    sid = await open_session(lex, clock, seats=1)
    await sync(lex, datev)
    pulled = await datev.node.subscriber.pull(lex.node_id, force=True)
    assert pulled is not None

    token = await portal_token(datev)
    first = await reserve(datev, lex, sid, token, "emp-4711")
    await sync(datev, lex)
    assert (await state_of(datev, first["id"], token))["state"] == "confirmed"
    second = await reserve(datev, lex, sid, token, "emp-4712")
    await sync(datev, lex)
    assert (await state_of(datev, second["id"], token))["state"] == "waitlisted"
    status, _ = await api(datev, "GET", "/reservations/no-such-id", token)
    assert status == 404
    async with datev.http.get(f"{datev.url}/protocol/v1/feed") as response:
        assert response.status == 401  # unsigned: a verify failure

    at_datev = await metrics_of(datev)
    assert value(at_datev, "openseats_feed_pulls_total", peer=lex.node_id, outcome="ok") >= 1
    assert value(at_datev, "openseats_items_total", outcome="merged", reason="updated") >= 1
    assert value(at_datev, "openseats_verify_failures_total", kind="missing_signature") == 1
    requests = {
        labels: count
        for (name, labels), count in at_datev.items()
        if name == "openseats_http_requests_total"
    }
    created = frozenset(
        {"route": "/api/v1/sessions/{id}/reservations", "method": "POST", "status": "202"}.items()
    )
    assert requests[created] == 2
    shown = frozenset(
        {"route": "/api/v1/reservations/{id}", "method": "GET", "status": "200"}.items()
    )
    assert requests[shown] == 2
    missing = frozenset(
        {"route": "/api/v1/reservations/{id}", "method": "GET", "status": "404"}.items()
    )
    assert requests[missing] == 1
    routes = {dict(labels)["route"] for labels in requests}
    assert not any(first["id"] in route or sid in route for route in routes)
    assert (
        value(
            at_datev,
            "openseats_http_request_duration_seconds_count",
            route="/api/v1/sessions/{id}/reservations",
            method="POST",
        )
        == 2
    )

    at_lex = await metrics_of(lex)
    assert value(at_lex, "openseats_reservations_total", outcome="confirmed", reason="") == 1
    assert value(at_lex, "openseats_reservations_total", outcome="waitlisted", reason="") == 1
    put = {"route": "/protocol/v1/reservations/{uuid}", "method": "PUT", "status": "200"}
    assert (
        value(at_lex, "openseats_http_requests_total", **put)
        + value(at_lex, "openseats_http_requests_total", **{**put, "status": "201"})
        == 2
    )
    assert value(at_lex, "openseats_seats_open") == 1
    assert value(at_lex, "openseats_seats_taken") == 1
    assert value(at_lex, "openseats_database_up") == 1
    # Both delivered: nothing waits, nobody backs off.
    assert at_datev[("openseats_outbox_depth", frozenset({("peer", lex.node_id)}))] == 0
    assert at_datev[("openseats_outbox_dead_letters", frozenset({("peer", lex.node_id)}))] == 0
    assert value(at_datev, "openseats_peer_backoff_seconds", peer=lex.node_id) == 0

    await _job_runs(lex, clock)


async def _job_runs(node: RunningNode, clock: ManualClock) -> None:
    """Jobs run by hand through the scheduler's own wrapper (claims included)."""
    scheduler = build_scheduler(node.node, metrics=node.server.app[METRICS])
    await scheduler.get_job("purge_nonces").func()
    await scheduler.get_job("expire_holds").func()
    await scheduler.get_job("expire_holds").func()  # the same tick: already run
    clock.advance(seconds=15)
    await scheduler.get_job("expire_holds").func()
    samples = await metrics_of(node)
    assert value(samples, "openseats_job_runs_total", job="purge_nonces", outcome="ok") == 1
    assert value(samples, "openseats_job_runs_total", job="expire_holds", outcome="ok") == 2
    assert value(samples, "openseats_job_runs_total", job="expire_holds", outcome="skipped") == 1
    assert value(samples, "openseats_job_runs_total", job="expire_holds", outcome="failed") == 0


@pytest.mark.parametrize("engine", ["sqlite"])
async def test_outbox_and_backoff_gauges_while_a_peer_is_down(
    make_node: NodeFactory, clock: ManualClock
) -> None:
    lex, datev = await make_node("lex", metrics_token=TOKEN), await make_node("datev")
    await peer(datev, lex)
    sid = await open_session(lex, clock, seats=1)
    await sync(lex, datev)
    token = await portal_token(datev)
    await lex.stop()
    await reserve(datev, lex, sid, token, "emp-1")
    await reserve(datev, lex, sid, token, "emp-2")
    await datev.settle()
    failed = await datev.node.subscriber.pull(lex.node_id, force=True)
    assert failed is not None

    metrics = datev.server.app[METRICS]
    exposition = (await metrics.render(datev.node)).decode()
    samples = parse(exposition)
    assert value(samples, "openseats_outbox_depth", peer=lex.node_id) == 2
    assert value(samples, "openseats_outbox_dead_letters", peer=lex.node_id) == 0
    assert value(samples, "openseats_peer_backoff_seconds", peer=lex.node_id) > 0
    assert value(samples, "openseats_feed_pulls_total", peer=lex.node_id, outcome="connection") == 1

    # Back up, but lex suspended the peering meanwhile: a 403 is final, a dead letter.
    await lex.start_again()
    status, body = await lex.admin("POST", f"/peers/{datev.node_id}/suspend")
    assert status == 200, body
    await lex.settle()
    clock.advance(minutes=10)
    await datev.node.deliverer.deliver_due()
    samples = parse((await metrics.render(datev.node)).decode())
    assert value(samples, "openseats_outbox_dead_letters", peer=lex.node_id) >= 1


def exposed_names(exposition: str) -> set[str]:
    """Every series name the exposition declares, with or without samples yet."""
    names = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
        names.update(sample.name for sample in family.samples)
    return names


@pytest.mark.parametrize("engine", ["sqlite"])
async def test_dashboard_queries_only_exposed_metrics(make_node: NodeFactory) -> None:
    node = await make_node("lex", metrics_token=TOKEN)
    status, _, exposition = await scrape(f"{node.url}/metrics")
    assert status == 200
    exposed = exposed_names(exposition)

    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    queried: set[str] = set()
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            queried.update(re.findall(r"\bopenseats_[a-z_]+", target["expr"]))
    queried.update(re.findall(r"\bopenseats_[a-z_]+", variables["instance"]["definition"]))
    assert queried - exposed == set()
    # The dashboard covers every family the node exposes.
    families = {family.name for family in text_string_to_metric_families(exposition)}
    assert {name for name in families if not any(q.startswith(name) for q in queried)} == set()


@pytest.fixture
async def evil() -> AsyncIterator[EvilFeed]:
    feed = EvilFeed()
    yield feed
    if feed.server is not None:
        await feed.server.close()


@pytest.mark.parametrize("engine", ["sqlite"])
async def test_rejected_items_and_broken_pages_are_counted(
    make_node: NodeFactory, evil: EvilFeed
) -> None:
    """A partner's feed with a tampered item, then a page that goes backwards."""
    lex, datev = await make_node("lex"), await make_node("datev", metrics_token=TOKEN)
    await peer(datev, lex)
    await sync(datev, lex)  # the pull that peering starts, against the real feed
    feed_url = await evil.start()
    async with datev.node.db.write() as conn:
        row = (await conn.execute(peers.select().where(peers.c.node_id == lex.node_id))).one()
        descriptor = json.loads(row.descriptor)
        descriptor["endpoints"]["feed"] = feed_url
        await conn.execute(
            update(peers).where(peers.c.id == row.id).values(descriptor=json.dumps(descriptor))
        )
    before = await metrics_of(datev)  # peering already pulled once
    tampered = {**signed(lex), "title": "Umgeschrieben"}
    good = signed(lex, id="evil-2", title="Gut", version=1)
    serve_pages(evil, feed_url, 0, [item(tampered, 1), item(good, 2)])
    result = await datev.node.subscriber.pull(lex.node_id, force=True)
    assert result is not None
    assert (result.merged, result.rejected) == (1, 1)

    again = signed(lex, id="evil-3", title="Nie", version=1)
    backwards = {"items": [item(again, 1)], "next": f"{feed_url}?afterChangeNumber=1"}
    evil.handler = lambda request: web.json_response(backwards)  # item 1 is not after cursor 2
    result = await datev.node.subscriber.pull(lex.node_id, force=True)
    assert result is not None
    assert result.merged == 0

    samples = await metrics_of(datev)
    ok = {"peer": lex.node_id, "outcome": "ok"}
    assert value(samples, "openseats_feed_pulls_total", **ok) == (
        value(before, "openseats_feed_pulls_total", **ok) + 1
    )
    assert value(samples, "openseats_items_total", outcome="merged", reason="updated") == 1
    assert value(samples, "openseats_items_total", outcome="rejected", reason="bad_signature") == 1
    assert value(samples, "openseats_verify_failures_total", kind="bad_signature") == 1
    assert value(samples, "openseats_feed_pulls_total", peer=lex.node_id, outcome="feed_order") == 1
    assert value(samples, "openseats_peer_backoff_seconds", peer=lex.node_id) > 0
