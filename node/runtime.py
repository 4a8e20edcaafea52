"""Wiring the node's services together, for the web app and the CLI alike.

:func:`open_node` opens the database (migrating it), loads the keys,
creates the HTTP client session and builds every service; leaving the
context closes them in reverse order.  The aiohttp app enters it from a
``cleanup_ctx``; CLI commands enter it directly, so both run the same code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

from node.clock import Clock, SystemClock
from node.db import Database
from node.federation.client import PeerClient
from node.federation.outbox import OutboxDeliverer
from node.federation.peering import PeeringService
from node.federation.subscription import Subscriber
from node.identity import NodeIdentity
from node.publishing.importer import Importer
from node.publishing.notify import FeedNotifier
from node.publishing.service import SessionService
from node.reservations.host import HostDesk
from node.reservations.requester import REQUEST_KINDS, Requests
from node.settings import Settings


@dataclass
class NodeServices:
    settings: Settings
    clock: Clock
    db: Database
    identity: NodeIdentity
    http: aiohttp.ClientSession
    client: PeerClient
    deliverer: OutboxDeliverer
    notifier: FeedNotifier
    sessions: SessionService
    peering: PeeringService
    importer: Importer
    subscriber: Subscriber
    host: HostDesk
    requests: Requests


@asynccontextmanager
async def open_node(
    settings: Settings,
    clock: Clock | None = None,
    *,
    db: Database | None = None,
    migrate: bool = True,
) -> AsyncIterator[NodeServices]:
    clock = clock or SystemClock()
    own_db = db is None
    database = db or Database(settings.database, pool_size=settings.database_pool_size)
    try:
        if migrate:
            await database.upgrade()
        identity = NodeIdentity(settings, database)
        await identity.load()
        async with aiohttp.ClientSession(
            headers={"User-Agent": "OpenSeats/0.1"}, raise_for_status=False
        ) as http:
            client = PeerClient(http, clock, lambda: identity.signing_key)
            deliverer = OutboxDeliverer(
                database, client, clock, lease_seconds=settings.lease_seconds
            )
            notifier = FeedNotifier(database, settings.node_id, clock)
            sessions = SessionService(database, identity, clock, notifier)
            host = HostDesk(database, identity, clock, settings)
            sessions.seat_hooks = host
            requests = Requests(database, settings.node_id, clock, settings)
            for kind in REQUEST_KINDS:
                deliverer.on_response[kind] = requests.record_answer
                deliverer.on_dead[kind] = requests.record_failure
            yield NodeServices(
                settings=settings,
                clock=clock,
                db=database,
                identity=identity,
                http=http,
                client=client,
                deliverer=deliverer,
                notifier=notifier,
                sessions=sessions,
                peering=PeeringService(database, identity, client, deliverer, clock),
                importer=Importer(database, sessions, clock, http),
                subscriber=Subscriber(database, client, clock),
                host=host,
                requests=requests,
            )
    finally:
        if own_db:
            await database.dispose()
