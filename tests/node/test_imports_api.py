"""Imports through the admin API and the scheduler: upsert by key, reports, bad files."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from node.clock import ManualClock
from tests.node.conftest import NodeFactory, RunningNode
from tests.node.imports.conftest import NOW, read_data


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


async def upload(node: RunningNode, name: str, content_type: str, data: bytes | None = None):  # type: ignore[no-untyped-def]
    return await node.admin(
        "POST",
        "/imports",
        raw=data if data is not None else read_data(name),
        headers={"Content-Type": content_type},
    )


async def titles(node: RunningNode) -> list[tuple[str, str]]:
    _, body = await node.admin("GET", "/sessions")
    return sorted((s["title"], s["status"]) for s in body["sessions"])


async def test_csv_import_and_reimport(make_node: NodeFactory) -> None:
    lex = await make_node("lex")
    status, report = await upload(lex, "wdw_excel_de.csv", "text/csv")
    assert status == 200, report
    assert (report["imported"], report["cancelled"], report["rejected"]) == (4, 1, 0)
    first = await titles(lex)
    assert ("Werkstatt: Barrierefreie PDFs", "cancelled") in first

    status, again = await upload(lex, "wdw_excel_de.csv", "text/csv")
    assert (again["imported"], again["updated"], again["unchanged"]) == (0, 0, 4)
    assert await titles(lex) == first

    changed = read_data("wdw_excel_de.csv").replace(
        b"AMA mit der Personalabteilung", b"AMA mit dem Betriebsrat"
    )
    _, third = await upload(lex, "", "text/csv", changed)
    assert (third["imported"], third["updated"]) == (0, 1)
    assert ("AMA mit dem Betriebsrat", "scheduled") in await titles(lex)
    assert len(await titles(lex)) == 4


async def test_bad_rows_are_reported_and_skipped(make_node: NodeFactory) -> None:
    lex = await make_node("lex")
    status, report = await upload(lex, "wdw_fehlerhaft.csv", "text/csv")
    assert status == 200
    assert report["imported"] == 2
    assert report["rejected"] == 9
    codes = {(p["where"], p["code"]) for p in report["problems"]}
    assert ("line 3", "bad_date") in codes
    assert ("line 6", "unknown_timezone") in codes
    assert ("line 8", "start_in_past") in codes
    assert len(await titles(lex)) == 2


async def test_ics_import_keeps_uids(make_node: NodeFactory) -> None:
    lex = await make_node("lex")
    status, report = await upload(lex, "datev_outlook_export.ics", "text/calendar")
    assert status == 200, report
    assert (report["imported"], report["cancelled"], report["skipped_past"]) == (11, 1, 1)
    _, again = await upload(lex, "datev_outlook_export.ics", "text/calendar")
    assert (again["imported"], again["unchanged"]) == (0, 11)
    status, problems = await upload(lex, "problem_events.ics", "text/calendar")
    assert problems["imported"] == 1
    assert {p["code"] for p in problems["problems"]} >= {
        "missing_dtstart",
        "all_day_event",
        "no_usable_instance",
        "unknown_timezone",
    }


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        (b"Titel;Beginn\nKI;03.12.2026 10:00\n", "text/csv", 400, "missing_column"),
        (
            "Titel;Beginn;Dauer;Referent\nGrüße;03.12.2026 10:00;60;Anna\n".encode("latin-1"),
            "text/csv",
            400,
            "bad_encoding",
        ),
        (b"BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:kaputt", "text/calendar", 400, "bad_ics"),
        (b"", "text/csv", 400, "empty"),
        (b"<html></html>", "text/html", 415, "unsupported_media_type"),
    ],
)
async def test_unusable_files_change_nothing(
    make_node: NodeFactory, data: bytes, content_type: str, status: int, code: str
) -> None:
    lex = await make_node("lex")
    await upload(lex, "lex_sessions_en.csv", "text/csv")
    before = await titles(lex)
    got, body = await upload(lex, "", content_type, data)
    assert (got, body["code"]) == (status, code)
    assert await titles(lex) == before


@pytest.fixture
async def calendar_server() -> AsyncIterator[tuple[str, dict[str, bytes]]]:
    content = {"ics": read_data("kiwi_nextcloud_berlin.ics")}

    async def serve(_: web.Request) -> web.Response:
        return web.Response(body=content["ics"], content_type="text/calendar")

    app = web.Application()
    app.router.add_get("/kalender.ics", serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/kalender.ics")), content
    await server.close()


async def test_subscribed_calendar_resyncs(
    make_node: NodeFactory, clock: ManualClock, calendar_server: tuple[str, dict[str, bytes]]
) -> None:
    url, content = calendar_server
    lex = await make_node("lex")
    status, report = await lex.admin("POST", "/imports", {"url": url, "interval_minutes": 60})
    assert (status, report["imported"]) == (200, 3), report
    _, listing = await lex.admin("GET", "/imports/sources")
    assert [s["url"] for s in listing["sources"]] == [url]

    content["ics"] = content["ics"].replace(b"SUMMARY:", b"SUMMARY:Neu: ", 1)
    assert await lex.node.importer.sync_due() == 0  # not due yet
    clock.advance(minutes=61)
    assert await lex.node.importer.sync_due() == 1
    _, listing = await lex.admin("GET", "/imports/sources")
    assert listing["sources"][0]["last_report"]["updated"] == 1
    assert len(await titles(lex)) == 3

    source_id = listing["sources"][0]["id"]
    assert (await lex.admin("DELETE", f"/imports/sources/{source_id}"))[0] == 204
    assert (await lex.admin("DELETE", f"/imports/sources/{source_id}"))[0] == 404


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "ftp://example.org/x.ics"}, "invalid_field"),
        ({"url": "http://127.0.0.1:9/nothing.ics"}, "empty"),
        ({"url": "http://127.0.0.1:9/x.ics", "interval_minutes": 1}, "invalid_field"),
    ],
)
async def test_bad_url_imports(make_node: NodeFactory, body: dict[str, object], code: str) -> None:
    lex = await make_node("lex")
    status, answer = await lex.admin("POST", "/imports", body)
    assert (status, answer["code"]) == (400, code)
    assert (await lex.admin("GET", "/imports/sources"))[1]["sources"] == []
