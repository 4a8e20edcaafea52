"""The node page (fingerprint, key rotation, tokens) and the import page."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import aiohttp

from node.clock import ManualClock
from node.identity import MAX_OLD_KEYS
from tests.node.conftest import RunningNode
from tests.node.ui.admin_helpers import in_english
from tests.node.ui.conftest import Browser, sqlite_only

_TOKEN = re.compile(r'id="new-token" type="text" readonly value="([^"]+)"')


async def test_fingerprint_rotation_and_tokens(browser: Browser, lex: RunningNode) -> None:
    await browser.login()
    page = await browser.get("/admin/node")
    before = lex.fingerprint
    groups = "".join(f"<span>{g}</span>" for g in before.split("-"))
    assert groups in re.sub(r'<span class="visually-hidden">-</span> ', "", page.text)

    page = await browser.post("/admin/node/tokens", {"role": "root", "label": "Intranet"})
    assert page.status == 400
    assert "Bitte eine Rolle auswählen." in page.text
    assert 'value="Intranet"' in page.text
    page = await browser.post("/admin/node/tokens", {"role": "portal", "label": "x" * 201})
    assert page.status == 400
    assert "Höchstens 200 Zeichen." in page.text

    page = await browser.post("/admin/node/tokens", {"role": "admin", "label": "Automation"})
    assert page.status == 200
    assert page.headers["Cache-Control"] == "no-store"
    found = _TOKEN.search(page.text)
    assert found
    token = found.group(1)
    status, _ = await lex.admin("GET", "/node", token=token)
    assert status == 200
    again = await browser.get("/admin/node")
    assert token not in again.text
    assert "Automation" in again.text

    token_id = max(int(i) for i in re.findall(r"/admin/node/tokens/(\d+)/revoke", again.text))
    page = await browser.post(f"/admin/node/tokens/{token_id}/revoke")
    assert (page.status, page.location) == (303, "/admin/node")
    status, _ = await lex.admin("GET", "/node", token=token)
    assert status == 401

    asked = await browser.get("/admin/node/rotate")
    assert 'name="confirmed" value="yes"' in asked.text
    assert (await browser.post("/admin/node/rotate")).status == 200
    assert lex.fingerprint == before
    page = await browser.post("/admin/node/rotate", {"confirmed": "yes"})
    assert (page.status, page.location) == (303, "/admin/node")
    assert lex.fingerprint != before
    assert (
        "<span>" + lex.fingerprint.split("-")[0] + "</span>"
        in (await browser.get("/admin/node")).text
    )
    # Old keys stay valid for their grace period; past MAX_OLD_KEYS of them
    # another rotation is refused with a message, and the key stays.
    for _ in range(MAX_OLD_KEYS - 1):
        page = await browser.post("/admin/node/rotate", {"confirmed": "yes"})
        assert (page.status, page.location) == (303, "/admin/node")
    kept = lex.fingerprint
    page = await browser.post("/admin/node/rotate", {"confirmed": "yes"})
    assert (page.status, page.location) == (303, "/admin/node")
    assert "Zu viele alte Schlüssel gelten noch" in (await browser.get("/admin/node")).text
    assert lex.fingerprint == kept


def _csv(clock: ManualClock, title: str = "Werkstatt: Barrierefreie PDFs") -> bytes:
    start = (clock.now() + timedelta(days=7)).astimezone(ZoneInfo("Europe/Berlin"))
    return (
        "Titel;Beginn;Dauer;Referent\n"
        f"{title};{start:%d.%m.%Y %H:%M};60;Jonas Kühn\n"
        f";{start:%d.%m.%Y %H:%M};60;Ohne Titel\n"
    ).encode()


def _upload(browser: Browser, data: bytes, name: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    assert browser.csrf
    form.add_field("csrf_token", browser.csrf)
    form.add_field("file", data, filename=name, content_type="text/csv")
    return form


async def test_upload_report_and_bad_file(
    browser: Browser, lex: RunningNode, clock: ManualClock
) -> None:
    await browser.login()
    await browser.get("/admin/imports")
    page = await browser.post("/admin/imports", data=None, csrf=True)
    assert page.status == 400
    assert "Bitte eine Datei auswählen." in page.text

    async with browser.http.post(
        lex.url + "/admin/imports",
        data=_upload(browser, _csv(clock), "sessions.csv"),
        allow_redirects=False,
    ) as response:
        assert response.status == 200
        text = await response.text()
    assert "Importbericht" in text
    assert re.search(r"Neu angelegt</dt><dd>1</dd>", text)
    assert re.search(r"Abgelehnt</dt><dd>1</dd>", text)
    assert [s.title for s in await lex.node.sessions.list()] == ["Werkstatt: Barrierefreie PDFs"]

    async with browser.http.post(
        lex.url + "/admin/imports",
        data=_upload(browser, b"\xff\xfe\x00garbage;\x00", "bad.csv"),
        allow_redirects=False,
    ) as response:
        assert response.status == 400
        text = await response.text()
    assert "Die Datei ist nicht in UTF-8 kodiert." in text
    assert 'aria-invalid="true"' in text

    await in_english(browser, "/admin/imports")
    async with browser.http.post(
        lex.url + "/admin/imports",
        data=_upload(browser, b"Name;Ort\nA;B\n", "bad.csv"),
        allow_redirects=False,
    ) as response:
        assert response.status == 400
        assert "A required column is missing from the CSV file" in await response.text()


@sqlite_only
async def test_calendar_url_errors_keep_input(browser: Browser) -> None:
    await browser.login()
    await browser.get("/admin/imports")
    page = await browser.post("/admin/imports/url", {"url": "kalender", "interval_minutes": "2"})
    assert page.status == 400
    assert "Bitte eine Adresse angeben, die mit http:// oder https:// beginnt." in page.text
    assert "Das Intervall ist eine ganze Zahl von 5 bis 10080 Minuten." in page.text
    assert 'value="kalender"' in page.text
    assert 'value="2"' in page.text
    page = await browser.post("/admin/imports/url", {"url": "http://127.0.0.1:1/cal.ics"})
    assert page.status == 400
    assert "Der Kalender konnte nicht geladen werden" in page.text
