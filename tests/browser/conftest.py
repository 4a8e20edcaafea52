"""Fixtures for browser tests: one headless Chromium and real nodes on loopback.

The browser is Debian's ``/usr/bin/chromium`` (the ``chromium`` package;
``.ci/run`` installs it; ``CHROMIUM_BIN`` names another binary), driven by
playwright without ``playwright install``.  When it is missing the tests
fail, they are never skipped.
One browser serves the session (see :mod:`tests.browser.remote`); every
test gets fresh browser contexts, one per person (their own cookies), from
``browser.person()``.

The nodes are the node tests' (:func:`tests.node.conftest.make_node`: full
aiohttp apps on 127.0.0.1, shared clock, scheduler off), on SQLite only:
what a browser sees does not depend on the engine.  With the scheduler off,
nothing moves between nodes until a test calls ``sync(...)``; reload the
page after that.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright

from tests.browser.remote import BrowserLoop, Remote
from tests.node.conftest import (  # noqa: F401  (fixtures, used by name)
    RunningNode,
    clock,
    make_node,
    schemas,
)
from tests.node.ui.conftest import fast_scrypt  # noqa: F401

CHROMIUM = Path(os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium"))
TIMEOUT_MS = 10_000


@pytest.fixture
def engine() -> str:
    """Browser tests run on SQLite only (the storage tests cover both engines)."""
    return "sqlite"


@pytest.fixture(scope="session")
def browser_loop() -> Iterator[tuple[BrowserLoop, Any]]:
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium "
            "(apt-get install chromium; .ci/run does this when it is missing)",
            pytrace=False,
        )
    loop = BrowserLoop()

    async def launch() -> tuple[Any, Any]:
        playwright = await async_playwright().start()
        # Root (CI) cannot use Chromium's sandbox; --lang: date inputs as a German user sees them.
        sandbox = ["--no-sandbox"] if os.geteuid() == 0 else []
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[*sandbox, "--disable-gpu", "--disable-dev-shm-usage", "--lang=de-DE"],
        )
        return playwright, chromium

    playwright, chromium = loop.block(launch())

    async def shut() -> None:
        await chromium.close()
        await playwright.stop()

    try:
        yield loop, chromium
    finally:
        loop.block(shut())
        loop.stop()


class Browser:
    """Opens browser contexts (people) for one test and closes them after it."""

    def __init__(self, loop: BrowserLoop, chromium: Any) -> None:
        self.loop = loop
        self._chromium = chromium
        self._contexts: list[Remote] = []

    async def person(self, *, locale: str = "de-DE", bypass_csp: bool = False) -> Remote:
        """A new page in a new context: a person with their own cookies.

        ``bypass_csp`` turns the page's Content-Security-Policy off, for tests
        that must show escaping alone keeps markup out.
        """
        context = await self.loop.run(
            self._chromium.new_context(
                locale=locale,
                accept_downloads=True,
                bypass_csp=bypass_csp,
                viewport={"width": 1200, "height": 900},
            )
        )
        context.set_default_timeout(TIMEOUT_MS)
        self._contexts.append(context)
        return await context.new_page()

    async def close(self) -> None:
        for context in self._contexts:
            await context.close()


@pytest.fixture
async def browser(browser_loop: tuple[BrowserLoop, Any]) -> AsyncIterator[Browser]:
    opened = Browser(*browser_loop)
    yield opened
    await opened.close()
