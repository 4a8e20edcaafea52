"""The aiohttp application factory.

``create_app(settings)`` builds the app; its ``cleanup_ctx`` opens the node
(database, keys, HTTP client: :func:`node.runtime.open_node`) and starts
the scheduler, and closes both on shutdown.  Tests pass their own clock and
may switch the scheduler off to drive jobs by hand.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from node.background import BACKGROUND, BackgroundTasks
from node.clock import Clock, SystemClock
from node.db import Database
from node.db.nonces import NonceBatcher
from node.observability import logs
from node.observability.metrics import METRICS, Metrics
from node.observability.requests import echo_request_id, make_observer
from node.runtime import NodeServices, open_node
from node.scheduler import build_scheduler
from node.settings import Settings
from node.ui import site as ui_site
from node.web import (
    admin_api,
    admin_imports,
    admin_reservations,
    health,
    openapi_route,
    portal_api,
    portal_reservations,
    protocol_reservations,
    protocol_routes,
)
from node.web.errors import json_errors, refuse_nul
from node.web.protocol_auth import AuthState, make_protocol_auth, rate_limiter
from node.web.protocol_routes import NODE

log = logging.getLogger(__name__)
SEATS_BATCH_SECONDS = 0.5
SETTINGS = web.AppKey("settings", Settings)


class SeatPublisher:
    """Re-signs announcements shortly after seats changed, a burst as one batch.

    A change that arrives while a batch runs sets ``dirty`` again, so the
    loop runs once more; the scheduled ``publish_seats`` job is the backstop.
    """

    def __init__(self, node: NodeServices) -> None:
        self.node = node
        self.dirty = False

    async def run(self) -> int:
        published = 0
        while self.dirty:
            self.dirty = False
            await asyncio.sleep(SEATS_BATCH_SECONDS)
            published += await self.node.sessions.publish_seats()
        return published


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    db: Database | None = None,
    run_scheduler: bool = True,
) -> web.Application:
    clock = clock or SystemClock()

    async def node_context(app: web.Application) -> AsyncIterator[None]:
        async with open_node(settings, clock, db=db) as node:
            app[NODE] = node
            auth_state = AuthState(rate_limiter(node), NonceBatcher(node.db))
            app.middlewares.append(make_protocol_auth(node, auth_state))
            tasks = BackgroundTasks()
            app[BACKGROUND] = tasks
            node.notifier.on_queued = lambda: tasks.start("deliver", node.deliverer.deliver_due)
            node.requests.on_queued = node.notifier.on_queued

            seats = SeatPublisher(node)

            def seats_changed(queued: bool) -> None:
                if queued:
                    tasks.start("deliver", node.deliverer.deliver_due)
                seats.dirty = True
                tasks.start("seats", seats.run)

            node.host.on_changed = seats_changed
            metrics.attach(node)
            scheduler = build_scheduler(node, metrics=metrics) if run_scheduler else None
            if scheduler is not None:
                logs.run_with(scheduler.start, node=settings.node_id)  # jobs log their node
            try:
                await node.sessions.mirror_missing()  # sessions from before schema 0002
                await node.notifier.changed()  # heal a crash between commit and stamp
                yield
            finally:
                if scheduler is not None:
                    scheduler.shutdown(wait=False)
                await tasks.close()

    metrics = Metrics()
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            make_observer(metrics, settings.node_id),
            json_errors,
            admin_api.admin_auth,
            refuse_nul,
        ],
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app.on_response_prepare.append(echo_request_id)
    app.cleanup_ctx.append(node_context)
    protocol_routes.setup(app)
    protocol_reservations.setup(app)
    admin_api.setup(app)
    admin_imports.setup(app)
    admin_reservations.setup(app)
    portal_api.setup(app)
    portal_reservations.setup(app)
    openapi_route.setup(app)
    health.setup(app)
    ui_site.setup(app)
    return app
