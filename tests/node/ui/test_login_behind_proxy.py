"""The login limit per address behind a reverse proxy, on both engines.

The test client connects from 127.0.0.1 and plays the proxy: it sends the
``X-Forwarded-For`` header nginx would add.  With ``trusted_proxies``
naming 127.0.0.1 each forwarded client has its own limit; without it the
header is ignored and every attempt counts against 127.0.0.1.
"""

from __future__ import annotations

from node.db import admins as admin_repo
from node.ui.accounts import create_admin
from node.ui.login import MAX_PER_IP
from tests.node.conftest import NodeFactory, RunningNode
from tests.node.ui.conftest import PASSWORD, USERNAME, Browser, BrowserFactory, Page

WRONG = "Falsches-Passwort-123"


async def _node(make_node: NodeFactory, **settings: object) -> RunningNode:
    node = await make_node("lex", **settings)
    await create_admin(node.node.db, USERNAME, PASSWORD, node.node.clock.now())
    return node


async def _login(
    browser: Browser, forwarded: str, username: str = USERNAME, password: str = PASSWORD
) -> Page:
    headers = {"X-Forwarded-For": forwarded}
    await browser.get("/admin/login", headers=headers)
    return await browser.post(
        "/admin/login", {"username": username, "password": password}, headers=headers
    )


async def _fail_from(browsers: BrowserFactory, node: RunningNode, address: str) -> None:
    """MAX_PER_IP failed logins, each under another username (no per-user limit)."""
    browser = browsers(node.url)
    for n in range(MAX_PER_IP):
        page = await _login(browser, address, f"user{n}", WRONG)
        assert page.status == 400


async def test_behind_a_trusted_proxy_each_client_has_its_own_limit(
    make_node: NodeFactory, browsers: BrowserFactory, fast_scrypt: None
) -> None:
    lex = await _node(make_node, trusted_proxies=["127.0.0.1"])
    await _fail_from(browsers, lex, "203.0.113.7")

    limited = browsers(lex.url)
    page = await _login(limited, "203.0.113.7")
    assert page.status == 429
    # The client cannot escape by writing another address in front of nginx's entry.
    page = await _login(limited, "198.51.100.1, 203.0.113.7")
    assert page.status == 429

    other = browsers(lex.url)
    page = await _login(other, "203.0.113.8")
    assert page.status == 303  # another client behind the same proxy logs in

    assert lex.database is not None
    assert lex.clock is not None
    async with lex.database.read() as conn:
        since = lex.clock.now().replace(year=2000)
        recorded = await admin_repo.failures_from_ip(conn, "203.0.113.7", since)
        proxy = await admin_repo.failures_from_ip(conn, "127.0.0.1", since)
    assert recorded.count == MAX_PER_IP
    assert proxy.count == 0


async def test_without_trusted_proxies_a_forwarded_header_is_ignored(
    make_node: NodeFactory, browsers: BrowserFactory, fast_scrypt: None
) -> None:
    lex = await _node(make_node)
    await _fail_from(browsers, lex, "203.0.113.7")
    # A spoofed header does not buy a fresh limit: the TCP peer is the client.
    page = await _login(browsers(lex.url), "203.0.113.9")
    assert page.status == 429

    assert lex.database is not None
    assert lex.clock is not None
    async with lex.database.read() as conn:
        since = lex.clock.now().replace(year=2000)
        assert (await admin_repo.failures_from_ip(conn, "127.0.0.1", since)).count == MAX_PER_IP
        assert (await admin_repo.failures_from_ip(conn, "203.0.113.7", since)).count == 0
