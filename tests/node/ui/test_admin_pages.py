"""The admin pages for our own sessions: render, forms, field errors in both languages."""

from __future__ import annotations

import re

import pytest

from node.clock import ManualClock
from tests.node.conftest import RunningNode
from tests.node.ui.admin_helpers import create_session, in_english, session_form
from tests.node.ui.conftest import Browser, sqlite_only

PAGES = [
    "/admin/",
    "/admin/sessions",
    "/admin/sessions/new",
    "/admin/partners",
    "/admin/outgoing",
    "/admin/imports",
    "/admin/node",
]


@sqlite_only
async def test_every_page_needs_a_login_then_renders(browser: Browser) -> None:
    for path in PAGES:
        page = await browser.get(path)
        assert page.status == 303, path
        assert page.location.startswith("/admin/login?next="), path
    assert (await browser.login()).status == 303
    for path in PAGES:
        page = await browser.get(path)
        assert page.status == 200, (path, page.text)
        assert '<html lang="de">' in page.text
        for nav in ("/admin/sessions", "/admin/partners", "/admin/node", "/admin/imports"):
            assert f'href="{nav}"' in page.text
    for path in ("/admin/sessions/nope", "/admin/partners/nope.example", "/admin/sessions/x/edit"):
        assert (await browser.get(path)).status == 404, path


async def test_create_search_edit_session(
    browser: Browser, lex: RunningNode, clock: ManualClock
) -> None:
    await browser.login()
    sid = await create_session(browser, clock)
    page = await browser.get(f"/admin/sessions/{sid}")
    assert page.status == 200
    assert "KI-Prompting für Einsteiger" in page.text
    assert "Die Session wurde angelegt." in page.text

    found = await browser.get("/admin/sessions?q=Prompting")
    assert f'href="/admin/sessions/{sid}"' in found.text
    none = await browser.get("/admin/sessions?q=Betriebsrat")
    assert f'href="/admin/sessions/{sid}"' not in none.text
    assert "Keine Sessions zu „Betriebsrat“ gefunden." in none.text

    edit = await browser.get(f"/admin/sessions/{sid}/edit")
    assert 'value="KI-Prompting für Einsteiger"' in edit.text
    assert 'value="de, en"' in edit.text
    page = await browser.post(
        f"/admin/sessions/{sid}/edit", session_form(clock, title="Prompting kompakt")
    )
    assert (page.status, page.location) == (303, f"/admin/sessions/{sid}")
    row = await lex.node.sessions.get(sid)
    assert (row.title, row.languages, row.tags) == (
        "Prompting kompakt",
        ["de", "en"],
        ["KI", "Prompting"],
    )


FIELD_ERRORS = [
    ({"title": ""}, "title", "Bitte einen Titel angeben.", "Please enter a title."),
    (
        {"start": "2031-13-45T99:00"},
        "start",
        "Bitte ein gültiges Datum mit Uhrzeit angeben.",
        "Please enter a valid date and time.",
    ),
    (
        {"start": "2001-01-01T10:00"},
        "start",
        "Der Beginn liegt in der Vergangenheit.",
        "The start lies in the past.",
    ),
    (
        {"timezone": "Mars/Olympus"},
        "timezone",
        "Unbekannte Zeitzone „Mars/Olympus“",
        "Unknown timezone “Mars/Olympus”",
    ),
    (
        {"duration_minutes": "0"},
        "duration_minutes",
        "Die Dauer muss zwischen 1 und 480 Minuten liegen.",
        "The duration must be between 1 and 480 minutes.",
    ),
]


@sqlite_only
@pytest.mark.parametrize(("changes", "field", "german", "english"), FIELD_ERRORS)
async def test_session_form_errors_keep_input_in_both_languages(
    browser: Browser,
    clock: ManualClock,
    changes: dict[str, str],
    field: str,
    german: str,
    english: str,
) -> None:
    await browser.login()
    await browser.get("/admin/sessions/new")
    form = session_form(clock, **changes, host_name="Jonas <Kühn>")
    page = await browser.post("/admin/sessions/new", form)
    assert page.status == 400
    assert german in page.text
    assert f'id="f-{field}"' in page.text
    assert 'aria-invalid="true"' in page.text
    assert 'value="Jonas &lt;Kühn&gt;"' in page.text  # input kept, escaped
    if changes.get(field):
        assert f'value="{changes[field]}"' in page.text

    await in_english(browser, "/admin/sessions/new")
    page = await browser.post("/admin/sessions/new", form)
    assert page.status == 400
    assert english in page.text
    assert '<html lang="en">' in page.text


@sqlite_only
async def test_edit_errors_keep_input(browser: Browser, clock: ManualClock) -> None:
    await browser.login()
    sid = await create_session(browser, clock)
    page = await browser.post(
        f"/admin/sessions/{sid}/edit", session_form(clock, title="", description="Neu")
    )
    assert page.status == 400
    assert "Bitte einen Titel angeben." in page.text
    assert ">Neu</textarea>" in page.text


async def test_open_close_and_cancel(
    browser: Browser, lex: RunningNode, clock: ManualClock
) -> None:
    await browser.login()
    sid = await create_session(browser, clock)
    base = f"/admin/sessions/{sid}"
    opening = {"seats": "0", "audience": "all", "registration_mode": "auto", "waitlist": "yes"}
    page = await browser.post(f"{base}/open", opening)
    assert page.status == 400
    assert "Die Zahl der Plätze muss zwischen 1 und 10000 liegen." in page.text
    assert 'id="f-seats" name="seats" type="number" value="0"' in page.text

    page = await browser.post(f"{base}/open", {**opening, "seats": "2", "audience": "some"})
    assert page.status == 400
    assert "Bitte mindestens einen Partner auswählen" in page.text

    page = await browser.post(f"{base}/open", {**opening, "seats": "4"})
    assert (page.status, page.location) == (303, base)
    page = await browser.get(base)
    assert re.search(r'<meter id="gauge" min="0" max="4" value="0"', page.text)
    assert "0 von 4 Plätzen vergeben" in page.text
    row = await lex.node.sessions.get(sid)
    assert (row.open_seats, row.audience_all, row.waitlist) == (4, True, True)

    page = await browser.post(f"{base}/close")
    assert page.status == 303
    assert (await lex.node.sessions.get(sid)).open_seats == 0

    asked = await browser.get(f"{base}/cancel")
    assert asked.status == 200
    assert 'name="confirmed" value="yes"' in asked.text
    page = await browser.post(f"{base}/cancel")
    assert page.status == 200  # no confirmation: asks again, changes nothing
    assert (await lex.node.sessions.get(sid)).status == "scheduled"
    page = await browser.post(f"{base}/cancel", {"confirmed": "yes"})
    assert page.status == 303
    assert (await lex.node.sessions.get(sid)).status == "cancelled"


@sqlite_only
async def test_open_without_join_link_is_a_form_error(browser: Browser, clock: ManualClock) -> None:
    await browser.login()
    sid = await create_session(browser, clock, join_url="")
    page = await browser.post(
        f"/admin/sessions/{sid}/open",
        {"seats": "3", "audience": "all", "registration_mode": "auto"},
    )
    assert page.status == 400
    assert "Für Partnerplätze braucht die Session einen Teilnahme-Link." in page.text
    assert 'value="3"' in page.text


@sqlite_only
async def test_posts_without_csrf_token_are_refused(
    browser: Browser, lex: RunningNode, clock: ManualClock
) -> None:
    await browser.login()
    sid = await create_session(browser, clock)
    for path, data in (
        ("/admin/sessions/new", session_form(clock)),
        (f"/admin/sessions/{sid}/cancel", {"confirmed": "yes"}),
        (f"/admin/sessions/{sid}/open", {"seats": "2", "audience": "all"}),
        ("/admin/node/tokens", {"role": "admin", "label": "x"}),
        ("/admin/partners", {"url": "http://127.0.0.1:1", "fingerprint": "x"}),
    ):
        page = await browser.post(path, data, csrf=False)
        assert page.status == 403, path
    assert (await lex.node.sessions.get(sid)).status == "scheduled"
    assert len(await lex.node.sessions.list()) == 1


async def test_a_nul_character_in_a_form_is_refused_and_nothing_stored(
    browser: Browser, clock: ManualClock, lex: RunningNode
) -> None:
    """On both engines: PostgreSQL cannot store U+0000, so no form may send one."""
    await browser.get("/admin/login")
    page = await browser.post("/admin/login", {"username": "ad\x00min", "password": "x"})
    assert page.status == 400
    assert "Steuerzeichen (NUL)" in page.text
    await browser.login()
    await browser.get("/admin/sessions/new")
    page = await browser.post("/admin/sessions/new", session_form(clock, title="KI\x00Kurs"))
    assert page.status == 400
    assert "Steuerzeichen (NUL)" in page.text
    status, body = await lex.admin("GET", "/sessions")
    assert status == 200
    assert body["sessions"] == []
