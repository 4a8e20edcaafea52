"""The whole path in a browser: an admin opens seats to one partner, its employees reserve.

Three real nodes on loopback: LEX hosts, Lernwelt and KIWI are its
partners.  LEX's admin opens 2 seats to Lernwelt only; Lernwelt's
catalogue shows the session and KIWI's does not; three of Lernwelt's
employees reserve (two confirmed, one waitlisted); one cancels and the
waitlisted one moves up, on Lernwelt's status page.  The scheduler is off,
so ``sync`` carries the messages between the nodes and the pages are
reloaded afterwards.
"""

from __future__ import annotations

from tests.browser.conftest import Browser
from tests.browser.pages import (
    add_admin,
    admin_creates_open_session,
    download,
    reserve,
    screenshot,
    state_of,
)
from tests.browser.remote import Remote, expect
from tests.node.conftest import NodeFactory, RunningNode, peer, sync

TITLE = "KI-Prompting für Einsteiger"


async def partners(make_node: NodeFactory) -> tuple[RunningNode, RunningNode, RunningNode]:
    lex = await make_node("lex", display_name="LEX")
    lernwelt = await make_node("lernwelt", display_name="Lernwelt", catalogue_page="public")
    kiwi = await make_node("kiwi", display_name="KIWI", catalogue_page="public")
    await peer(lernwelt, lex)
    await peer(kiwi, lex)
    return lex, lernwelt, kiwi


async def reservations_by_partner(page: Remote) -> dict[str, dict[str, str]]:
    """The detail page's table: partner -> column -> count, only the counts that are not 0."""
    table = page.locator("#h-partners ~ * table")
    columns = await table.locator("thead th").all_inner_texts()
    counts = {}
    for row in await table.locator("tbody tr").all():
        name = await row.locator("th").inner_text()
        cells = await row.locator("td").all_inner_texts()
        counts[name] = {
            column: cell for column, cell in zip(columns[1:], cells, strict=True) if cell != "0"
        }
        counts[name].pop("Obergrenze", None)  # the cap, "–" when there is none
    return counts


async def test_seats_for_one_partner_reserved_waitlisted_and_promoted(
    make_node: NodeFactory, fast_scrypt: None, browser: Browser
) -> None:
    lex, lernwelt, kiwi = await partners(make_node)
    await add_admin(lex)

    # LEX's admin creates the session and opens 2 seats to Lernwelt only.
    admin = await browser.person()
    detail = await admin_creates_open_session(admin, lex, 2, [lernwelt], title=TITLE)
    await expect(admin.locator("h1")).to_have_text(TITLE)
    await screenshot(admin, "admin-session-opened")
    await sync(lex, lernwelt, kiwi)

    # Lernwelt's catalogue shows it, KIWI's does not.
    anna = await browser.person()
    await anna.goto(f"{lernwelt.url}/")
    await expect(anna.locator(".session-list")).to_contain_text(TITLE)
    await expect(anna.locator(".session-list")).to_contain_text("LEX")
    await screenshot(anna, "catalogue-partner-b")
    visitor = await browser.person()
    await visitor.goto(f"{kiwi.url}/")
    await expect(visitor.locator("h1")).to_be_visible()
    await expect(visitor.locator("main")).not_to_contain_text(TITLE)
    await screenshot(visitor, "catalogue-partner-c")

    # An employee of Lernwelt reserves, sees "bestätigt" and downloads the .ics.
    anna_status = await reserve(anna, lernwelt, TITLE, "Anna Beispiel", "anna@lernwelt.example")
    await sync(lex, lernwelt)
    await anna.reload()
    assert await state_of(anna) == "confirmed"
    await expect(anna.locator(".reservation__state")).to_contain_text("bestätigt")
    await screenshot(anna, "reservation-confirmed")
    name, ics = await download(anna, anna.get_by_role("link", name="Zum Kalender hinzufügen"))
    assert name.endswith(".ics"), name
    text = ics.decode("utf-8").replace("\r\n ", "")
    assert text.startswith("BEGIN:VCALENDAR")
    assert f"SUMMARY:{TITLE}" in text
    assert "STATUS:CONFIRMED" in text

    # LEX's admin sees the reservation under partner Lernwelt.
    await admin.goto(detail)
    assert await reservations_by_partner(admin) == {"Lernwelt": {"Bestätigt": "1"}}
    await screenshot(admin, "admin-session-reservations")

    # A second seat for Ben, then Carla is waitlisted.
    ben = await browser.person()
    await reserve(ben, lernwelt, TITLE, "Ben Beispiel", "ben@lernwelt.example")
    carla = await browser.person()
    carla_status = await reserve(carla, lernwelt, TITLE, "Carla Beispiel", "carla@lernwelt.example")
    await sync(lex, lernwelt)
    await ben.reload()
    assert await state_of(ben) == "confirmed"
    await carla.reload()
    assert await state_of(carla) == "waitlisted"
    await expect(carla.locator(".reservation__state")).to_contain_text("Warteliste")
    await screenshot(carla, "reservation-waitlisted")
    await admin.reload()
    await expect(admin.locator("#h-waitlist ~ *").first).to_contain_text("Carla Beispiel")
    by_partner = await reservations_by_partner(admin)
    assert by_partner == {"Lernwelt": {"Bestätigt": "2", "Warteliste": "1"}}

    # Anna cancels (and confirms that she means it); Carla moves up.
    await anna.goto(anna_status)
    await anna.locator("form.reservation__cancel button[type=submit]").click()
    await screenshot(anna, "reservation-cancel-confirm")
    await anna.locator("form.confirm button[type=submit]").click()
    await anna.wait_for_url(anna_status)
    await sync(lex, lernwelt)
    await anna.reload()
    assert await state_of(anna) == "cancelled"
    await carla.goto(carla_status)
    assert await state_of(carla) == "confirmed"
    await expect(carla.locator(".reservation__state")).to_contain_text("bestätigt")
    await screenshot(carla, "reservation-promoted")
    await admin.reload()
    await expect(admin.locator("#h-waitlist ~ *").first).not_to_contain_text("Carla Beispiel")
    assert (await reservations_by_partner(admin))["Lernwelt"]["Bestätigt"] == "2"
    await screenshot(admin, "admin-session-after-promotion")
