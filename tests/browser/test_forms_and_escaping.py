"""Field errors in the current language with the input kept, and markup from a partner as text.

The forms: a session without a title, a start in the past, an unknown
time zone, 0 seats, a partner with the wrong fingerprint, an import file
that is no calendar, a reservation without a name.  Each error stands at
its field (``#f-<name>-error``, named by ``aria-describedby``), what was
typed stays in the form.
"""

from __future__ import annotations

from datetime import timedelta

from node.clock import ManualClock
from tests.browser.conftest import Browser
from tests.browser.pages import (
    SESSION_PAGE,
    add_admin,
    fill_session_form,
    local_start,
    log_in,
    screenshot,
    submit,
)
from tests.browser.remote import Remote, expect
from tests.node.conftest import NodeFactory, RunningNode, peer, sync

MARKUP_TITLE = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"> & „Zitat“'
MARKUP_TEXT = '<b id="bold">fett</b><iframe src="https://evil.example"></iframe>'


async def field_error(page: Remote, name: str, text: str) -> None:
    """An error at field *name* saying *text*; the field is marked invalid."""
    await expect(page.locator(f"#f-{name}-error")).to_contain_text(text)
    await expect(page.locator(f"#f-{name}")).to_have_attribute("aria-invalid", "true")


async def test_admin_forms_show_field_errors_and_keep_the_input(
    make_node: NodeFactory, fast_scrypt: None, browser: Browser
) -> None:
    lex = await make_node("lex", display_name="LEX")
    lernwelt = await make_node("lernwelt", display_name="Lernwelt")
    await add_admin(lex)
    page = await browser.person()
    await log_in(page, lex)
    now = lex.node.clock.now()

    # No title: the error at the title, everything else as typed.
    await page.goto(f"{lex.url}/admin/sessions/new")
    await fill_session_form(
        page,
        {
            "title": "",
            "start": local_start(now),
            "timezone": "Europe/Berlin",
            "host_name": "Anna Schröder",
            "join_url": "https://meet.example.org/x",
            "tags": "KI, Prompting",
        },
    )
    await submit(page, "/admin/sessions/new")
    await field_error(page, "title", "Bitte einen Titel angeben.")
    await expect(page.locator("#f-host_name")).to_have_value("Anna Schröder")
    await expect(page.locator("#f-tags")).to_have_value("KI, Prompting")
    await expect(page.locator("#f-start")).to_have_value(local_start(now))
    await screenshot(page, "admin-session-form-errors")

    # An unknown time zone, named in the error.
    await fill_session_form(page, {"title": "Werkstatt Barrierefreiheit", "timezone": "Mars/Olymp"})
    await submit(page, "/admin/sessions/new")
    await field_error(page, "timezone", "Unbekannte Zeitzone „Mars/Olymp“")
    await expect(page.locator("#f-title")).to_have_value("Werkstatt Barrierefreiheit")

    # A start in the past.
    past = local_start(now, days=-3)
    await fill_session_form(page, {"timezone": "Europe/Berlin", "start": past})
    await submit(page, "/admin/sessions/new")
    await field_error(page, "start", "Der Beginn liegt in der Vergangenheit.")
    await expect(page.locator("#f-start")).to_have_value(past)
    await expect(page.locator("#f-timezone")).to_have_value("Europe/Berlin")

    # Valid now: saved. Then 0 seats, and in English -1 seats.
    await fill_session_form(page, {"start": local_start(now)})
    await submit(page, "/admin/sessions/new")
    await page.wait_for_url(SESSION_PAGE)
    detail = page.url
    opening = page.locator("form[action$='/open']")
    await opening.locator("[name=seats]").fill("0")
    await opening.locator("button[type=submit]").click()
    await field_error(page, "seats", "Die Zahl der Plätze muss zwischen 1 und")
    await expect(page.locator("#f-seats")).to_have_value("0")
    await screenshot(page, "admin-opening-form-errors")
    # The error page answers a POST; its language link leads back to the form's page.
    await page.get_by_role("link", name="English").click()
    await page.wait_for_url(detail)
    await opening.locator("[name=seats]").fill("-1")
    await opening.locator("button[type=submit]").click()
    await expect(page.locator("#f-seats-error")).to_contain_text("seats")
    await expect(page.locator("#f-seats-error")).not_to_contain_text("Plätze")
    await expect(page.locator("#f-seats")).to_have_value("-1")
    await page.get_by_role("link", name="Deutsch").click()

    # A partner whose fingerprint is not the one its node shows: nothing stored.
    wrong = ("B" if lernwelt.fingerprint[0] != "B" else "C") + lernwelt.fingerprint[1:]
    await page.goto(f"{lex.url}/admin/partners")
    await page.locator("form[action='/admin/partners'] [name=url]").fill(lernwelt.url)
    await page.locator("form[action='/admin/partners'] [name=fingerprint]").fill(wrong)
    await submit(page, "/admin/partners")
    await field_error(page, "fingerprint", "Der Fingerabdruck stimmt nicht")
    await expect(page.locator("#f-fingerprint")).to_have_value(wrong)
    await expect(page.locator("#f-url")).to_have_value(lernwelt.url)
    await expect(page.locator(".fingerprint-compare")).to_contain_text(lernwelt.fingerprint)
    await screenshot(page, "admin-partner-wrong-fingerprint")
    status, peers = await lex.admin("GET", "/peers")
    assert status == 200
    assert peers == {"peers": []}

    # An import file that is no calendar: the error at the file field.
    await page.goto(f"{lex.url}/admin/imports")
    broken = {"name": "kaputt.ics", "mimeType": "text/calendar", "buffer": b"BEGIN:VCALENDAR\nx"}
    await page.locator("form[action='/admin/imports'] [name=file]").set_input_files(broken)
    await submit(page, "/admin/imports")
    await field_error(page, "file", "Die Datei ist keine gültige ICS-Kalenderdatei.")
    await screenshot(page, "admin-import-error")


async def open_markup_session(lex: RunningNode, clock: ManualClock) -> str:
    body = {
        "title": MARKUP_TITLE,
        "description": MARKUP_TEXT,
        "format": "workshop",
        "languages": ["de"],
        "start": (clock.now() + timedelta(days=5)).isoformat(),
        "timezone": "Europe/Berlin",
        "duration_minutes": 90,
        "host_name": "<i>Mallory</i>",
        "tags": ["<b>tag</b>"],
        "join_url": "https://meet.example.org/markup",
    }
    status, created = await lex.admin("POST", "/sessions", body)
    assert status == 201, created
    sid = str(created["id"])
    opening = {"seats": 3, "email_required": True}
    status, opened = await lex.admin("PUT", f"/sessions/{sid}/opening", opening)
    assert status == 200, opened
    return sid


async def test_a_partners_markup_is_text_and_the_reserve_form_keeps_input(
    make_node: NodeFactory, clock: ManualClock, browser: Browser
) -> None:
    lex = await make_node("lex", display_name="LEX")
    lernwelt = await make_node("lernwelt", display_name="Lernwelt", catalogue_page="public")
    await peer(lernwelt, lex)
    await open_markup_session(lex, clock)
    await sync(lex, lernwelt)

    # Without the CSP's help, so that only escaping stands between the title and the page.
    page = await browser.person(bypass_csp=True)
    await page.goto(f"{lernwelt.url}/")
    card = page.locator(".session-list")
    await expect(card).to_contain_text(MARKUP_TITLE)
    assert await card.locator("img, script, b, i").count() == 0
    await screenshot(page, "catalogue-markup-as-text")
    await page.get_by_role("link", name=MARKUP_TITLE).click()
    session_page = page.url
    await expect(page.locator("h1")).to_have_text(MARKUP_TITLE)
    await expect(page.locator("main")).to_contain_text(MARKUP_TEXT)
    await expect(page.locator("main")).to_contain_text("<i>Mallory</i>")
    assert await page.locator("main img, main script, main iframe, #bold").count() == 0
    assert await page.evaluate("() => window.__xss === undefined")
    await expect(page).to_have_title(f"{MARKUP_TITLE} – Lernwelt")
    await screenshot(page, "session-page-markup-as-text")

    # The reserve form without a name: the error at the name, the email kept.
    await page.locator("[name=email]").fill("mallory@lernwelt.example")
    await page.get_by_role("button", name="Platz reservieren").click()
    await field_error(page, "display_name", "Bitte")
    await expect(page.locator("[name=email]")).to_have_value("mallory@lernwelt.example")
    await expect(page.locator("h1")).to_have_text(MARKUP_TITLE)
    await screenshot(page, "reserve-form-error")

    # The same page in English, the language chosen in the header.
    # Switched on the page that answered the POST: back to the session page.
    await page.get_by_role("link", name="English").click()
    await page.wait_for_url(session_page)
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.get_by_role("button", name="Reserve a seat")).to_be_visible()
    await page.get_by_role("button", name="Reserve a seat").click()
    await expect(page.locator("#f-display_name-error")).to_contain_text("Please")
