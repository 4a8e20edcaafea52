"""Every unsafe request on a UI path needs its CSRF token; the APIs are not affected."""

from __future__ import annotations

from node.ui.auth import SESSION_COOKIE
from node.ui.csrf import CSRF_COOKIE, CSRF_HEADER
from tests.node.conftest import RunningNode
from tests.node.ui.conftest import PASSWORD, USERNAME, Browser, BrowserFactory

CREDENTIALS = {"username": USERNAME, "password": PASSWORD}


async def test_login_without_or_with_a_wrong_token_is_refused(browser: Browser) -> None:
    await browser.get("/admin/login")
    good = browser.csrf
    assert good is not None
    for token in (None, "", good[:-1] + ("A" if good[-1] != "A" else "B"), "x" * 43):
        data = dict(CREDENTIALS) if token is None else {**CREDENTIALS, "csrf_token": token}
        page = await browser.post("/admin/login", data, csrf=False)
        assert page.status == 403, token
        assert "Das Formular ist abgelaufen" in page.text
        assert page.headers["Content-Type"].startswith("text/html")
        assert SESSION_COOKIE not in page.cookies
    assert (await browser.post("/admin/login", CREDENTIALS)).status == 303


async def test_the_token_is_bound_to_the_visitors_own_cookie(
    lex: RunningNode, browser: Browser, browsers: BrowserFactory
) -> None:
    await browser.get("/admin/login")
    stolen = browser.csrf
    assert stolen is not None
    attacker = browsers(lex.url)  # a page elsewhere: no cookie of the victim's
    page = await attacker.post("/admin/login", {**CREDENTIALS, "csrf_token": stolen}, csrf=False)
    assert page.status == 403
    # a planted cookie without the node's key gets nowhere either
    page = await attacker.post(
        "/admin/login",
        {**CREDENTIALS, "csrf_token": "A" * 43},
        csrf=False,
        cookies={CSRF_COOKIE: "A" * 43},
    )
    assert page.status == 403


async def test_a_logged_in_admin_needs_the_sessions_own_token(
    lex: RunningNode, browser: Browser
) -> None:
    await browser.get("/admin/login")
    anonymous = browser.csrf
    assert (await browser.login()).status == 303
    page = await browser.get("/admin/")
    session_token = page.csrf
    assert session_token is not None
    assert session_token != anonymous
    assert f'<meta name="csrf-token" content="{session_token}">' in page.text

    assert (await browser.post("/admin/logout", csrf=False)).status == 403
    bad = await browser.post("/admin/logout", {"csrf_token": anonymous or ""}, csrf=False)
    assert bad.status == 403
    assert (await browser.get("/admin/")).status == 200  # still logged in
    # JavaScript sends the header instead of a field
    page = await browser.post("/admin/logout", csrf=False, headers={CSRF_HEADER: session_token})
    assert (page.status, page.location) == (303, "/admin/login")


async def test_the_refusal_page_speaks_the_visitors_language(browser: Browser) -> None:
    await browser.get("/lang/en?next=/admin/login")
    page = await browser.post("/admin/login", CREDENTIALS, csrf=False)
    assert page.status == 403
    assert '<html lang="en">' in page.text
    assert "The form has expired" in page.text


async def test_the_json_apis_are_not_affected(lex: RunningNode) -> None:
    status, body = await lex.admin("POST", "/tokens", {"role": "portal", "label": "intranet"})
    assert status == 201, body
