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

**Several replicas.**  "One message in flight per peer" must hold across
processes, not only inside one (the ``asyncio.Lock`` per peer).  Before
sending anything to a peer, a replica claims the peer's row in
``outbox_claims`` with a lease (:func:`node.db.leases.claim_peer`, one
conditional upsert: the claim is free, ran out, or is already ours).  Only
the holder reads the peer's head message and sends it; the others skip the
peer.  The lease is renewed in the background while the holder works and
in every transaction that records an answer, and released when the peer
has nothing due, so a live holder never loses it and two live replicas
never send to the same peer at the same time; order is kept because the
holder always sends the oldest pending message next.  The claim is held
only in rows, never as a database lock across the HTTP call.

A replica killed while holding a claim leaves it behind until the lease
runs out (``lease_seconds``); then another replica claims the peer and
sends the head message again.  If the killed one had sent it but not yet
recorded the answer, the peer gets it twice: the at-least-once delivery
the protocol already expects (a reservation ``PUT`` with the same body is
answered the same, a ``feed_changed`` notice only makes the peer pull).
Nothing is lost, and no answer is recorded twice: :func:`transition` moves
a message only from the state and attempt count it was read with, so a
replica that wakes up after losing its lease records nothing.
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
from node.db import leases as lease_repo
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
        self,
        db: Database,
        client: PeerClient,
        clock: Clock,
        rng: random.Random | None = None,
        *,
        lease_seconds: float = 30.0,
    ) -> None:
        self.db = db
        self.client = client
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self.lease_seconds = lease_seconds
        self.holder = lease_repo.new_holder()  # this replica, in outbox_claims
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
        """Send this peer's due messages in order, one at a time, under its claim.

        Returns 0 at once if this process or another replica is delivering
        to the peer already.
        """
        tried = 0
        lock = self._locks[peer_node_id]
        if lock.locked():
            return 0
        async with lock:
            lease = await self._claim(peer_node_id)
            if lease is None:
                return 0
            async with lease:
                while not lease.lost:
                    async with self.db.read() as conn:
                        row = await outbox_repo.head(conn, peer_node_id)
                    if row is None or row.next_attempt_at > self.clock.now():
                        break
                    tried += 1
                    if not await self.handle_pending(row, lease) or not drain:
                        break
            return tried

    async def _claim(self, peer_node_id: str) -> lease_repo.Lease | None:
        now = self.clock.now()
        until = now + timedelta(seconds=self.lease_seconds)
        async with self.db.write() as conn:
            if not await lease_repo.claim_peer(conn, peer_node_id, self.holder, now, until):
                return None

        async def renew(conn: AsyncConnection, until: datetime) -> bool:
            return await lease_repo.renew_peer(conn, peer_node_id, self.holder, until)

        async def release(conn: AsyncConnection) -> None:
            await lease_repo.release_peer(conn, peer_node_id, self.holder)

        return lease_repo.Lease(self.db, self.clock, self.lease_seconds, renew, release)

    async def handle_pending(self, row: OutboxRow, lease: lease_repo.Lease | None = None) -> bool:
        """Try one message; return whether this replica moved it out of pending."""
        try:
            response = await self.client.signed(row.method, row.url, row.body.encode("utf-8"))
        except DeliveryError as error:
            return await self._failed(row, error, lease)
        hook = self.on_response.get(row.kind)
        try:
            return await self._move(
                row, State.SENT, error=None, body=response.body if hook else None, lease=lease
            )
        except ProtocolError as exc:
            invalid = DeliveryError("invalid", f"Ungültige Antwort / invalid answer: {exc}")
            return await self._failed(row, invalid, lease)

    async def handle_dead(self, row: OutboxRow) -> None:
        """An admin asked to try a dead letter again."""
        await self._move(
            row, State.PENDING, error=row.last_error, count=False, next_at=self.clock.now()
        )

    async def _failed(
        self, row: OutboxRow, error: DeliveryError, lease: lease_repo.Lease | None
    ) -> bool:
        if retryable(error) and row.attempts + 1 < MAX_ATTEMPTS:
            delay = backoff(row.attempts, self.rng)
            if error.retry_after is not None:
                delay = max(delay, timedelta(seconds=min(error.retry_after, 3600)))
            next_at = self.clock.now() + delay
            await self._move(row, State.PENDING, error=str(error), next_at=next_at, lease=lease)
            return False
        return await self._move(row, State.DEAD, error=str(error), lease=lease)

    async def _move(
        self,
        row: OutboxRow,
        state: State,
        *,
        error: str | None,
        next_at: datetime | None = None,
        count: bool = True,
        body: bytes | None = None,
        lease: lease_repo.Lease | None = None,
    ) -> bool:
        """Move *row* and run its hooks in one transaction; false if another
        replica moved it first (then nothing is recorded)."""
        if state not in TRANSITIONS[State(row.state)]:
            raise RuntimeError(f"outbox: {row.state} -> {state} is not allowed")
        async with self.db.write() as conn:
            if lease is not None:
                await lease.renew(conn)  # lost: the delivery loop stops after this one
            moved = await outbox_repo.transition(
                conn,
                row,
                state=state,
                now=self.clock.now(),
                next_attempt_at=next_at,
                error=error,
                count_attempt=count,
            )
            if not moved:
                return False
            if body is not None:
                await self.on_response[row.kind](conn, row, body)
            if state is State.DEAD and row.kind in self.on_dead:
                await self.on_dead[row.kind](conn, row, error or "")
        return True


_check_graph()
