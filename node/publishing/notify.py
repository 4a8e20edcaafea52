"""After a feed change commits: stamp its change number.

:class:`FeedNotifier` runs the stamper (:func:`node.db.feed.stamp`) in its
own transaction.  It is called after every publishing transaction and by a
periodic job, which also heals a crash between a commit and its stamp.
Listeners registered with :meth:`FeedNotifier.listen` hear about every
stamped change (the subscription part of the node uses this to push
``feed_changed`` notices to partners).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from node.db import Database
from node.db import feed as feed_repo

Listener = Callable[[int], Awaitable[None]]


LATEST_TTL_SECONDS = 1.0


class FeedNotifier:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._listeners: list[Listener] = []
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

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def changed(self) -> int:
        async with self.db.write() as conn:
            stamped = await feed_repo.stamp(conn)
            latest = await feed_repo.latest_change(conn) if stamped else 0
        if stamped:
            self._latest, self._latest_at = latest, time.monotonic()
            for listener in self._listeners:
                await listener(latest)
        return stamped
