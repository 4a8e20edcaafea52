"""Seeing what a running node does: request context, logs, metrics, health.

Operations teams watch a node like any other service, so everything here
uses their tools' formats and nothing of our own:

* **Logs** (:mod:`node.observability.logs`) go through the standard
  :mod:`logging` module.  One handler on the root logger writes either one
  JSON object per line (``log_format = "json"``, for ``openseats serve``
  and log shippers) or one readable line (``"console"``, for
  ``openseats demo``).  Each line carries the request id, the route
  template and, for signed protocol requests, the peer's node id.  They
  travel in :mod:`contextvars`, so a log call needs no extra arguments, and
  background work a request starts (an outbox delivery, a pull after a
  notice) inherits them because asyncio copies the context into new tasks.
* **The request middleware** (:mod:`node.observability.requests`) assigns
  the request id (a well-formed ``X-Request-Id`` from the proxy, else a new
  one; echoed in the response), binds the context and records the request
  in the metrics under its route *template*, never the raw path, so ids
  and refs never become label values.
* **Metrics** (:mod:`node.observability.metrics`) use prometheus-client with
  one :class:`~prometheus_client.CollectorRegistry` per app: tests run many
  nodes in one process, and the default global registry would mix their
  counters.  Events are counted where they happen; what is a *state*
  (outbox depth, backoff, seats) is read from the database when Prometheus
  scrapes, so every replica reports the same truth and nothing drifts.
* **Health** (:mod:`node.web.health`): ``/healthz`` (the process answers)
  and ``/readyz`` (database, migrations, keys).

No personal data and no secrets ever become a log field or a label value:
labels are route templates, node ids of peers, job names and stable
error codes, all from bounded sets.
"""
