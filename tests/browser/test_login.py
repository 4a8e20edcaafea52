"""Logging in, the language switch and CSRF, in a real browser on a real node."""

from __future__ import annotations

import re

from tests.browser.conftest import Browser
from tests.browser.pages import add_admin, log_in, screenshot, submit_status
from tests.browser.remote import expect
from tests.node.conftest import NodeFactory
from tests.node.ui.conftest import PASSWORD, USERNAME

LOGIN_PAGE = re.compile(r"/admin/login(\?|$)")


async def test_admin_logs_in_after_field_errors_in_german(
    make_node: NodeFactory, fast_scrypt: None, browser: Browser
) -> None:
    lex = await make_node("lex")
    await add_admin(lex)
    page = await browser.person()
    await page.goto(f"{lex.url}/admin/")
    await page.wait_for_url(LOGIN_PAGE)
    await expect(page.locator("h1")).to_have_text("Anmeldung")
    await expect(page.locator("html")).to_have_attribute("lang", "de")
    await screenshot(page, "admin-login")

    # Nothing filled in: an error at each field, in German.
    await page.get_by_role("button", name="Anmelden").click()
    await expect(page.locator("#f-username-error")).to_contain_text("Bitte ausfüllen.")
    await expect(page.locator("#f-password-error")).to_contain_text("Bitte ausfüllen.")
    await expect(page.locator("#f-username")).to_have_attribute("aria-invalid", "true")

    # A wrong password: the error is shown, the username is kept, the password is not.
    await page.get_by_label("Benutzername").fill(USERNAME)
    await page.get_by_label("Passwort").fill("falsch-falsch-falsch")
    await page.get_by_role("button", name="Anmelden").click()
    await expect(page.get_by_role("alert")).to_contain_text(
        "Benutzername oder Passwort ist falsch."
    )
    await expect(page.get_by_label("Benutzername")).to_have_value(USERNAME)
    await expect(page.get_by_label("Passwort")).to_have_value("")
    await screenshot(page, "admin-login-error")

    await page.get_by_label("Passwort").fill(PASSWORD)
    await page.get_by_role("button", name="Anmelden").click()
    await page.wait_for_url(f"{lex.url}/admin/")
    await expect(page.locator("h1")).to_have_text("Übersicht")
    await expect(page.locator("main")).to_contain_text(f"Angemeldet als {USERNAME}.")
    await screenshot(page, "admin-overview")

    # Logging out ends the session: the admin pages ask for a login again.
    await page.get_by_role("button", name="Abmelden").click()
    await expect(page.locator("main")).to_contain_text("Sie wurden abgemeldet.")
    await page.goto(f"{lex.url}/admin/")
    await page.wait_for_url(LOGIN_PAGE)


async def test_language_switch_keeps_the_page_and_the_choice(
    make_node: NodeFactory, fast_scrypt: None, browser: Browser
) -> None:
    lex = await make_node("lex")
    await add_admin(lex)
    page = await browser.person()
    await page.goto(f"{lex.url}/admin/login")
    await expect(page.locator("h1")).to_have_text("Anmeldung")

    await page.get_by_role("link", name="English").click()
    await page.wait_for_url(f"{lex.url}/admin/login")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator("h1")).to_have_text("Log in")
    await expect(page.get_by_label("Username")).to_be_visible()
    await screenshot(page, "admin-login-en")

    # Errors come in the chosen language too, and the choice outlives the login.
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator("#f-password-error")).to_contain_text("Please fill this in.")
    await log_in(page, lex)
    await expect(page.locator("h1")).to_have_text("Overview")
    await expect(page.locator("main")).to_contain_text(f"Logged in as {USERNAME}.")

    await page.get_by_role("link", name="Deutsch").click()
    await page.wait_for_url(f"{lex.url}/admin/")
    await expect(page.locator("h1")).to_have_text("Übersicht")
    await expect(page.locator("html")).to_have_attribute("lang", "de")


async def test_a_post_without_csrf_token_is_refused(
    make_node: NodeFactory, fast_scrypt: None, browser: Browser
) -> None:
    lex = await make_node("lex")
    await add_admin(lex)
    page = await browser.person()

    # The login form with its token removed: refused before the password is looked at.
    await page.goto(f"{lex.url}/admin/login")
    await page.locator("input[name=csrf_token]").evaluate("input => input.remove()")
    await page.get_by_label("Benutzername").fill(USERNAME)
    await page.get_by_label("Passwort").fill(PASSWORD)
    response_status = await submit_status(page, page.get_by_role("button", name="Anmelden"))
    assert response_status == 403
    await expect(page.locator("h1")).to_have_text("Nicht erlaubt")
    await expect(page.locator("main")).to_contain_text("Das Formular ist abgelaufen")
    await screenshot(page, "csrf-refused")
    await page.goto(f"{lex.url}/admin/")
    await page.wait_for_url(LOGIN_PAGE)

    # Logged in, the logout form without its token: refused, the admin stays logged in.
    await log_in(page, lex)
    await page.locator("form.logout input[name=csrf_token]").evaluate("input => input.remove()")
    response_status = await submit_status(page, page.get_by_role("button", name="Abmelden"))
    assert response_status == 403
    await page.goto(f"{lex.url}/admin/")
    await expect(page.locator("h1")).to_have_text("Übersicht")

    # A request forged with the admin's cookies but no token: refused as well.
    response = await page.request.post(f"{lex.url}/admin/logout", form={"x": "1"})
    assert response.status == 403
    await page.goto(f"{lex.url}/admin/")
    await expect(page.locator("h1")).to_have_text("Übersicht")
