"""Delivering outbox rows: the state graph, backoff and dead letters.

States of a message (checked when this module is imported)::

    pending --(2xx)------------------------------> sent
    pending --(401, 429, 5xx, timeout, network)--> pending  (retry later)
    pending --(other 4xx, or too many attempts)--> dead     (shown to the admin)
    dead    --(admin retries)--------------------> pending

Backoff is per message and stored (``next_attempt_at``): ``base * 2^n``
capped at one hour, with full jitter, or the peer's ``Retry-After``.  A
peer's later messages wait behind its oldest pending one, so each peer
gets its messages in order and one at a time.  A message is marked sent
only after the peer answered; a crash in between resends it, and the
receiving side's idempotency makes that harmless.

Kinds whose answer matters (a reservation request's decision) register an
``on_response`` hook: it runs in the very transaction that marks the
message sent, so the answer is recorded exactly when the message stops
being pending.  An answer the hook cannot accept makes the message a dead
letter instead.  ``on_dead`` hooks run in the transaction that buries a
message, so the cause can tell its user.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncConnection

from node.clock import Clock
from node.db import Database
from node.db import outbox as outbox_repo
from node.db.outbox import OutboxRow
from node.federation.client import DeliveryError, PeerClient
from protocol.errors import ProtocolError

ResponseHook = Callable[[AsyncConnection, OutboxRow, bytes], Awaitable[None]]
DeadHook = Callable[[AsyncConnection, OutboxRow, str], Awaitable[None]]


class State(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.PENDING: frozenset({State.PENDING, State.SENT, State.DEAD}),
    State.SENT: frozenset(),
    State.DEAD: frozenset({State.PENDING}),
}
RETRY_BASE = timedelta(seconds=5)
RETRY_CAP = timedelta(hours=1)
MAX_ATTEMPTS = 40  # about two days of hourly retries after the ramp


def _check_graph() -> None:
    for state in State:
        if state not in TRANSITIONS:
            raise RuntimeError(f"outbox state {state} has no transitions")
        if state is not State.SENT and not hasattr(OutboxDeliverer, f"handle_{state}"):
            raise RuntimeError(f"outbox state {state} has no handle_{state}")


def retryable(error: DeliveryError) -> bool:
    if error.kind in ("timeout", "connection"):
        return True
    status = error.status or 0
    return status in (401, 408, 429) or status >= 500


def backoff(attempts: int, rng: random.Random) -> timedelta:
    ceiling = min(RETRY_BASE * (2**attempts), RETRY_CAP)
    return timedelta(seconds=ceiling.total_seconds() * rng.uniform(0.5, 1.0))


class OutboxDeliverer:
    def __init__(
        self, db: Database, client: PeerClient, clock: Clock, rng: random.Random | None = None
    ) -> None:
        self.db = db
        self.client = client
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.on_response: dict[str, ResponseHook] = {}
        self.on_dead: dict[str, DeadHook] = {}

    async def deliver_due(self) -> int:
        """Deliver the due head message of every peer; return how many were tried."""
        async with self.db.read() as conn:
            due = await outbox_repo.peers_with_due_messages(conn, self.clock.now())
        results = await asyncio.gather(*(self.deliver_peer(peer) for peer in due))
        return sum(results)

    async def deliver_peer(self, peer_node_id: str, *, drain: bool = True) -> int:
        """Send this peer's due messages in order, one at a time."""
        tried = 0
        lock = self._locks[peer_node_id]
        if lock.locked():
            return 0
        async with lock:
            while True:
                async with self.db.read() as conn:
                    row = await outbox_repo.head(conn, peer_node_id)
                if row is None or row.next_attempt_at > self.clock.now():
                    return tried
                tried += 1
                if not await self.handle_pending(row) or not drain:
                    return tried

    async def handle_pending(self, row: OutboxRow) -> bool:
        """Try one message; return whether it left the pending state."""
        try:
            response = await self.client.signed(row.method, row.url, row.body.encode("utf-8"))
        except DeliveryError as error:
            return await self._failed(row, error)
        hook = self.on_response.get(row.kind)
        try:
            await self._move(row, State.SENT, error=None, body=response.body if hook else None)
        except ProtocolError as exc:
            invalid = DeliveryError("invalid", f"Ungültige Antwort / invalid answer: {exc}")
            return await self._failed(row, invalid)
        return True

    async def handle_dead(self, row: OutboxRow) -> None:
        """An admin asked to try a dead letter again."""
        await self._move(
            row, State.PENDING, error=row.last_error, count=False, next_at=self.clock.now()
        )

    async def _failed(self, row: OutboxRow, error: DeliveryError) -> bool:
        if retryable(error) and row.attempts + 1 < MAX_ATTEMPTS:
            delay = backoff(row.attempts, self.rng)
            if error.retry_after is not None:
                delay = max(delay, timedelta(seconds=min(error.retry_after, 3600)))
            await self._move(row, State.PENDING, error=str(error), next_at=self.clock.now() + delay)
            return False
        await self._move(row, State.DEAD, error=str(error))
        return True

    async def _move(
        self,
        row: OutboxRow,
        state: State,
        *,
        error: str | None,
        next_at: datetime | None = None,
        count: bool = True,
        body: bytes | None = None,
    ) -> None:
        if state not in TRANSITIONS[State(row.state)]:
            raise RuntimeError(f"outbox: {row.state} -> {state} is not allowed")
        async with self.db.write() as conn:
            if body is not None:
                await self.on_response[row.kind](conn, row, body)
            if state is State.DEAD and row.kind in self.on_dead:
                await self.on_dead[row.kind](conn, row, error or "")
            await outbox_repo.transition(
                conn,
                row.id,
                state=state,
                now=self.clock.now(),
                next_attempt_at=next_at,
                error=error,
                count_attempt=count,
            )


_check_graph()
