"""Subscribing between real nodes: push and pull, merge rules, catch-up, portal API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import icalendar
import vobject

from node.clock import ManualClock
from tests.node.conftest import NodeFactory, RunningNode, peer, sync
from tests.node.test_feed import new_session, open_to


async def catalogue(node: RunningNode, query: str = "") -> list[dict[str, Any]]:
    status, body, _ = await node.portal(f"/catalogue{query}", token=node.admin_token)
    assert status == 200, body
    return list(body["items"])


async def titles(node: RunningNode, query: str = "") -> list[str]:
    return [item["title"] for item in await catalogue(node, query)]


async def test_notice_pushes_and_partner_merges(make_node: NodeFactory, clock: ManualClock) -> None:
    lex, datev = await make_node("lex"), await make_node("datev")
    await peer(datev, lex)
    sid = await new_session(lex, clock)
    await open_to(lex, sid, "all", seats=6)
    await sync(lex, datev)

    items = await catalogue(datev)
    assert [(i["title"], i["organisation"]) for i in items] == [
        ("KI-Prompting für Einsteiger", {"node_id": lex.node_id, "name": "LEX"})
    ]
    entry = items[0]
    assert entry["id"] == f"{sid}@{lex.node_id}"
    assert entry["seats"]["remaining"] == 6
    assert entry["is_local"] is False
    assert "join" not in str(entry)
    assert "meet.example.org" not in str(entry)
    _status, body = await datev.admin("GET", f"/peers/{lex.node_id}")
    assert body["sync"]["last_error"] is None
    assert body["sync"]["cursor"] >= 1

    # Updates, cancellation and closing reach the partner too.
    await lex.admin("PATCH", f"/sessions/{sid}", {"title": "KI-Prompting für Fortgeschrittene"})
    await sync(lex, datev)
    assert await titles(datev) == ["KI-Prompting für Fortgeschrittene"]
    await lex.admin("POST", f"/sessions/{sid}/cancel")
    await sync(lex, datev)
    assert [i["status"] for i in await catalogue(datev)] == ["cancelled"]
    await lex.admin("DELETE", f"/sessions/{sid}/opening")
    await sync(lex, datev)
    assert await catalogue(datev) == []


async def test_catalogue_merges_own_and_partner_sessions(
    make_node: NodeFactory, clock: ManualClock
) -> None:
    lex, datev, kiwi = await make_node("lex"), await make_node("datev"), await make_node("kiwi")
    await peer(datev, lex)
    await peer(datev, kiwi)
    await peer(kiwi, lex)
    own = await new_session(datev, clock, title="Werkstatt: Barrierefreie PDFs", format="workshop")
    assert own
    for_datev = await new_session(
        lex, clock, title="AMA: Agiles Arbeiten in der Verwaltung", format="ama", tags=["Agilität"]
    )
    await open_to(lex, for_datev, [datev.node_id])
    for_kiwi = await new_session(lex, clock, title="Impuls: Führung auf Distanz")
    await open_to(lex, for_kiwi, [kiwi.node_id])
    kiwi_open = await new_session(
        kiwi,
        clock,
        title="Erfahrungsaustausch Straßenbau",
        format="exchange",
        languages=["de", "en"],
        host_name="Jörg Weiß",
    )
    await open_to(kiwi, kiwi_open, "all", seats=2)
    await sync(lex, datev, kiwi)

    assert sorted(await titles(datev)) == [
        "AMA: Agiles Arbeiten in der Verwaltung",
        "Erfahrungsaustausch Straßenbau",
        "Werkstatt: Barrierefreie PDFs",
    ]
    assert "Impuls: Führung auf Distanz" in await titles(kiwi)
    assert "AMA: Agiles Arbeiten in der Verwaltung" not in await titles(kiwi)

    # Filters and full text (case folding, umlauts, prefixes).
    assert await titles(datev, "?format=ama") == ["AMA: Agiles Arbeiten in der Verwaltung"]
    assert await titles(datev, f"?org={kiwi.node_id}") == ["Erfahrungsaustausch Straßenbau"]
    assert await titles(datev, "?language=en") == ["Erfahrungsaustausch Straßenbau"]
    assert await titles(datev, "?q=STRASSE") == ["Erfahrungsaustausch Straßenbau"]
    assert await titles(datev, "?q=agilit") == ["AMA: Agiles Arbeiten in der Verwaltung"]
    assert await titles(datev, "?q=barrierefrei%20pdf") == ["Werkstatt: Barrierefreie PDFs"]
    assert await titles(datev, "?q=nichtvorhanden") == []
    assert sorted(await titles(datev, "?open_seats=true")) == [
        "AMA: Agiles Arbeiten in der Verwaltung",
        "Erfahrungsaustausch Straßenbau",
    ]
    far = (clock.now() + timedelta(days=30)).date().isoformat()
    assert await titles(datev, f"?from={far}") == []


async def test_pagination_etag_and_one_session(make_node: NodeFactory, clock: ManualClock) -> None:
    lex = await make_node("lex")
    for n in range(5):
        await new_session(
            lex,
            clock,
            title=f"Sitzung {n}",
            start=(clock.now() + timedelta(days=3, hours=n)).isoformat(),
        )
    seen, cursor = [], ""
    while True:
        status, body, _ = await lex.portal(f"/catalogue?limit=2{cursor}", token=lex.admin_token)
        seen += [item["title"] for item in body["items"]]
        if not body["next_cursor"]:
            break
        cursor = f"&cursor={body['next_cursor']}"
    assert seen == [f"Sitzung {n}" for n in range(5)]

    status, body, headers = await lex.portal("/catalogue", token=lex.admin_token)
    etag = headers["ETag"]
    status, _, _ = await lex.portal(
        "/catalogue", token=lex.admin_token, headers={"If-None-Match": etag}
    )
    assert status == 304

    entry_id = body["items"][0]["id"]
    status, one, _ = await lex.portal(f"/sessions/{entry_id}", token=lex.admin_token)
    assert (status, one["title"]) == (200, "Sitzung 0")
    status, ld, headers = await lex.portal(f"/sessions/{entry_id}.jsonld", token=lex.admin_token)
    assert headers["Content-Type"].startswith("application/ld+json")
    assert ld["@type"] == "EducationEvent"
    status, ld2, _ = await lex.portal(
        f"/sessions/{entry_id}", token=lex.admin_token, headers={"Accept": "application/ld+json"}
    )
    assert ld2 == ld


async def test_ics_feeds_parse_and_are_stable(make_node: NodeFactory, clock: ManualClock) -> None:
    lex = await make_node("lex")
    sid = await new_session(lex, clock)
    await lex.admin("POST", f"/sessions/{sid}/cancel")
    await new_session(lex, clock, title="AMA: Agiles Arbeiten")
    _, token = await lex.admin("POST", "/tokens", {"role": "calendar"})
    status, first, headers = await lex.portal(f"/catalogue.ics?token={token['token']}")
    assert status == 200
    assert headers["Content-Type"].startswith("text/calendar")
    _, second, headers2 = await lex.portal(f"/catalogue.ics?token={token['token']}")
    assert first == second
    assert headers["ETag"] == headers2["ETag"]
    calendar = icalendar.Calendar.from_ical(first)
    events = {str(e["UID"]): e for e in calendar.walk("VEVENT")}
    assert f"{sid}@{lex.node_id}" in events
    assert str(events[f"{sid}@{lex.node_id}"]["STATUS"]) == "CANCELLED"
    parsed = vobject.readOne(first.decode("utf-8"))
    assert len(parsed.vevent_list) == 2
    assert b"meet.example.org" not in first  # the join link never leaves the node
    status, single, _ = await lex.portal(
        f"/sessions/{sid}@{lex.node_id}.ics", token=lex.admin_token
    )
    assert status == 200
    assert len(icalendar.Calendar.from_ical(single).walk("VEVENT")) == 1


async def test_offline_partner_catches_up_from_its_cursor(
    make_node: NodeFactory, clock: ManualClock
) -> None:
    lex = await make_node("lex", feed_page_size=2)
    datev = await make_node("datev")
    await peer(datev, lex)
    first = await new_session(lex, clock, title="Vorher")
    await open_to(lex, first, "all")
    await sync(lex, datev)
    assert await titles(datev) == ["Vorher"]

    await datev.stop()
    ids = []
    for n in range(7):
        sid = await new_session(lex, clock, title=f"Unterwegs {n}")
        await open_to(lex, sid, "all")
        ids.append(sid)
        clock.advance(hours=9)
    await lex.admin("PATCH", f"/sessions/{ids[0]}", {"title": "Unterwegs 0 (neu)"})
    await lex.admin("DELETE", f"/sessions/{first}/opening")
    await lex.node.deliverer.deliver_due()  # fails: datev is down; the notice waits
    clock.advance(days=1)

    await datev.start_again()
    await sync(lex, datev)
    result = sorted(await titles(datev))
    assert result == sorted(["Unterwegs 0 (neu)", *[f"Unterwegs {n}" for n in range(1, 7)]])
    _status, body = await datev.admin("GET", f"/peers/{lex.node_id}")
    assert body["sync"]["failures"] == 0
    assert body["rejected_items"] == []


async def test_past_sessions_leave_the_catalogue(
    make_node: NodeFactory, clock: ManualClock
) -> None:
    from node.db import catalogue as catalogue_repo

    lex, datev = await make_node("lex"), await make_node("datev")
    await peer(datev, lex)
    sid = await new_session(lex, clock)
    await open_to(lex, sid, "all")
    await sync(lex, datev)
    assert await titles(datev) == ["KI-Prompting für Einsteiger"]
    clock.advance(days=11)  # the session (10 days ahead, 1 hour) is over
    assert await titles(datev) == []
    retention = timedelta(days=datev.settings.catalogue_retention_days)
    async with datev.node.db.write() as conn:
        assert await catalogue_repo.purge(conn, ended_before=clock.now() - retention) == 0
    clock.advance(days=8)
    async with datev.node.db.write() as conn:
        assert await catalogue_repo.purge(conn, ended_before=clock.now() - retention) == 1
