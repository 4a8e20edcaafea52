"""Background tasks started by requests: outbox wake-ups, pulls after notices."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)


class BackgroundTasks:
    """Fire-and-remember tasks (outbox wake-ups, pulls on notices).

    At most one task per name runs at a time; the rest of the work is safe
    because it is also done by the scheduler.  Tasks are cancelled on
    shutdown; what they did not finish stays in the database.
    """

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[object]] = {}

    def start(self, name: str, work: Callable[[], Awaitable[object]]) -> None:
        running = self._running.get(name)
        if running is not None and not running.done():
            return
        task = asyncio.get_running_loop().create_task(self._guard(name, work))
        self._running[name] = task

    async def _guard(self, name: str, work: Callable[[], Awaitable[object]]) -> object:
        try:
            return await work()
        except Exception:
            log.exception("background task %s failed", name)
            return None

    async def idle(self) -> None:
        """Wait until every task started so far has finished (for tests and shutdown)."""
        while running := [t for t in self._running.values() if not t.done()]:
            await asyncio.gather(*running, return_exceptions=True)

    async def close(self) -> None:
        for task in self._running.values():
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)


BACKGROUND = web.AppKey("background", BackgroundTasks)
