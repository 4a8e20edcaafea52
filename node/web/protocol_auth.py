"""Authentication of node-to-node requests (``/protocol/v1/*``).

Order of checks (SPEC.md §4.3): body size (413), signature headers and
profile (400/401), time window (401), ``Content-Digest`` (400), the key
(pinned for a peer, else 401 ``unknown_key``), the signature (401), the
per-peer rate limit (429), the nonce (401 ``replayed_nonce``), and last the
peering state (403).  Nonces are unique rows, so a request replayed to
another replica is refused there too; the rate limit is a token bucket in
memory on SQLite (one process, no write per request) and a shared row per
peer on PostgreSQL, where replicas must add up to one limit
(:mod:`node.db.rate_limits`).  The one exception is a peering request from a node we
do not know yet: its key comes from the descriptor inside the body.

A request signed with a key we have not pinned may come from a peer that
rotated its key: the node then re-fetches its active peers' descriptors
(at most once a minute) and looks again before answering 401.

The middleware is wrapped once more for observability: a protocol error
raised before the request was verified counts as a verify failure by its
code (``openseats_verify_failures_total``), and a verified request's log
lines name its peer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from node.clock import Clock
from node.db import Database
from node.db import peers as peer_repo
from node.db import rate_limits as rate_repo
from node.db.nonces import NonceBatcher
from node.db.peers import PeerRow
from node.observability.metrics import METRICS
from node.observability.requests import set_peer
from node.runtime import NodeServices
from node.web.errors import ApiError, read_body
from protocol.canonical import loads_object
from protocol.errors import ProtocolError, UnknownKey
from protocol.httpsig import (
    Headers,
    Message,
    ParsedSignature,
    check_digest,
    check_signature,
    parse_signature,
)
from protocol.keyring import PinnedKeys, verify_new_descriptor
from protocol.models import PeeringRequest, parse

PROTOCOL_PREFIX = "/protocol/v1/"
PEERING_PATH = "/protocol/v1/peering"
REFRESH_INTERVAL = 60.0
KEY_CACHE_SECONDS = 2.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Limiter(Protocol):
    async def wait(self, peer: str) -> float:
        """0 if the request may pass, else seconds until it may."""
        ...


def _bucket(per_minute: int) -> tuple[float, float]:
    """(capacity, tokens per second): ``per_minute``, in bursts of a tenth."""
    return max(per_minute / 10.0, 1.0), per_minute / 60.0


@dataclass
class RateLimiter:
    """A token bucket per peer in this process (SQLite: the only process)."""

    per_minute: int
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    async def wait(self, peer: str) -> float:
        return self.retry_after(peer)

    def retry_after(self, peer: str, now: float | None = None) -> float:
        """0 if the request may pass, else seconds until it may."""
        now = time.monotonic() if now is None else now
        capacity, rate = _bucket(self.per_minute)
        tokens, last = self.buckets.get(peer, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * rate)
        if tokens >= 1.0:
            self.buckets[peer] = (tokens - 1.0, now)
            return 0.0
        self.buckets[peer] = (tokens, now)
        return (1.0 - tokens) / rate


@dataclass
class SharedRateLimiter:
    """The same bucket as a database row, shared by all replicas (PostgreSQL)."""

    per_minute: int
    db: Database
    clock: Clock

    async def wait(self, peer: str) -> float:
        capacity, rate = _bucket(self.per_minute)
        async with self.db.write() as conn:
            bucket = await rate_repo.take(
                conn, peer, capacity=capacity, rate=rate, now=self.clock.now()
            )
        return 0.0 if bucket.granted else (1.0 - bucket.tokens) / rate


def rate_limiter(node: NodeServices) -> Limiter:
    """In memory for one process (SQLite), in the database for replicas."""
    per_minute = node.settings.rate_limit_per_minute
    if node.db.is_sqlite:
        return RateLimiter(per_minute)
    return SharedRateLimiter(per_minute, node.db, node.clock)


@dataclass
class AuthState:
    """Per-process state of the middleware.

    ``keys`` caches, per key id, the peer and its pinned keys for
    ``KEY_CACHE_SECONDS``; a peering change in this process clears it at
    once (``PeeringService.generation``), one made by another replica is
    seen within those seconds.
    """

    limiter: Limiter
    nonces: NonceBatcher
    last_refresh: float = 0.0
    refresh_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    keys: dict[str, tuple[float, int, PeerRow, PinnedKeys]] = field(default_factory=dict)


@dataclass(frozen=True)
class Verified:
    peer: PeerRow | None
    body: bytes
    peering_request: PeeringRequest | None = None
    peering_descriptor: dict[str, Any] | None = None


VERIFIED = web.RequestKey("verified_request", Verified)


def make_protocol_auth(node: NodeServices, state: AuthState) -> Callable[..., Any]:
    settings = node.settings

    async def resolve_peer(parsed: ParsedSignature) -> tuple[PeerRow, Ed25519PublicKey] | None:
        cached = state.keys.get(parsed.key_id)
        fresh = (
            cached is not None
            and cached[1] == node.peering.generation
            and time.monotonic() - cached[0] < KEY_CACHE_SECONDS
        )
        if fresh and cached is not None:
            peer, pinned = cached[2], cached[3]
        else:
            generation = node.peering.generation
            async with node.db.read() as conn:
                found = await peer_repo.find_by_key(conn, parsed.key_id)
                if found is None:
                    return None
                peer, pinned = found, await peer_repo.pinned_keys(conn, found)
            state.keys[parsed.key_id] = (time.monotonic(), generation, peer, pinned)
        return peer, pinned.resolve(peer.node_id, parsed.key_id, node.clock.now())

    async def refresh_descriptors() -> None:
        async with state.refresh_lock:
            if time.monotonic() - state.last_refresh < REFRESH_INTERVAL:
                return
            state.last_refresh = time.monotonic()
            for peer in await node.peering.list():
                if peer.state in ("active", "suspended", "pending_out"):
                    try:
                        await node.peering.refresh_descriptor(peer)
                    except Exception:  # noqa: S112 - a dead peer must not block others
                        continue

    @web.middleware
    async def protocol_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(PROTOCOL_PREFIX):
            return await handler(request)
        body = await read_body(request, settings.max_body_bytes)
        if body and request.content_type != "application/json":  # SPEC.md §10.2: 415 first
            raise ApiError(
                415,
                "unsupported_media_type",
                "Erwartet application/json / expected application/json",
            )
        now: datetime = node.clock.now()
        message = Message(
            request.method, settings.base_url + request.path_qs, Headers(request.headers.items())
        )
        parsed = parse_signature(message.headers, has_body=bool(body))
        parsed.check_window(now)
        check_digest(message.headers, body)
        found = await resolve_peer(parsed)
        if found is None and not (request.path == PEERING_PATH and body):
            await refresh_descriptors()
            found = await resolve_peer(parsed)
        verified: Verified
        if found is None:
            if request.path != PEERING_PATH or not body:
                raise UnknownKey(f"Schlüssel unbekannt / key {parsed.key_id} is not pinned")
            verified = _first_contact(body, parsed, message, now)
            limiter_key = verified.peering_request.requester if verified.peering_request else "?"
        else:
            peer, key = found
            check_signature(message, key, parsed)
            verified = Verified(peer=peer, body=body)
            limiter_key = peer.node_id
        wait = await state.limiter.wait(limiter_key)
        if wait > 0:
            raise ApiError(
                429,
                "rate_limited",
                "Zu viele Anfragen / too many requests",
                headers={"Retry-After": str(max(int(wait + 0.999), 1))},
            )
        await state.nonces.remember(parsed.key_id, parsed.nonce, parsed.expires)
        if request.path != PEERING_PATH and verified.peer is not None:
            _require_active(verified.peer)
        request[VERIFIED] = verified
        return await handler(request)

    @web.middleware
    async def observed(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Counts verify failures by code; names the verified peer in the request's logs."""
        if not request.path.startswith(PROTOCOL_PREFIX):
            return await handler(request)

        async def with_peer(verified_request: web.Request) -> web.StreamResponse:
            verified = verified_request[VERIFIED]
            if verified.peer is not None:
                set_peer(verified_request, verified.peer.node_id)
            elif verified.peering_request is not None:
                set_peer(verified_request, verified.peering_request.requester)
            return await handler(verified_request)

        try:
            return await protocol_auth(request, with_peer)
        except ProtocolError as exc:
            metrics = request.app.get(METRICS)
            if VERIFIED not in request and metrics is not None:
                metrics.verify_failure(exc.code)
            raise

    return observed


def _first_contact(
    body: bytes, parsed: ParsedSignature, message: Message, now: datetime
) -> Verified:
    raw = loads_object(body)
    if raw.get("type") != "peering_request":
        raise UnknownKey(f"Schlüssel unbekannt / key {parsed.key_id} is not pinned")
    request = parse(PeeringRequest, raw)
    descriptor_raw = raw["descriptor"]
    descriptor = verify_new_descriptor(descriptor_raw, now=now)
    key = PinnedKeys.from_descriptor(descriptor).resolve(descriptor.node_id, parsed.key_id, now)
    check_signature(message, key, parsed)
    return Verified(
        peer=None, body=body, peering_request=request, peering_descriptor=descriptor_raw
    )


def _require_active(peer: PeerRow) -> None:
    if peer.state == "active":
        return
    if peer.state == "suspended":
        raise ApiError(403, "peer_suspended", "Partnerschaft ausgesetzt / peering suspended")
    raise ApiError(403, "not_peer", "Keine aktive Partnerschaft / not an accepted peer")
