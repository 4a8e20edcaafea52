"""Shared steps for the admin page tests: sessions by form, a second node with its admin."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from node.clock import ManualClock
from node.ui.accounts import create_admin
from tests.node.conftest import NodeFactory, RunningNode
from tests.node.ui.conftest import PASSWORD, USERNAME, Browser, BrowserFactory, Page


def local_start(clock: ManualClock, days: int = 10) -> str:
    start = clock.now() + timedelta(days=days)
    return start.astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y-%m-%dT%H:%M")


def session_form(clock: ManualClock, **changes: str) -> dict[str, str]:
    form = {
        "title": "KI-Prompting für Einsteiger",
        "description": "Ein Impuls mit Beispielen.",
        "format": "impulse",
        "languages": "de, en",
        "start": local_start(clock),
        "timezone": "Europe/Berlin",
        "duration_minutes": "60",
        "host_name": "Anna Schröder",
        "tags": "KI, Prompting",
        "join_url": "https://meet.example.org/ki",
        "details_url": "",
    }
    form.update(changes)
    return form


async def logged_in(browsers: BrowserFactory, node: RunningNode) -> Browser:
    browser = browsers(node.url)
    page = await browser.login()
    assert page.status == 303, page.text
    return browser


async def node_with_admin(make_node: NodeFactory, name: str, **overrides: str) -> RunningNode:
    node = await make_node(name, **overrides)
    await create_admin(node.node.db, USERNAME, PASSWORD, node.node.clock.now())
    return node


async def create_session(browser: Browser, clock: ManualClock, **changes: str) -> str:
    await browser.get("/admin/sessions/new")
    page = await browser.post("/admin/sessions/new", session_form(clock, **changes))
    assert page.status == 303, page.text
    found = re.fullmatch(r"/admin/sessions/([^/]+)", page.location)
    assert found, page.location
    return found.group(1)


async def in_english(browser: Browser, path: str) -> Page:
    page = await browser.get(f"/lang/en?next={path}")
    assert page.status == 303
    return await browser.get(path)
