"""Prometheus metrics of one node: counters for events, gauges read at scrape time.

Every app owns a :class:`Metrics` with its own ``CollectorRegistry``
(``app[METRICS]``); services that count something get it handed over by
:meth:`Metrics.attach`, the same way the app wires its other hooks, and
do nothing when none is attached (the CLI).

Counted where they happen (per process; Prometheus sums the replicas):

* ``openseats_http_requests_total{route,method,status}`` and
  ``openseats_http_request_duration_seconds{route,method}``;
* ``openseats_feed_pulls_total{peer,outcome}``: ``ok``, or why a pull
  failed (``timeout``, ``connection``, ``status``, ``invalid`` or the
  feed error code such as ``feed_order``);
* ``openseats_items_total{outcome,reason}``: ``merged`` (reason
  ``updated`` or ``deleted``) or ``rejected`` (reason the rejection code);
  repeats of an item already held are not counted;
* ``openseats_verify_failures_total{kind}``: request signatures at the
  protocol middleware and announcement signatures during a merge, by error
  code;
* ``openseats_reservations_total{outcome,reason}``: the host's first
  answer to each new reservation (``reason`` only for ``rejected``);
* ``openseats_job_runs_total{job,outcome}``: ``ok``, ``failed`` or
  ``skipped`` (another replica ran the tick).

Read from the database at scrape time by :class:`StateCollector`, so every
replica reports the same state: ``openseats_outbox_depth{peer}``,
``openseats_outbox_dead_letters{peer}``, ``openseats_peer_backoff_seconds{peer}``,
``openseats_seats_open``, ``openseats_seats_taken`` and
``openseats_database_up``.

Label values come only from bounded sets: route templates, known HTTP
methods, peers' node ids, job names and error codes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from node.db import stats as stats_repo
from node.db.stats import NodeStats

if TYPE_CHECKING:
    from node.runtime import NodeServices

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SCRAPE_TIMEOUT = 5.0
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class StateCollector(Collector):
    """Gauges from the latest database snapshot (taken just before each scrape)."""

    def __init__(self) -> None:
        self.snapshot: NodeStats | None = None

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "openseats_database_up", "1 if the last scrape could read the database"
        )
        up.add_metric([], 1.0 if self.snapshot is not None else 0.0)
        yield up
        if self.snapshot is None:
            return
        snap = self.snapshot
        depth = GaugeMetricFamily(
            "openseats_outbox_depth", "Messages waiting for delivery, per peer", labels=["peer"]
        )
        for peer, count in sorted(snap.outbox_pending.items()):
            depth.add_metric([peer], count)
        yield depth
        dead = GaugeMetricFamily(
            "openseats_outbox_dead_letters",
            "Messages given up on, waiting for an admin, per peer",
            labels=["peer"],
        )
        for peer, count in sorted(snap.outbox_dead.items()):
            dead.add_metric([peer], count)
        yield dead
        backoff = GaugeMetricFamily(
            "openseats_peer_backoff_seconds",
            "Seconds until an active peer is tried again after failures (0: not backing off)",
            labels=["peer"],
        )
        for peer, seconds in sorted(snap.backoff_seconds.items()):
            backoff.add_metric([peer], seconds)
        yield backoff
        seats_open = GaugeMetricFamily(
            "openseats_seats_open", "Seats opened to partners in sessions not yet ended"
        )
        seats_open.add_metric([], snap.seats_open)
        yield seats_open
        seats_taken = GaugeMetricFamily(
            "openseats_seats_taken", "Partner seats taken in sessions not yet ended"
        )
        seats_taken.add_metric([], snap.seats_taken)
        yield seats_taken


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.http_requests = Counter(
            "openseats_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "openseats_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method",
            ["route", "method"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.feed_pulls = Counter(
            "openseats_feed_pulls",
            "Feed pulls from partners, by peer and outcome",
            ["peer", "outcome"],
            registry=registry,
        )
        self.items = Counter(
            "openseats_items",
            "Feed items from partners merged or rejected, by reason",
            ["outcome", "reason"],
            registry=registry,
        )
        self.verify_failures = Counter(
            "openseats_verify_failures",
            "Signatures that did not verify (requests and announcements), by error code",
            ["kind"],
            registry=registry,
        )
        self.reservations = Counter(
            "openseats_reservations",
            "The host's answers to new partner reservations, by outcome",
            ["outcome", "reason"],
            registry=registry,
        )
        self.job_runs = Counter(
            "openseats_job_runs",
            "Scheduled job runs, by job and outcome",
            ["job", "outcome"],
            registry=registry,
        )
        self.state = StateCollector()
        registry.register(self.state)

    # --- counting ------------------------------------------------------------------

    def http_request(self, route: str, method: str, status: int, seconds: float) -> None:
        method = method if method in KNOWN_METHODS else "other"
        self.http_requests.labels(route, method, str(status)).inc()
        self.http_duration.labels(route, method).observe(seconds)

    def feed_pull(self, peer: str, outcome: str) -> None:
        self.feed_pulls.labels(peer, outcome).inc()

    def item(self, outcome: str, reason: str, count: int = 1) -> None:
        if count:
            self.items.labels(outcome, reason).inc(count)

    def verify_failure(self, kind: str) -> None:
        self.verify_failures.labels(kind).inc()

    def reservation(self, outcome: str, reason: str | None = None) -> None:
        self.reservations.labels(outcome, reason or "").inc()

    def job_run(self, job: str, outcome: str) -> None:
        self.job_runs.labels(job, outcome).inc()

    # --- wiring and output -------------------------------------------------------

    def attach(self, node: NodeServices) -> None:
        """Hand this app's metrics to the services that count events."""
        node.subscriber.metrics = self
        node.host.metrics = self

    async def render(self, node: NodeServices) -> bytes:
        """The exposition text, with the database gauges read just now."""
        try:
            async with asyncio.timeout(SCRAPE_TIMEOUT), node.db.read() as conn:
                self.state.snapshot = await stats_repo.node_stats(conn, node.clock.now())
        except Exception as exc:  # the counters are still worth serving
            log.warning("metrics: database not readable (%s)", type(exc).__name__)
            self.state.snapshot = None
        return generate_latest(self.registry)


METRICS = web.AppKey("metrics", Metrics)
