"""The catalogue pages for employees, between real nodes on loopback.

``datev`` is the requester whose employees browse the merged catalogue,
``lex`` the partner hosting the sessions; both are full nodes.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest

from node.clock import ManualClock
from node.ui.accounts import create_admin
from tests.node.conftest import NodeFactory, RunningNode, peer, sync
from tests.node.reservations.helpers import open_session, portal_token
from tests.node.test_feed import new_session
from tests.node.ui.conftest import PASSWORD, USERNAME, Browser, BrowserFactory, sqlite_only

SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror="alert(1)">'
BERLIN = ZoneInfo("Europe/Berlin")
STATUS_LINK = re.compile(r"^/reservations/([0-9a-f-]{36})\?k=([A-Za-z0-9_-]+)$")


async def partners(make_node: NodeFactory, **requester: Any) -> tuple[RunningNode, RunningNode]:
    """``datev`` (whose employees reserve) peered with ``lex`` (the host)."""
    lex = await make_node("lex")
    datev = await make_node("datev", **requester)
    await peer(datev, lex)
    return datev, lex


async def reserve_seat(browser: Browser, entry_id: str, **fields: str) -> tuple[str, str, str]:
    """Reserve through the session page; the status page's path, uuid and k."""
    page = await browser.get(f"/sessions/{entry_id}")
    assert page.status == 200, page.text
    assert "Platz reservieren" in page.text
    done = await browser.post(f"/sessions/{entry_id}/reserve", {"display_name": "Jana", **fields})
    assert done.status == 303, done.text
    found = STATUS_LINK.match(done.location)
    assert found, done.location
    return done.location, found.group(1), found.group(2)


async def offer(
    host: RunningNode, clock: ManualClock, *, seats: int = 2, opening: Any = None, **session: Any
) -> str:
    """A session on *host* with *session* changes, open to all partners."""
    sid = await new_session(host, clock, **session)
    status, body = await host.admin(
        "PUT", f"/sessions/{sid}/opening", {"seats": seats, "audience": "all", **(opening or {})}
    )
    assert status == 200, body
    return sid


def field_error(page_text: str, name: str) -> str:
    found = re.search(rf'<p class="field__error" id="f-{name}-error">(.*?)</p>', page_text, re.S)
    assert found, f"no error for {name}"
    text = re.sub(r'<span class="visually-hidden">.*?</span>', "", found.group(1))
    return html.unescape(re.sub(r"<[^>]+>", "", text)).strip()


@sqlite_only
async def test_filters_search_subscription_and_embed_snippet(
    make_node: NodeFactory, clock: ManualClock, browsers: BrowserFactory
) -> None:
    datev, lex = await partners(make_node, catalogue_page="public")
    prompting = await open_session(lex, clock)
    workshop = await offer(
        lex,
        clock,
        title="Werkstatt: Datenschutz im Alltag",
        format="workshop",
        languages=["en"],
        start=(clock.now() + timedelta(days=30)).isoformat(),
    )
    full = await offer(lex, clock, seats=1, title="Ausgebuchte Runde", format="ama")
    own = await new_session(datev, clock, title="Eigene Lernrunde", format="exchange")
    await sync(lex, datev)
    # the last seat of one session goes to someone else's reservation
    browser = browsers(datev.url)
    await reserve_seat(browser, f"{full}@{lex.node_id}")
    await sync(datev, lex)
    await sync(lex, datev)

    def titles(text: str) -> list[str]:
        return re.findall(r'<h3 class="session-card__title"><a href="/sessions/([^"]+)">', text)

    page = await browser.get("/")
    assert page.status == 200
    assert '<html lang="de">' in page.text
    assert set(titles(page.text)) == {
        f"{prompting}@{lex.node_id}",
        f"{workshop}@{lex.node_id}",
        f"{full}@{lex.node_id}",
        f"{own}@{datev.node_id}",
    }
    assert "LEX" in page.text
    assert "Noch 2 Plätze frei" in page.text

    async def found(**query: str) -> set[str]:
        page = await browser.get("/", params=query)
        assert page.status == 200, page.text
        return {entry.split("@")[0] for entry in titles(page.text)}

    assert await found(q="datenschutz") == {workshop}
    assert await found(q="ausgebuch") == {full}  # a prefix is enough
    assert await found(format="workshop") == {workshop}
    assert await found(language="en") == {workshop}
    assert await found(org=datev.node_id) == {own}
    assert await found(org=lex.node_id, open_seats="true") == {prompting, workshop}
    later = (clock.now() + timedelta(days=20)).astimezone(BERLIN).date().isoformat()
    assert await found(**{"from": later}) == {workshop}
    day = (clock.now() + timedelta(days=30)).astimezone(BERLIN).date().isoformat()
    assert await found(**{"from": day, "to": day}) == {workshop}  # "to" includes its day
    assert await found(format="", language="", org="", q="") == {prompting, workshop, full, own}

    # a filter the API refuses is a field error in the visitor's language
    page = await browser.get("/", params={"format": "lecture", "q": "Excel"})
    assert page.status == 400
    assert field_error(page.text, "format") == "Bitte ein Format aus der Liste wählen."
    assert 'value="Excel"' in page.text
    page = await browser.get("/", params={"from": "morgen"})
    assert field_error(page.text, "from") == "Bitte ein Datum wie 2026-12-01 angeben."
    page = await browser.get("/", params={"to": "2020-01-01"})
    assert field_error(page.text, "to").startswith("Bitte ein gültiges Datum")

    # the webcal subscription (the API is not public: no token, so a hint) and the snippet
    page = await browser.get("/", params={"format": "workshop"})
    host = datev.url.removeprefix("http://")
    assert f'href="webcal://{host}/api/v1/catalogue.ics"' in page.text
    assert "Kalender-Token" in page.text
    assert "<summary>Einbetten</summary>" in page.text
    textarea = re.search(r"<textarea[^>]*>(.*?)</textarea>", page.text, re.S)
    assert textarea
    snippet = html.unescape(textarea[1])
    assert snippet.startswith(f'<iframe src="{datev.url}/widget?format=workshop&amp;lang=de"')


@sqlite_only
async def test_session_pages_show_the_host_and_seats_and_own_sessions_have_no_form(
    make_node: NodeFactory, clock: ManualClock, browsers: BrowserFactory
) -> None:
    datev, lex = await partners(make_node, catalogue_page="public")
    sid = await offer(lex, clock, seats=3, opening={"registration_mode": "approval"})
    own = await new_session(datev, clock, title="Eigene Lernrunde")
    await sync(lex, datev)
    browser = browsers(datev.url)

    page = await browser.get(f"/sessions/{sid}@{lex.node_id}")
    assert "<h1>KI-Prompting für Einsteiger</h1>" in page.text
    assert "<dd>LEX</dd>" in page.text
    assert "Noch 3 Plätze frei" in page.text
    assert "Ein 60-minütiger Impuls" in page.text
    assert "Der Gastgeber gibt Plätze einzeln frei." in page.text
    assert 'name="display_name"' in page.text
    assert 'name="email"' not in page.text  # the host does not ask for it
    assert "meet.example.org" not in page.text  # never a join link in the catalogue

    page = await browser.get(f"/sessions/{own}@{datev.node_id}")
    assert page.status == 200
    assert "über das interne Anmeldesystem" in page.text
    assert "Platz reservieren" not in page.text
    refused = await browser.post(f"/sessions/{own}@{datev.node_id}/reserve", {"display_name": "X"})
    assert refused.status == 409
    assert await datev.node.requests.find() == []

    missing = await browser.get(f"/sessions/nope@{lex.node_id}")
    assert missing.status == 404
    assert "Diese Session gibt es nicht (mehr) im Katalog." in missing.text


async def test_reserve_until_confirmed_then_add_to_calendar_and_cancel(
    make_node: NodeFactory, clock: ManualClock, browsers: BrowserFactory
) -> None:
    datev, lex = await partners(make_node, catalogue_page="public")
    sid = await open_session(lex, clock, seats=1)
    await sync(lex, datev)
    browser = browsers(datev.url)

    await lex.stop()  # the host answers only after the first look at the page
    status_path, reservation_id, k = await reserve_seat(browser, f"{sid}@{lex.node_id}")
    row = await datev.node.requests.get(reservation_id)
    assert re.fullmatch(r"web-[0-9a-f]{16}", row.attendee_ref)
    assert (row.attendee_name, row.attendee_email) == ("Jana", None)
    page = await browser.get(status_path)
    assert "Ihre Anfrage ist an den Gastgeber unterwegs." in page.text  # the flash
    assert '<strong class="state state--requested">angefragt</strong>' in page.text
    assert '<meta http-equiv="refresh" content="10">' in page.text
    assert page.headers["Cache-Control"] == "no-store"

    await datev.settle()
    await lex.start_again()
    clock.advance(minutes=2)
    await sync(datev, lex)
    page = await browser.get(status_path)
    assert "bestätigt" in page.text
    assert 'http-equiv="refresh"' not in page.text
    assert "Warteliste" not in page.text
    ics_href = f"/reservations/{reservation_id}.ics?k={k}"
    assert f'<a class="button button--secondary" href="{ics_href}">Zum Kalender hinzufügen</a>' in (
        page.text
    )
    assert 'href="https://meet.example.org/ki-prompting"' in page.text
    invite = await browser.get(ics_href)
    assert invite.status == 200
    assert invite.headers["Content-Type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(invite.text)
    event = next(c for c in calendar.walk() if c.name == "VEVENT")
    assert str(event["CONFERENCE"]) == "https://meet.example.org/ki-prompting"
    assert str(event["STATUS"]) == "CONFIRMED"

    # a second person finds the session full and goes on the waitlist
    other = browsers(datev.url)
    second_path, _, _ = await reserve_seat(other, f"{sid}@{lex.node_id}", display_name="Kim")
    await sync(datev, lex)
    await sync(lex, datev)
    assert "Warteliste (Platz 1)" in (await other.get(second_path)).text

    # cancel: the button asks first, then the host is asked
    asked = await browser.post(f"/reservations/{reservation_id}/cancel?k={k}", {"k": k})
    assert asked.status == 200
    assert "Die Reservierung für „KI-Prompting für Einsteiger“ wirklich stornieren?" in asked.text
    assert (await datev.node.requests.get(reservation_id)).cancel_requested is False
    done = await browser.post(
        f"/reservations/{reservation_id}/cancel", {"k": k, "confirmed": "yes"}
    )
    assert (done.status, done.location) == (303, status_path)
    page = await browser.get(status_path)
    assert "Stornierung angefragt" in page.text
    await sync(datev, lex)
    await sync(lex, datev)
    page = await browser.get(status_path)
    assert '<strong class="state state--cancelled">storniert</strong>' in page.text
    assert "Reservierung stornieren</button>" not in page.text
    assert "METHOD:CANCEL" in (await browser.get(ics_href)).text
    assert "bestätigt" in (await other.get(second_path)).text  # moved up


@sqlite_only
async def test_field_errors_in_both_languages_keep_the_input(
    make_node: NodeFactory, clock: ManualClock, browsers: BrowserFactory
) -> None:
    datev, lex = await partners(make_node, catalogue_page="public")
    sid = await offer(lex, clock, opening={"email_required": True})
    await sync(lex, datev)
    entry = f"{sid}@{lex.node_id}"
    browser = browsers(datev.url)
    page = await browser.get(f"/sessions/{entry}")
    assert 'name="email"' in page.text

    page = await browser.post(f"/sessions/{entry}/reserve", {"display_name": "", "email": ""})
    assert page.status == 400
    assert field_error(page.text, "display_name") == "Bitte geben Sie Ihren Namen an."
    assert field_error(page.text, "email").startswith("Der Gastgeber verlangt eine E-Mail-Adresse")

    long_name = "Jana " * 30
    page = await browser.post(
        f"/sessions/{entry}/reserve", {"display_name": long_name, "email": "jana@"}
    )
    assert page.status == 400
    assert field_error(page.text, "display_name") == (
        "Der Name darf höchstens 120 Zeichen lang sein."
    )
    assert field_error(page.text, "email").startswith("Bitte geben Sie eine gültige E-Mail")
    assert f'value="{long_name.strip()}"' in page.text
    assert 'value="jana@"' in page.text

    await browser.get(f"/lang/en?next=/sessions/{entry}")
    page = await browser.post(
        f"/sessions/{entry}/reserve", {"display_name": "Jana", "email": "not-an-address"}
    )
    assert page.status == 400
    assert '<html lang="en">' in page.text
    assert "Reserve a seat" in page.text
    assert field_error(page.text, "email") == (
        "Please enter a valid email address, like name@example.org."
    )
    assert 'value="Jana"' in page.text
    assert 'value="not-an-address"' in page.text
    page = await browser.post(f"/sessions/{entry}/reserve", {"display_name": " ", "email": ""})
    assert field_error(page.text, "display_name") == "Please enter your name."
    assert field_error(page.text, "email") == "The host requires an email address. Please enter it."
    assert await datev.node.requests.find() == []

    # with the address, the host receives it (and only then)
    page = await browser.get(f"/sessions/{entry}")
    done = await browser.post(
        f"/sessions/{entry}/reserve", {"display_name": "Jana", "email": "jana@datev.example"}
    )
    assert done.status == 303
    [row] = await datev.node.requests.find()
    assert row.attendee_email == "jana@datev.example"
    assert "jana" not in row.attendee_ref


@sqlite_only
async def test_a_double_submit_books_once(
    make_node: NodeFactory, clock: ManualClock, browsers: BrowserFactory
) -> None:
    datev, lex = await partners(make_node, catalogue_page="public")
    sid = await open_session(lex, clock)
    await sync(lex, datev)
    browser = browsers(datev.url)
    page = await browser.get(f"/sessions/{sid}@{lex.node_id}")
    found = re.search(r'name="form_id" value="([^"]+)"', page.text)
    assert found
    form_id = found[1]
    sent = {"display_name": "Jana", "form_id": form_id}
    first = await browser.post(f"/sessions/{sid}@{lex.node_id}/reserve", sent)
    again = await browser.post(f"/sessions/{sid}@{lex.node_id}/reserve", sent)
    assert first.location == again.location
    assert len(await datev.node.requests.find()) == 1


@sqlite_only
async def test_the_status_page_needs_its_capability(
    make_node: NodeFactory, clock: ManualClock, browsers: BrowserFactory
) -> None:
    datev, lex = await partners(make_node, catalogue_page="public")
    sid = await open_session(lex, clock)
    await sync(lex, datev)
    browser = browsers(datev.url)
    _, reservation_id, k = await reserve_seat(browser, f"{sid}@{lex.node_id}")
    stranger = browsers(datev.url)
    other_k = "A" * len(k)
    for path in (
        f"/reservations/{reservation_id}",
        f"/reservations/{reservation_id}?k={other_k}",
        f"/reservations/{reservation_id}?k={k[:-1]}",
        f"/reservations/{reservation_id}.ics?k={other_k}",
        f"/reservations/{reservation_id}.ics",
        f"/reservations/00000000-0000-4000-8000-000000000000?k={k}",
    ):
        page = await stranger.get(path)
        assert page.status == 404, path
        assert "Jana" not in page.text
    await stranger.get(f"/sessions/{sid}@{lex.node_id}")  # a CSRF token of its own
    page = await stranger.post(
        f"/reservations/{reservation_id}/cancel", {"k": other_k, "confirmed": "yes"}
    )
    assert page.status == 404
    assert (await datev.node.requests.get(reservation_id)).cancel_requested is False
    assert (await stranger.get(f"/reservations/{reservation_id}?k={k}")).status == 200


@sqlite_only
async def test_posts_without_a_csrf_token_are_refused(
    make_node: NodeFactory, clock: ManualClock, browsers: BrowserFactory
) -> None:
    datev, lex = await partners(make_node, catalogue_page="public")
    sid = await open_session(lex, clock)
    await sync(lex, datev)
    browser = browsers(datev.url)
    _, reservation_id, k = await reserve_seat(browser, f"{sid}@{lex.node_id}")
    page = await browser.post(
        f"/sessions/{sid}@{lex.node_id}/reserve", {"display_name": "Eve"}, csrf=False
    )
    assert page.status == 403
    page = await browser.post(
        f"/reservations/{reservation_id}/cancel", {"k": k, "confirmed": "yes"}, csrf=False
    )
    assert page.status == 403
    assert len(await datev.node.requests.find()) == 1
    assert (await datev.node.requests.get(reservation_id)).cancel_requested is False


@sqlite_only
async def test_a_partners_markup_renders_as_text(
    make_node: NodeFactory, clock: ManualClock, browsers: BrowserFactory
) -> None:
    datev, lex = await partners(make_node, catalogue_page="public")
    sid = await offer(lex, clock, title=SCRIPT, description=IMG, host_name=IMG)
    await sync(lex, datev)
    browser = browsers(datev.url)
    for path in ("/", f"/sessions/{sid}@{lex.node_id}", "/widget"):
        page = await browser.get(path)
        assert page.status == 200, path
        assert SCRIPT not in page.text, path
        assert "<img src=x" not in page.text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text, path
    _, reservation_id, k = await reserve_seat(browser, f"{sid}@{lex.node_id}")
    page = await browser.get(f"/reservations/{reservation_id}?k={k}")
    assert SCRIPT not in page.text
    assert "&lt;script&gt;" in page.text


@sqlite_only
async def test_the_widget_is_compact_framable_and_opens_links_in_a_new_tab(
    make_node: NodeFactory, clock: ManualClock, browsers: BrowserFactory
) -> None:
    lex = await make_node("lex")
    datev = await make_node(
        "datev", catalogue_page="public", widget_frame_ancestors=["https://intranet.datev.example"]
    )
    await peer(datev, lex)
    await open_session(lex, clock)
    workshop = await offer(lex, clock, title="Werkstatt Excel", format="workshop")
    await sync(lex, datev)
    browser = browsers(datev.url)

    page = await browser.get("/widget", params={"format": "workshop", "lang": "en"})
    assert page.status == 200
    assert '<html lang="en">' in page.text
    assert "Werkstatt Excel" in page.text
    assert "KI-Prompting" not in page.text
    assert f'href="/sessions/{workshop}@{lex.node_id}" target="_blank" rel="noopener"' in page.text
    assert "Workshop" in page.text  # the format, in English
    assert "site-header" not in page.text  # compact: no header, no language switch
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://intranet.datev.example" in csp
    assert "X-Frame-Options" not in page.headers
    assert "KI-Prompting" in (await browser.get("/widget")).text

    page = await browser.get("/")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "widget_frame_ancestors" not in page.text  # origins are configured


@sqlite_only
async def test_access_modes(
    make_node: NodeFactory, clock: ManualClock, browsers: BrowserFactory, fast_scrypt: None
) -> None:
    login_only = await make_node("login")  # default without public_catalogue: login
    await create_admin(login_only.node.db, USERNAME, PASSWORD, clock.now())
    browser = browsers(login_only.url)
    for path in ("/", "/widget", "/sessions/x@y.example"):
        page = await browser.get(path)
        assert page.status == 401, path
        assert "Kein Zugang zum Katalog" in page.text
        assert "nur für angemeldete Administratorinnen" in page.text
    await browser.get("/lang/en?next=/")
    assert "No access to the catalogue" in (await browser.get("/")).text
    await browser.login()
    assert (await browser.get("/")).status == 200

    public = await make_node("public", public_catalogue=True)  # default then: public
    page = await browsers(public.url).get("/")
    assert page.status == 200
    assert f'href="webcal://{public.url.removeprefix("http://")}/api/v1/catalogue.ics"' in page.text

    tokened = await make_node("token", catalogue_page="token")
    visitor = browsers(tokened.url)
    assert (await visitor.get("/")).status == 401
    bad = await visitor.get("/?token=nonsense")
    assert bad.status == 403
    assert "ungültig oder wurde widerrufen" in bad.text
    token = await portal_token(tokened)
    page = await visitor.get(f"/?token={token}")
    assert page.status == 200
    cookie = page.cookies["openseats_catalogue"]
    assert (cookie["httponly"], cookie["samesite"]) == (True, "Lax")
    page = await visitor.get("/")  # the cookie carries on
    assert page.status == 200
    host = tokened.url.removeprefix("http://")
    assert f'href="webcal://{host}/api/v1/catalogue.ics?token={token}"' in page.text
    assert (await visitor.get("/widget")).status == 200
    # revoked: refused at once
    status, listed = await tokened.admin("GET", "/tokens")
    portal = next(item for item in listed["tokens"] if item["role"] == "portal")
    status, _ = await tokened.admin("DELETE", f"/tokens/{portal['id']}")
    assert status in (200, 204)
    assert (await visitor.get("/")).status == 401


@pytest.mark.parametrize("mode", ["public", "token", "login"])
def test_the_setting_documents_its_modes(mode: str) -> None:
    from node.settings import Settings

    description = Settings.model_fields["catalogue_page"].description or ""
    assert f"'{mode}'" in description
