"""Playwright's async API on an event loop of its own, usable from any test's loop.

Starting Chromium takes seconds, so one browser serves the whole session;
pytest-asyncio gives every test a fresh event loop, and playwright's objects
belong to the loop that made them.  So playwright lives on a long-lived loop
in a background thread, and tests hold :class:`Remote` proxies: calling a
method runs it on that loop; an ``async`` method gives an awaitable the
test's loop can wait on while it keeps serving the nodes' HTTP requests.
Proxies read like playwright itself::

    page = await browser.page()
    await page.goto(url)
    await page.get_by_label("Titel").fill("Prompting")
    await expect(page.get_by_role("alert")).to_contain_text("Bitte ausfüllen")

For what does not fit (``async with page.expect_download()``),
:meth:`BrowserLoop.call` runs a whole ``async`` function on the browser loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from playwright.async_api import expect as playwright_expect

CALL_TIMEOUT = 60.0


class BrowserLoop:
    """An event loop running forever in a daemon thread, for playwright only."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="playwright", daemon=True)
        self.thread.start()

    def block(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run *coro* on the browser loop and wait (from synchronous code only)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(CALL_TIMEOUT)

    def sync(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a synchronous playwright function on the browser thread."""
        if threading.current_thread() is self.thread:
            return function(*args, **kwargs)
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def call() -> None:
            try:
                done.set_result(function(*args, **kwargs))
            except BaseException as exc:
                done.set_exception(exc)

        self.loop.call_soon_threadsafe(call)
        return done.result(CALL_TIMEOUT)

    async def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Await *coro* on the browser loop from the caller's loop; wrap what it returns."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return self.wrap(await asyncio.wrap_future(future))

    async def call(self, function: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """``await function(*args)`` on the browser loop, proxies unwrapped."""

        async def whole() -> Any:
            return await function(*[unwrap(arg) for arg in args])

        return await self.run(whole())

    def wrap(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return type(value)(self.wrap(item) for item in value)
        if type(value).__module__.startswith("playwright."):
            return Remote(value, self)
        return value

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def unwrap(value: Any) -> Any:
    if isinstance(value, Remote):
        return value._target
    if isinstance(value, list | tuple):
        return type(value)(unwrap(item) for item in value)
    return value


class Remote:
    """A playwright object used from another loop (see the module docstring)."""

    __slots__ = ("_loop", "_target")

    def __init__(self, target: Any, loop: BrowserLoop) -> None:
        self._target = target
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        value = self._loop.sync(getattr, self._target, name)
        if not callable(value):
            return self._loop.wrap(value)

        def method(*args: Any, **kwargs: Any) -> Any:
            result = self._loop.sync(
                value, *[unwrap(a) for a in args], **{k: unwrap(v) for k, v in kwargs.items()}
            )
            if asyncio.iscoroutine(result):
                return self._loop.run(result)
            return self._loop.wrap(result)

        return method

    def __repr__(self) -> str:
        return f"Remote({self._target!r})"


def expect(actual: Remote, message: str | None = None) -> Any:
    """playwright's ``expect`` for a proxied page or locator."""
    return Remote(playwright_expect(actual._target, message), actual._loop)
