"""What a person does on the OpenSeats pages, step by step, for the browser tests.

Fields are found by their ``name`` (the agreed form contract), buttons by
the form they submit, so a changed wording breaks only the assertions
about wording.  Screenshots of the main pages go to
``test-artifacts/screenshots/`` (ignored by git), for a person to look at
after a run.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from node.ui.accounts import create_admin
from tests.browser.remote import Remote, expect
from tests.node.conftest import RunningNode
from tests.node.ui.conftest import PASSWORD, USERNAME

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
SESSION_PAGE = re.compile(r"/admin/sessions/[0-9a-zA-Z_-]+$")
STATUS_PAGE = re.compile(r"/reservations/[0-9a-f-]{36}\?k=")


async def screenshot(page: Remote, name: str) -> Path:
    """Save the whole page as ``test-artifacts/screenshots/<name>.png``."""
    if not re.fullmatch(r"[a-z0-9-]+", name):
        raise ValueError(f"screenshot name {name!r}: lowercase, digits and dashes")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def add_admin(node: RunningNode) -> None:
    """The node's admin user (``USERNAME``/``PASSWORD``), as ``openseats admin`` creates it."""
    await create_admin(node.node.db, USERNAME, PASSWORD, node.node.clock.now())


async def log_in(page: Remote, node: RunningNode) -> None:
    """Log in on *node*'s admin pages the way a person does; lands on ``/admin/``."""
    await page.goto(f"{node.url}/admin/login")
    await page.locator("input[name=username]").fill(USERNAME)
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("form[action='/admin/login'] button[type=submit]").click()
    await page.wait_for_url(f"{node.url}/admin/")


def local_start(now: datetime, days: int = 10, zone: str = "Europe/Berlin") -> str:
    """A ``datetime-local`` value *days* after *now*, at 10:00 in *zone*."""
    day = (now + timedelta(days=days)).astimezone(ZoneInfo(zone))
    return day.replace(hour=10, minute=0).strftime("%Y-%m-%dT%H:%M")


async def submit(page: Remote, action: str) -> None:
    """Click the submit button of the form posting to *action*."""
    await page.locator(f"form[action^='{action}'] button[type=submit]").first.click()


async def fill_session_form(page: Remote, values: dict[str, str]) -> None:
    for name, value in values.items():
        field = page.locator(f"form [name={name}]")
        if await field.evaluate("el => el.tagName") == "SELECT":
            await field.select_option(value)
        else:
            await field.fill(value)


async def create_session(page: Remote, node: RunningNode, **values: str) -> str:
    """Fill ``/admin/sessions/new`` and save; returns the new session's detail URL."""
    await page.goto(f"{node.url}/admin/sessions/new")
    form = {
        "title": "KI-Prompting für Einsteiger",
        "description": "Ein Impuls mit Beispielen aus dem Alltag.",
        "format": "impulse",
        "languages": "de",
        "start": local_start(node.node.clock.now()),
        "timezone": "Europe/Berlin",
        "duration_minutes": "60",
        "host_name": "Anna Schröder",
        "tags": "KI, Prompting",
        "join_url": "https://meet.example.org/ki-prompting",
    }
    form.update(values)
    await fill_session_form(page, form)
    await submit(page, "/admin/sessions/new")
    await page.wait_for_url(SESSION_PAGE)
    return str(page.url)


async def open_seats(
    page: Remote, seats: int, partners: list[RunningNode] | None = None, **options: Any
) -> None:
    """On a session's detail page: open *seats* to *partners* (all if ``None``)."""
    await page.locator("form[action$='/open'] [name=seats]").fill(str(seats))
    if partners is None:
        await page.locator("input[name=audience][value=all]").check()
    else:
        await page.locator("input[name=audience][value=some]").check()
        for partner in partners:
            await page.locator(f"input[name=partner][value='{partner.node_id}']").check()
    for name, on in options.items():
        box = page.locator(f"form[action$='/open'] input[name={name}]")
        await (box.check() if on else box.uncheck())
    await page.locator("form[action$='/open'] button[type=submit]").click()
    await page.wait_for_load_state()


async def admin_creates_open_session(
    page: Remote, host: RunningNode, seats: int, partners: list[RunningNode] | None, **values: str
) -> str:
    await log_in(page, host)
    detail = await create_session(page, host, **values)
    await open_seats(page, seats, partners)
    await expect(page.locator("#h-seats ~ *").first).to_contain_text(str(seats))
    return detail


async def reserve(page: Remote, node: RunningNode, title: str, name: str, email: str) -> str:
    """From *node*'s catalogue: open the session called *title*, reserve, land on the status."""
    await page.goto(f"{node.url}/")
    await page.get_by_role("link", name=title).click()
    await page.locator("[name=display_name]").fill(name)
    email_field = page.locator("[name=email]")
    if await email_field.count():
        await email_field.fill(email)
    await page.get_by_role("button", name="Platz reservieren").click()
    await page.wait_for_url(STATUS_PAGE)
    return str(page.url)


async def state_of(page: Remote) -> str:
    return str(await page.locator(".reservation").get_attribute("data-state"))


async def download(page: Remote, link: Remote) -> tuple[str, bytes]:
    """Click *link*, which downloads a file; its suggested name and its bytes."""

    async def run(raw_page: Any, raw_link: Any) -> tuple[str, bytes]:
        async with raw_page.expect_download() as info:
            await raw_link.click()
        got = await info.value
        path = await got.path()
        with open(path, "rb") as handle:
            return str(got.suggested_filename), handle.read()

    result: tuple[str, bytes] = await page._loop.call(run, page, link)
    return result


async def submit_status(page: Remote, button: Remote) -> int:
    """Click *button* and return the HTTP status of the page the form navigated to."""

    async def run(raw_page: Any, raw_button: Any) -> int:
        async with raw_page.expect_navigation() as navigation:
            await raw_button.click()
        return int((await navigation.value).status)

    status: int = await page._loop.call(run, page, button)
    return status
