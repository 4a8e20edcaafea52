"""Health and metrics endpoints: ``/healthz``, ``/readyz`` and ``/metrics``.

``GET /healthz`` is liveness: the process runs its event loop and answers.
It touches nothing else, so a slow database never gets a healthy process
restarted.  ``GET /readyz`` is readiness, for load balancers: it checks
that the database answers a ``SELECT 1`` and has every migration applied,
and that the node's signing key is loaded and its file still on disk (a
replica whose data volume went missing could not sign after a restart).
Each check reports ``ok`` and, when it fails, a short reason without the
database URL; the answer is 200 when all pass, else 503 with the first
failing check as ``code`` (``database_unavailable``,
``migrations_pending``, ``keys_missing``).  Both are open to anyone:
they say nothing a caller could use.

``GET /metrics`` on the main port needs ``Authorization: Bearer
<metrics_token>`` (compared in constant time) and does not exist (404)
while no token is set.  With ``metrics_port`` set, a second small site on
``listen_host:metrics_port`` serves ``/metrics`` without a token, for a
Prometheus on the same private network; that port must never be exposed
publicly.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from node.db import stats as stats_repo
from node.observability.metrics import CONTENT_TYPE, METRICS
from node.runtime import NodeServices
from node.web.errors import error_response
from node.web.protocol_routes import NODE

CHECK_TIMEOUT = 2.0
_FAILURE_CODES = {
    "database": ("database_unavailable", "Datenbank nicht erreichbar / database unreachable"),
    "migrations": ("migrations_pending", "Migrationen ausstehend / migrations pending"),
    "keys": ("keys_missing", "Schlüssel nicht geladen / signing key not loaded"),
}


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "node_id": request.app[NODE].settings.node_id})


async def _check_database(node: NodeServices) -> dict[str, Any]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT), node.db.read() as conn:
            await stats_repo.ping(conn)
    except Exception as exc:  # any failure means "not ready"; the kind is enough
        return {"ok": False, "error": _reason(exc)}
    return {"ok": True}


async def _check_migrations(node: NodeServices) -> dict[str, Any]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            pending = await node.db.pending_migrations()
    except Exception as exc:
        return {"ok": False, "error": _reason(exc)}
    if pending:
        return {"ok": False, "pending": sorted(pending)}
    return {"ok": True}


def _check_keys(node: NodeServices) -> dict[str, Any]:
    try:
        key = node.identity.signing_key
    except Exception as exc:
        return {"ok": False, "error": _reason(exc)}
    if not node.identity.key_path(key.key_id).exists():
        return {"ok": False, "error": "key file missing", "key_id": key.key_id}
    return {"ok": True, "key_id": key.key_id}


def _reason(exc: BaseException) -> str:
    """The kind of failure, never its text (which may name hosts or users)."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    return type(exc).__name__


async def readyz(request: web.Request) -> web.Response:
    node = request.app[NODE]
    checks = {"database": await _check_database(node)}
    if checks["database"]["ok"]:
        checks["migrations"] = await _check_migrations(node)
    else:
        checks["migrations"] = {"ok": False, "error": "skipped: no database"}
    checks["keys"] = _check_keys(node)
    failing = [name for name, check in checks.items() if not check["ok"]]
    if not failing:
        return web.json_response({"status": "ready", "checks": checks})
    code, message = _FAILURE_CODES[failing[0]]
    return web.json_response(
        {
            "status": "not_ready",
            "code": code,
            "message": message,
            "failing": failing,
            "checks": checks,
        },
        status=503,
    )


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


async def metrics_with_token(request: web.Request) -> web.Response:
    expected = request.app[NODE].settings.metrics_token
    if not expected:
        return error_response(404, "not_found", "Nicht gefunden / not found")
    given = _bearer(request) or ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return error_response(
            401,
            "unauthenticated",
            "Metrik-Token fehlt oder falsch / metrics token missing or wrong",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    return await metrics_open(request)


async def metrics_open(request: web.Request) -> web.Response:
    body = await request.app[METRICS].render(request.app[NODE])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def metrics_site(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: serve ``/metrics`` without a token on ``metrics_port``, if set."""
    settings = app[NODE].settings
    if settings.metrics_port is None:
        yield
        return
    side = web.Application()
    side[NODE] = app[NODE]
    side[METRICS] = app[METRICS]
    side.router.add_get("/metrics", metrics_open)
    runner = web.AppRunner(side, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.listen_host, settings.metrics_port).start()
        yield
    finally:
        await runner.cleanup()


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_with_token)
    app.cleanup_ctx.append(metrics_site)
