"""After a feed change commits: stamp its change number and tell partners.

:class:`FeedNotifier` runs the stamper (:func:`node.db.feed.stamp`) in its
own transaction and, in that same transaction, queues a small
``feed_changed`` notice in the outbox for every active partner that does
not already have one waiting.  The change is visible to readers only once
it has a number, so the notice and the visibility commit together: either
both happen or neither.  A crash between a publishing commit and its stamp
is healed by the periodic stamp job, which then queues the notices.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from node.clock import Clock
from node.db import Database
from node.db import feed as feed_repo
from node.db import outbox as outbox_repo
from node.db import peers as peer_repo
from protocol.models import format_timestamp

LATEST_TTL_SECONDS = 1.0
NOTICE_KIND = "feed_changed"


class FeedNotifier:
    def __init__(self, db: Database, node_id: str, clock: Clock) -> None:
        self.db = db
        self.node_id = node_id
        self.clock = clock
        #: Called after notices were queued (the app wakes the outbox deliverer).
        self.on_queued: Callable[[], None] | None = None
        self._latest = 0
        self._latest_at = float("-inf")

    async def latest(self) -> int:
        """The newest change number, cached for a second.

        A poll that is already up to date (the common case) is answered from
        this without a query.  Another replica's newer change shows up at
        most a second later, on the reader's next poll; nothing is skipped,
        because the reader's cursor does not move on an empty page.
        """
        if time.monotonic() - self._latest_at > LATEST_TTL_SECONDS:
            async with self.db.read() as conn:
                self._latest = await feed_repo.latest_change(conn)
            self._latest_at = time.monotonic()
        return self._latest

    async def changed(self) -> int:
        queued = 0
        async with self.db.write() as conn:
            stamped = await feed_repo.stamp(conn)
            if stamped:
                latest = await feed_repo.latest_change(conn)
                waiting = {
                    m.peer_node_id
                    for m in await outbox_repo.list_messages(conn, state="pending")
                    if m.kind == NOTICE_KIND
                }
                now = self.clock.now()
                for peer in await peer_repo.list_peers(conn):
                    if peer.state != "active" or peer.node_id in waiting:
                        continue
                    notice = {
                        "type": NOTICE_KIND,
                        "sender": self.node_id,
                        "issued_at": format_timestamp(now.replace(microsecond=0)),
                        "change": latest,
                    }
                    await outbox_repo.enqueue(
                        conn,
                        peer_node_id=peer.node_id,
                        kind=NOTICE_KIND,
                        method="POST",
                        url=json.loads(peer.descriptor)["endpoints"]["inbox"],
                        body=json.dumps(notice, separators=(",", ":")),
                        now=now,
                    )
                    queued += 1
        if stamped:
            self._latest, self._latest_at = latest, time.monotonic()
        if queued and self.on_queued is not None:
            self.on_queued()
        return stamped
