"""Fixtures for the web UI: a node with an admin user, and browsers with cookie jars.

A :class:`Browser` is an aiohttp client that keeps cookies (IP hosts
allowed, as a real browser does on 127.0.0.1), never follows redirects on
its own (tests check every 303) and remembers the CSRF token of the last
page it read, as a form would carry it.  scrypt's cost is lowered for
these tests (``fast_scrypt``); the stored hash names its parameters, so
the code paths are the production ones.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from http.cookies import Morsel
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from node.ui import passwords
from node.ui.accounts import create_admin
from tests.node.conftest import NodeFactory, RunningNode

# For tests of what a browser sees (headers, escaping, language) rather than of
# storage: one engine is enough; login, sessions and limits run on both.
sqlite_only = pytest.mark.parametrize("engine", ["sqlite"])

USERNAME = "anna"
PASSWORD = "Lange-sichere-Passphrase-7"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Page:
    status: int
    text: str
    headers: CIMultiDictProxy[str]
    cookies: dict[str, Morsel[str]]

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    @property
    def csrf(self) -> str | None:
        found = _CSRF.search(self.text)
        return found.group(1) if found else None


class Browser:
    def __init__(self, base: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf: str | None = None

    async def _page(self, response: aiohttp.ClientResponse) -> Page:
        page = Page(
            response.status,
            await response.text(),
            response.headers,
            dict(response.cookies.items()),
        )
        self.csrf = page.csrf or self.csrf
        return page

    async def get(self, path: str, **kwargs: Any) -> Page:
        async with self.http.get(self.base + path, allow_redirects=False, **kwargs) as response:
            return await self._page(response)

    async def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True, **kwargs: Any
    ) -> Page:
        form = dict(data or {})
        if csrf and self.csrf is not None:
            form.setdefault("csrf_token", self.csrf)
        async with self.http.post(
            self.base + path, data=form, allow_redirects=False, **kwargs
        ) as response:
            return await self._page(response)

    async def login(self, username: str = USERNAME, password: str = PASSWORD, **extra: str) -> Page:
        await self.get("/admin/login")
        return await self.post(
            "/admin/login", {"username": username, "password": password, **extra}
        )

    def cookie(self, name: str) -> str | None:
        for morsel in self.http.cookie_jar:
            if morsel.key == name:
                return morsel.value
        return None

    async def close(self) -> None:
        await self.http.close()


BrowserFactory = Callable[[str], Browser]


@pytest.fixture
def fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "N", 2**10)


@pytest.fixture
async def lex(make_node: NodeFactory, fast_scrypt: None) -> RunningNode:
    node = await make_node("lex")
    await create_admin(node.node.db, USERNAME, PASSWORD, node.node.clock.now())
    return node


@pytest.fixture
async def browsers() -> AsyncIterator[BrowserFactory]:
    opened: list[Browser] = []

    def open_browser(base: str) -> Browser:
        browser = Browser(base)
        opened.append(browser)
        return browser

    yield open_browser
    for browser in opened:
        await browser.close()


@pytest.fixture
async def browser(lex: RunningNode, browsers: BrowserFactory) -> Browser:
    return browsers(lex.url)
