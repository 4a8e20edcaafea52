"""Logging in and out of /admin/ on a real node over loopback, on both engines."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from aiohttp.test_utils import TestServer

from node.app import create_app
from node.db import admins as admin_repo
from node.ui.auth import SESSION_COOKIE, token_hash
from node.ui.csrf import CSRF_COOKIE
from tests.node.conftest import RunningNode, free_port
from tests.node.ui.conftest import PASSWORD, Browser, BrowserFactory


async def test_admin_pages_send_visitors_to_the_login_page(browser: Browser) -> None:
    for path in ("/admin/", "/admin/sessions?q=ki", "/admin"):
        page = await browser.get(path)
        assert page.status == 303
        target = urlsplit(page.location)
        assert (target.path, parse_qs(target.query)) == ("/admin/login", {"next": [path]})
    page = await browser.get("/admin/login")
    assert page.status == 200
    assert '<label for="f-username">Benutzername' in page.text
    assert 'type="password"' in page.text


async def test_login_sets_a_strict_httponly_cookie_and_shows_who_is_logged_in(
    browser: Browser, lex: RunningNode
) -> None:
    page = await browser.login()
    assert (page.status, page.location) == (303, "/admin/")
    cookie = page.cookies[SESSION_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    assert not cookie["secure"]  # the node is served over http here
    page = await browser.get("/admin/")
    assert page.status == 200
    assert "Angemeldet als anna." in page.text
    assert 'action="/admin/logout"' in page.text
    # only the hash of the cookie is stored
    token = browser.cookie(SESSION_COOKIE)
    assert token is not None
    async with lex.node.db.read() as conn:
        stored = await admin_repo.find_session(conn, token_hash(token), lex.node.clock.now())
        assert await admin_repo.find_session(conn, token, lex.node.clock.now()) is None
    assert stored is not None
    assert stored.username == "anna"


async def test_the_cookie_is_secure_when_the_node_is_served_over_https(
    browser: Browser, lex: RunningNode
) -> None:
    await browser.get("/admin/login")  # the CSRF cookie, while still on http
    lex.node.settings.base_url = "https://openseats.lex.example.org"
    page = await browser.post("/admin/login", {"username": "anna", "password": PASSWORD})
    assert page.status == 303
    assert page.cookies[SESSION_COOKIE]["secure"] is True
    fresh = await browser.get("/admin/login?fresh", cookies={CSRF_COOKIE: ""})
    assert fresh.cookies[CSRF_COOKIE]["secure"] is True


async def test_login_returns_to_the_page_asked_for_but_only_on_this_node(
    browser: Browser,
) -> None:
    page = await browser.login(next="/admin/sessions?q=ki")
    assert page.location == "/admin/sessions?q=ki"
    for evil in ("//evil.example.org/", "https://evil.example.org/", "/\\evil.example.org"):
        other = await browser.login(next=evil)
        assert other.location == "/admin/", evil
    # already logged in: the login page sends on
    page = await browser.get("/admin/login?next=/admin/peers")
    assert (page.status, page.location) == (303, "/admin/peers")


async def test_a_wrong_password_keeps_the_username_and_says_so_in_german(
    browser: Browser,
) -> None:
    for username in ("anna", "nobody"):
        page = await browser.login(username, "Falsches-Passwort-123")
        assert page.status == 400
        assert "Benutzername oder Passwort ist falsch." in page.text
        assert f'value="{username}"' in page.text
        assert "Falsches-Passwort-123" not in page.text
        assert SESSION_COOKIE not in page.cookies
    assert (await browser.get("/admin/")).status == 303


async def test_empty_fields_get_field_errors(browser: Browser) -> None:
    page = await browser.login("", "")
    assert page.status == 400
    assert page.text.count("Bitte ausfüllen.") == 4  # summary and field, twice
    assert 'id="f-username" name="username"' in page.text
    assert page.text.count('aria-invalid="true"') == 2
    assert 'aria-describedby="f-password-error"' in page.text


async def test_failed_logins_are_limited_across_replicas(
    lex: RunningNode, browser: Browser, browsers: BrowserFactory
) -> None:
    for _ in range(5):
        assert (await browser.login("anna", "Falsches-Passwort-123")).status == 400
    page = await browser.login()  # even the right password
    assert page.status == 429
    assert "Bitte versuchen Sie es in 15 Minuten erneut." in page.text
    assert page.headers["Retry-After"] == "900"
    assert SESSION_COOKIE not in page.cookies

    # A second process on the same database refuses too.
    replica = TestServer(
        create_app(lex.settings, clock=lex.clock, db=lex.database, run_scheduler=False),
        host="127.0.0.1",
        port=free_port(),
    )
    await replica.start_server()
    try:
        other = browsers(f"http://127.0.0.1:{replica.port}")
        assert (await other.login()).status == 429
        assert lex.clock is not None
        lex.clock.advance(minutes=10)
        page = await other.login()
        assert page.status == 429
        assert "in 5 Minuten" in page.text
        lex.clock.advance(minutes=5, seconds=1)
        assert (await other.login()).status == 303
    finally:
        await replica.close()


async def test_failures_from_one_address_are_limited_whatever_the_username(
    browser: Browser,
) -> None:
    for n in range(20):
        assert (await browser.login(f"user{n}", "Falsches-Passwort-123")).status == 400
    assert (await browser.login()).status == 429


async def test_a_successful_login_clears_earlier_failures(browser: Browser) -> None:
    for _ in range(4):
        await browser.login("anna", "Falsches-Passwort-123")
    assert (await browser.login()).status == 303
    for _ in range(4):
        assert (await browser.login("anna", "Falsches-Passwort-123")).status == 400


async def test_logout_ends_the_session_on_the_server(browser: Browser, lex: RunningNode) -> None:
    await browser.login()
    token = browser.cookie(SESSION_COOKIE)
    page = await browser.get("/admin/")
    page = await browser.post("/admin/logout")
    assert (page.status, page.location) == (303, "/admin/login")
    assert page.cookies[SESSION_COOKIE].value == ""
    page = await browser.get("/admin/login")
    assert "Sie wurden abgemeldet." in page.text
    assert "Sie wurden abgemeldet." not in (await browser.get("/admin/login")).text
    assert (await browser.get("/admin/")).status == 303
    # the old cookie, replayed, is worthless
    assert (await browser.get("/admin/", cookies={SESSION_COOKIE: token or ""})).status == 303


async def test_sessions_expire(browser: Browser, lex: RunningNode) -> None:
    await browser.login()
    assert (await browser.get("/admin/")).status == 200
    assert lex.clock is not None
    lex.clock.advance(hours=12, seconds=1)
    assert (await browser.get("/admin/")).status == 303


async def test_a_deleted_user_is_logged_out(browser: Browser, lex: RunningNode) -> None:
    await browser.login()
    async with lex.node.db.write() as conn:
        assert await admin_repo.delete_user(conn, "anna")
    assert (await browser.get("/admin/")).status == 303
    assert (await browser.login("anna", PASSWORD)).status == 400
