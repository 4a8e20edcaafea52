"""After a feed change commits: stamp its change number.

:class:`FeedNotifier` runs the stamper (:func:`node.db.feed.stamp`) in its
own transaction.  It is called after every publishing transaction and by a
periodic job, which also heals a crash between a commit and its stamp.
Listeners registered with :meth:`FeedNotifier.listen` hear about every
stamped change (the subscription part of the node uses this to push
``feed_changed`` notices to partners).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from node.db import Database
from node.db import feed as feed_repo

Listener = Callable[[int], Awaitable[None]]


class FeedNotifier:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def changed(self) -> int:
        async with self.db.write() as conn:
            stamped = await feed_repo.stamp(conn)
            latest = await feed_repo.latest_change(conn) if stamped else 0
        if stamped:
            for listener in self._listeners:
                await listener(latest)
        return stamped
