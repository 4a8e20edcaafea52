"""Subscribing to partners: pull their feeds, verify, merge.

A pull reads the peer's RPDE feed from the stored cursor, page by page,
until the last page.  Each page is merged in one transaction together with
the new cursor, so a crash never loses or repeats an item, and a node that
was offline for days simply continues from its cursor.

Every item is checked on its own (SPEC.md §7.3): a bad item is recorded
with its id and reason and skipped, the rest of the page still merges.  A
page that is malformed, or whose order or ``next`` link goes backwards or
loops, stops the pull and counts as a failure.

Pulls are triggered by a partner's ``feed_changed`` notice and by the
scheduler.  At most one pull per peer runs at a time.  Failures back off
per peer, stored in the database, exponentially with jitter (401, 429,
5xx, timeouts, and malformed answers alike), and a success resets it.

With the app's metrics attached, every pull is counted by outcome and the
items of a page by merged or rejected reason, only once the page has
committed (a page that fails merged nothing); unverifiable signatures also
count as verify failures.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from node.catalogue.merge import PageBatch
from node.clock import Clock
from node.db import Database
from node.db import catalogue as catalogue_repo
from node.db import peers as peer_repo
from node.db import sync as sync_repo
from node.db.peers import PeerRow
from node.federation.client import DeliveryError, PeerClient
from node.federation.outbox import backoff
from node.observability.metrics import Metrics
from protocol.errors import AuthenticationError, ProtocolError
from protocol.ingest import verify_announcement
from protocol.keyring import PinnedKeys
from protocol.models import DeletedItem, parse
from protocol.signing import signing_input

MAX_PAGES_PER_PULL = 1000
MAX_ITEMS_PER_PAGE = 1000
MAX_ITEM_BYTES = 64 * 1024
_ITEM_KEYS = {"state", "kind", "id", "modified", "data"}
log = logging.getLogger(__name__)


class FeedError(Exception):
    """A page that cannot be trusted as a whole."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass
class PullResult:
    pages: int = 0
    merged: int = 0
    deleted: int = 0
    rejected: int = 0
    unchanged: int = 0
    cursor: int = 0


def _after(url: str) -> int | None:
    values = parse_qs(urlsplit(url).query).get("afterChangeNumber")
    if not values or not (values[0].isascii() and values[0].isdigit()):
        return None
    return int(values[0])


class Subscriber:
    def __init__(
        self, db: Database, client: PeerClient, clock: Clock, rng: random.Random | None = None
    ) -> None:
        self.db = db
        self.client = client
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.metrics: Metrics | None = None

    async def pull_due(self, interval: timedelta) -> int:
        """Pull every active peer whose interval has passed and whose backoff ended."""
        now = self.clock.now()
        due = []
        async with self.db.read() as conn:
            for peer in await peer_repo.list_peers(conn):
                if peer.state != "active":
                    continue
                state = await sync_repo.load(conn, peer.id)
                if state.next_attempt_at and state.next_attempt_at > now:
                    continue
                if state.last_attempt_at and state.last_attempt_at + interval > now:
                    continue
                due.append(peer.node_id)
        results = await asyncio.gather(*(self.pull(node_id) for node_id in due))
        return sum(1 for result in results if result is not None)

    async def pull(self, node_id: str, *, force: bool = False) -> PullResult | None:
        """Pull one peer now; ``None`` if it is not due or a pull already runs."""
        lock = self._locks[node_id]
        if lock.locked():
            return None
        async with lock:
            async with self.db.read() as conn:
                peer = await peer_repo.get(conn, node_id)
                if peer is None or peer.state != "active":
                    return None
                state = await sync_repo.load(conn, peer.id)
                pinned = await peer_repo.pinned_keys(conn, peer)
            now = self.clock.now()
            if not force and state.next_attempt_at and state.next_attempt_at > now:
                return None
            result = PullResult(cursor=state.cursor)
            try:
                await self._pull_pages(peer, pinned, result)
            except (DeliveryError, FeedError) as exc:
                outcome = exc.kind if isinstance(exc, DeliveryError) else exc.code
                self._pulled(peer.node_id, outcome, result)
                log.warning(
                    "pull from %s failed (%s): %s",
                    peer.node_id,
                    outcome,
                    exc,
                    extra={"peer": peer.node_id},
                )
                failures = state.failures + 1
                async with self.db.write() as conn:
                    current = await sync_repo.load(conn, peer.id)
                    await sync_repo.save(
                        conn,
                        current.evolve(
                            last_attempt_at=now,
                            last_error=str(exc)[:1000],
                            failures=failures,
                            next_attempt_at=now + backoff(failures - 1, self.rng),
                        ),
                    )
                return result
            async with self.db.write() as conn:
                current = await sync_repo.load(conn, peer.id)
                await sync_repo.save(
                    conn,
                    current.evolve(
                        last_attempt_at=now,
                        last_success_at=now,
                        last_error=None,
                        failures=0,
                        next_attempt_at=None,
                    ),
                )
            self._pulled(peer.node_id, "ok", result)
            return result

    def _pulled(self, peer: str, outcome: str, result: PullResult) -> None:
        if self.metrics is not None:
            self.metrics.feed_pull(peer, outcome)
        if result.merged or result.deleted or result.rejected:
            log.info(
                "pulled %s: %d merged, %d deleted, %d rejected",
                peer,
                result.merged,
                result.deleted,
                result.rejected,
                extra={"peer": peer},
            )

    async def _pull_pages(self, peer: PeerRow, pinned: PinnedKeys, result: PullResult) -> None:
        feed_url = json.loads(peer.descriptor)["endpoints"]["feed"]
        url = f"{feed_url}?afterChangeNumber={result.cursor}"
        for _ in range(MAX_PAGES_PER_PULL):
            page = await self.client.signed_json("GET", url)
            result.pages += 1
            next_url, done = await self._merge_page(peer, pinned, page, url, feed_url, result)
            if done:
                return
            url = next_url
        raise FeedError("feed_loop", f"more than {MAX_PAGES_PER_PULL} pages in one pull")

    async def _merge_page(
        self,
        peer: PeerRow,
        pinned: PinnedKeys,
        page: dict[str, Any],
        url: str,
        feed_url: str,
        result: PullResult,
    ) -> tuple[str, bool]:
        items, next_url = page.get("items"), page.get("next")
        if not isinstance(items, list) or not isinstance(next_url, str):
            raise FeedError("invalid_page", "a feed page needs items (a list) and next (a URL)")
        if len(items) > MAX_ITEMS_PER_PAGE:
            raise FeedError("invalid_page", f"more than {MAX_ITEMS_PER_PAGE} items on a page")
        if not items:
            if next_url != url:
                raise FeedError("feed_next", "the last page must link to itself")
            return next_url, True
        now = self.clock.now()
        cursor = result.cursor
        counted = PullResult()
        rejections: list[tuple[str, str, bool]] = []
        async with self.db.write() as conn:
            ids = [
                raw["id"]
                for raw in items
                if isinstance(raw, dict) and isinstance(raw.get("id"), str)
            ]
            batch = PageBatch(await catalogue_repo.stored_many(conn, peer.node_id, ids))
            for raw in items:
                modified = raw.get("modified") if isinstance(raw, dict) else None
                if not isinstance(modified, int) or isinstance(modified, bool):
                    raise FeedError("invalid_page", "an item without an integer modified")
                if modified <= cursor:
                    raise FeedError("feed_order", f"item {modified} is not after {cursor}")
                cursor = modified
                item_id = str(raw.get("id", "?"))
                try:
                    outcome = await self._merge_item(conn, peer, pinned, raw, now, batch)
                except ProtocolError as exc:
                    outcome = "rejected"
                    rejections.append((item_id, exc.code, isinstance(exc, AuthenticationError)))
                    await sync_repo.reject(
                        conn,
                        peer_node_id=peer.node_id,
                        item_id=item_id,
                        reason=exc.code,
                        detail=exc.message,
                        now=now,
                    )
                setattr(counted, outcome, getattr(counted, outcome) + 1)
            after = _after(next_url)
            if not next_url.startswith(feed_url + "?") or after is None:
                raise FeedError("feed_next", f"next does not continue this feed: {next_url[:200]}")
            if after != cursor:
                kind = "goes backwards" if after < cursor else "skips items"
                raise FeedError("feed_next", f"next {kind} ({after}, last item {cursor})")
            await batch.flush(conn)
            await sync_repo.save_cursor(conn, peer.id, cursor)
        # Counted only now that the page committed: a page that fails merges nothing.
        for name in ("merged", "deleted", "rejected", "unchanged"):
            setattr(result, name, getattr(result, name) + getattr(counted, name))
        result.cursor = cursor
        self._count_items(peer.node_id, counted, rejections)
        return next_url, False

    def _count_items(
        self, peer: str, counted: PullResult, rejections: list[tuple[str, str, bool]]
    ) -> None:
        if rejections:
            reasons = Counter(code for _, code, _ in rejections)
            log.info(
                "%d items from %s rejected (%s), first %s",
                len(rejections),
                peer,
                ", ".join(f"{code}: {count}" for code, count in sorted(reasons.items())),
                rejections[0][0][:200],
                extra={"peer": peer},
            )
        for _, code, unverified in rejections:
            if self.metrics is not None:
                self.metrics.item("rejected", code)
                if unverified:
                    self.metrics.verify_failure(code)
        if self.metrics is not None:
            self.metrics.item("merged", "updated", counted.merged)
            self.metrics.item("merged", "deleted", counted.deleted)

    async def _merge_item(
        self,
        conn: Any,
        peer: PeerRow,
        pinned: PinnedKeys,
        raw: dict[str, Any],
        now: Any,
        batch: PageBatch,
    ) -> str:
        if set(raw) - _ITEM_KEYS or raw.get("kind") != "OpenSeatsSession":
            raise _Rejected("invalid_item", "unknown members or kind")
        if raw.get("state") == "deleted":
            item = parse(DeletedItem, raw)
            await batch.flush(conn)  # keep the page's order for this session
            await catalogue_repo.mark_deleted(conn, peer.node_id, item.id, now)
            if item.id in batch.previous:
                batch.previous[item.id] = replace(batch.previous[item.id], deleted=True)
            return "deleted"
        data = raw.get("data")
        if raw.get("state") != "updated" or not isinstance(data, dict):
            raise _Rejected("invalid_item", "an updated item needs data")
        if len(json.dumps(data, ensure_ascii=False)) > MAX_ITEM_BYTES:
            raise _Rejected("item_too_large", f"more than {MAX_ITEM_BYTES} bytes")
        announcement = verify_announcement(
            data, resolver=pinned, expected_origin=peer.node_id, from_wire=True
        )
        if raw.get("id") != announcement.id:
            raise _Rejected("invalid_item", "item id differs from data.id")
        previous = batch.previous.get(announcement.id)
        if previous is not None and previous.version >= announcement.version:
            if previous.version == announcement.version and _same_signed(previous, data):
                return "unchanged"  # a repeat of what we hold (SPEC.md §7.3)
            raise _Rejected(
                "stale_version", f"version {announcement.version} is not after {previous.version}"
            )
        batch.add(announcement, data, peer.display_name, now)
        return "merged"


def _same_signed(previous: catalogue_repo.Stored, data: dict[str, Any]) -> bool:
    if previous.announcement is None:
        return False
    return signing_input(json.loads(previous.announcement)) == signing_input(data)


class _Rejected(ProtocolError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code  # type: ignore[misc]
