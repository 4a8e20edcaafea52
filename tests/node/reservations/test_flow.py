"""Two real nodes over loopback: the whole life of partner reservations."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import icalendar
from jsonschema import Draft202012Validator
from sqlalchemy import select

from node.clock import ManualClock
from node.db.tables import outbox
from tests.node.conftest import NodeFactory, RunningNode, peer, sync
from tests.node.reservations.helpers import api, open_session, portal_token, reserve, state_of

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
FORMAT_CHECKER = Draft202012Validator.FORMAT_CHECKER


def invite(text: str) -> tuple[str, icalendar.Event]:
    calendar = icalendar.Calendar.from_ical(text)
    events = [c for c in calendar.walk() if c.name == "VEVENT"]
    assert len(events) == 1
    return str(calendar["METHOD"]), events[0]


async def test_reserve_confirm_cancel_promote_session_cancel_purge(
    make_node: NodeFactory, clock: ManualClock
) -> None:
    lex, datev = await make_node("lex"), await make_node("datev")
    await peer(datev, lex)
    sid = await open_session(lex, clock, seats=1)
    await sync(lex, datev)
    token = await portal_token(datev)

    # Reserve: requested until the host has answered (it is down for a
    # moment here, so the answer cannot race the check), then confirmed.
    await lex.stop()
    first = await reserve(datev, lex, sid, token, "emp-1")
    assert (await state_of(datev, first["id"], token))["state"] == "requested"
    status, text = await api(datev, "GET", f"/reservations/{first['id']}.ics", token)
    method, event = invite(text)
    assert (method, str(event["STATUS"])) == ("REQUEST", "TENTATIVE")
    assert "CONFERENCE" not in event
    assert "meet.example.org" not in text
    await datev.settle()
    await lex.start_again()
    clock.advance(minutes=2)  # past the outbox's backoff after the failed attempt
    await sync(datev, lex)
    seen = await state_of(datev, first["id"], token)
    assert seen["state"] == "confirmed"
    assert seen["join_url"] == "https://meet.example.org/ki-prompting"
    status, text = await api(datev, "GET", f"/reservations/{first['id']}.ics", token)
    assert status == 200
    method, event = invite(text)
    assert method == "REQUEST"
    assert str(event["CONFERENCE"]) == "https://meet.example.org/ki-prompting"
    assert str(event["STATUS"]) == "CONFIRMED"
    confirmed_sequence = int(event["SEQUENCE"])

    # The full session waitlists the next; the feed shows 0 remaining.
    second = await reserve(datev, lex, sid, token, "emp-2")
    await sync(datev, lex)
    await lex.settle()
    await sync(lex, datev)
    waiting = await state_of(datev, second["id"], token)
    assert (waiting["state"], waiting["position"]) == ("waitlisted", 1)
    status, entry, _ = await datev.portal(f"/sessions/{sid}@{lex.node_id}", token=token)
    assert entry["seats"]["remaining"] == 0

    # Cancelling the first promotes the second; both sides agree.
    status, body = await api(datev, "DELETE", f"/reservations/{first['id']}", token)
    assert status == 202
    assert body["cancel_requested"] is True
    assert body["state"] == "confirmed"  # not cancelled before the host says so
    await sync(datev, lex)
    await sync(lex, datev)
    assert (await state_of(datev, first["id"], token))["state"] == "cancelled"
    promoted = await state_of(datev, second["id"], token)
    assert promoted["state"] == "confirmed"
    status, host_view = await lex.admin("GET", f"/sessions/{sid}/reservations")
    assert status == 200, host_view
    assert {r["id"]: r["state"] for r in host_view["reservations"]} == {
        first["id"]: "cancelled",
        second["id"]: "confirmed",
    }
    status, text = await api(datev, "GET", f"/reservations/{first['id']}.ics", token)
    method, event = invite(text)
    assert method == "CANCEL"
    assert int(event["SEQUENCE"]) > confirmed_sequence

    # The host cancels the session: the requester's invite becomes CANCEL.
    before = invite((await api(datev, "GET", f"/reservations/{second['id']}.ics", token))[1])
    status, _ = await lex.admin("POST", f"/sessions/{sid}/cancel")
    assert status == 200
    await sync(lex, datev)
    gone = await state_of(datev, second["id"], token)
    assert (gone["state"], gone["cancelled_by"]) == ("cancelled", "host")
    method, event = invite((await api(datev, "GET", f"/reservations/{second['id']}.ics", token))[1])
    assert method == "CANCEL"
    assert str(event["STATUS"]) == "CANCELLED"
    assert int(event["SEQUENCE"]) == int(before[1]["SEQUENCE"]) + 1 or int(event["SEQUENCE"]) > int(
        before[1]["SEQUENCE"]
    )
    assert "CONFERENCE" not in event

    # 30 days after the session, attendee data is gone on both sides.
    clock.advance(days=10 + 31)
    assert await lex.node.host.purge(clock.now() - timedelta(days=30)) == 2
    assert await datev.node.requests.purge(clock.now() - timedelta(days=30)) == 2
    status, body = await api(datev, "GET", f"/reservations/{second['id']}", token)
    assert status == 404
    status, host_view = await lex.admin("GET", f"/sessions/{sid}/reservations")
    assert host_view["reservations"] == []


async def test_every_message_on_the_wire_matches_its_schema(
    make_node: NodeFactory, clock: ManualClock
) -> None:
    """Requests, answers and notices as sent are valid against schemas/."""
    lex, datev = await make_node("lex"), await make_node("datev")
    await peer(datev, lex)
    sid = await open_session(lex, clock, seats=1)
    await sync(lex, datev)
    token = await portal_token(datev)
    first = await reserve(datev, lex, sid, token, "emp-1", seats=1, hold=True)
    second = await reserve(datev, lex, sid, token, "emp-2")
    sent = await _outbox(datev)
    await sync(datev, lex)
    held = await state_of(datev, first["id"], token)
    assert held["state"] == "held"
    assert held["hold_expires_at"] is not None
    # The hold expires: the seat goes to the waitlist, both sides are told.
    clock.advance(minutes=6)
    assert await lex.node.host.expire_holds() == 2
    await sync(lex, datev)
    assert (await state_of(datev, first["id"], token))["reason"] == "hold_expired"
    assert (await state_of(datev, second["id"], token))["state"] == "confirmed"
    await lex.admin("POST", f"/sessions/{sid}/cancel")
    notices = [(k, b) for k, b in await _outbox(lex) if k not in ("feed_changed", "peering_answer")]

    requests = [body for kind, body in sent if kind == "reservation_request"]
    assert len(requests) == 2
    for body in requests:
        assert list(validator("reservation_request").iter_errors(body)) == []
    kinds = [kind for kind, _ in notices]
    assert kinds == ["reservation_updated", "reservation_updated", "session_cancelled"]
    for kind, body in notices:
        assert list(validator("notice").iter_errors(body)) == [], kind
    for reservation_id in (first["id"], second["id"]):
        answer = await datev.node.client.signed_json(
            "GET", f"{lex.url}/protocol/v1/reservations/{reservation_id}"
        )
        assert list(validator("reservation_answer").iter_errors(answer)) == []
    assert "emp-1" not in str([body for _, body in notices])


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    return Draft202012Validator(schema, format_checker=FORMAT_CHECKER)


async def _outbox(node: RunningNode) -> list[tuple[str, Any]]:
    async with node.node.db.read() as conn:
        rows = await conn.execute(select(outbox.c.kind, outbox.c.body).order_by(outbox.c.id))
        return [(row.kind, json.loads(row.body) if row.body else None) for row in rows]
