"""The host admin's levers over real nodes: approval, quota, caps, closing, views."""

from __future__ import annotations

from node.clock import ManualClock
from tests.node.conftest import NodeFactory, RunningNode, peer, sync
from tests.node.reservations.helpers import api, open_session, portal_token, reserve, state_of


async def two_nodes(make_node: NodeFactory) -> tuple[RunningNode, RunningNode, str]:
    lex, datev = await make_node("lex"), await make_node("datev")
    await peer(datev, lex)
    return lex, datev, await portal_token(datev)


async def test_approval_then_waitlist_then_more_seats(
    make_node: NodeFactory, clock: ManualClock
) -> None:
    lex, datev, token = await two_nodes(make_node)
    sid = await open_session(lex, clock, seats=1, registration_mode="approval")
    await sync(lex, datev)
    first = await reserve(datev, lex, sid, token, "emp-1")
    second = await reserve(datev, lex, sid, token, "emp-2")
    third = await reserve(datev, lex, sid, token, "emp-3")
    await sync(datev, lex)
    assert (await state_of(datev, first["id"], token))["state"] == "pending"

    status, pending = await lex.admin("GET", "/reservations/pending")
    assert status == 200
    assert [p["id"] for p in pending["items"]] == [first["id"], second["id"], third["id"]]
    assert pending["items"][0]["attendee"]["display_name"] == "Person emp-1"

    for item, action in ((first, "approve"), (second, "approve"), (third, "decline")):
        status, body = await lex.admin("POST", f"/reservations/incoming/{item['id']}/{action}")
        assert status == 200, body
    status, body = await lex.admin("POST", f"/reservations/incoming/{first['id']}/approve")
    assert (status, body["code"]) == (409, "not_pending")
    await sync(lex, datev)
    assert (await state_of(datev, first["id"], token))["state"] == "confirmed"
    waiting = await state_of(datev, second["id"], token)
    assert (waiting["state"], waiting["position"]) == ("waitlisted", 1)
    declined = await state_of(datev, third["id"], token)
    assert (declined["state"], declined["reason"]) == ("rejected", "declined_by_host")

    # Fewer seats than taken is refused; more seats promote the waitlist.
    status, body = await lex.admin(
        "PUT", f"/sessions/{sid}/opening", {"seats": 0, "audience": "all"}
    )
    assert status == 400  # 0 is not a quota; closing is DELETE /opening
    status, view = await lex.admin("GET", f"/sessions/{sid}/reservations")
    assert (view["quota"], view["taken"]) == (1, 1)
    status, body = await lex.admin(
        "PUT",
        f"/sessions/{sid}/opening",
        {"seats": 2, "audience": "all", "registration_mode": "approval"},
    )
    assert status == 200, body
    await sync(lex, datev)
    assert (await state_of(datev, second["id"], token))["state"] == "confirmed"
    status, view = await lex.admin("GET", f"/sessions/{sid}/reservations")
    assert view["by_partner"] == {datev.node_id: {"confirmed": 2, "rejected": 1}}
    assert view["waitlist"] == []


async def test_quota_below_taken_is_refused(make_node: NodeFactory, clock: ManualClock) -> None:
    lex, datev, token = await two_nodes(make_node)
    sid = await open_session(lex, clock, seats=2)
    await sync(lex, datev)
    for ref in ("emp-1", "emp-2"):
        await reserve(datev, lex, sid, token, ref)
    await sync(datev, lex)
    status, body = await lex.admin(
        "PUT", f"/sessions/{sid}/opening", {"seats": 1, "audience": "all"}
    )
    assert (status, body["code"]) == (409, "quota_below_taken")
    status, view = await lex.admin("GET", f"/sessions/{sid}/reservations")
    assert (view["quota"], view["taken"]) == (2, 2)


async def test_partner_cap_and_closing(make_node: NodeFactory, clock: ManualClock) -> None:
    lex, datev, token = await two_nodes(make_node)
    sid = await open_session(lex, clock, seats=3)
    status, body = await lex.admin("PUT", f"/sessions/{sid}/caps/{datev.node_id}", {"cap": 1})
    assert status == 200, body
    assert body["caps"] == {datev.node_id: {"cap": 1, "taken": 0}}
    status, body = await lex.admin("PUT", f"/sessions/{sid}/caps/nobody.example", {"cap": 1})
    assert status == 404
    await sync(lex, datev)
    first = await reserve(datev, lex, sid, token, "emp-1")
    second = await reserve(datev, lex, sid, token, "emp-2")
    await sync(datev, lex)
    assert (await state_of(datev, first["id"], token))["state"] == "confirmed"
    # The cap is used up although seats remain: waitlisted for this partner.
    assert (await state_of(datev, second["id"], token))["state"] == "waitlisted"

    # Closing to partners keeps the seat and ends the waiting.
    status, _ = await lex.admin("DELETE", f"/sessions/{sid}/opening")
    assert status == 200
    await sync(lex, datev)
    assert (await state_of(datev, first["id"], token))["state"] == "confirmed"
    ended = await state_of(datev, second["id"], token)
    assert (ended["state"], ended["cancelled_by"]) == ("cancelled", "host")

    # The host cancels one reservation; the requester learns it.
    status, body = await lex.admin("POST", f"/reservations/incoming/{first['id']}/cancel")
    assert (status, body["state"], body["cancelled_by"]) == (200, "cancelled", "host")
    await sync(lex, datev)
    assert (await state_of(datev, first["id"], token))["cancelled_by"] == "host"


async def test_outgoing_view_and_privacy(make_node: NodeFactory, clock: ManualClock) -> None:
    lex, datev, token = await two_nodes(make_node)
    sid = await open_session(lex, clock, seats=2, email_required=True)
    await sync(lex, datev)
    body = {
        "attendee": {"ref": "emp-9", "display_name": "Jana Voss", "email": "jana@datev.example"}
    }
    status, made = await api(
        datev, "POST", f"/sessions/{sid}@{lex.node_id}/reservations", token, body
    )
    assert status == 202, made
    await sync(datev, lex)

    status, outgoing = await datev.admin("GET", "/reservations/outgoing?ref=emp-9")
    assert status == 200
    assert [(o["id"], o["state"], o["host"]) for o in outgoing["items"]] == [
        (made["id"], "confirmed", lex.node_id)
    ]
    status, exported = await lex.admin("GET", "/privacy/emp-9")
    assert exported["incoming"][0]["attendee"]["email"] == "jana@datev.example"
    status, exported = await datev.admin("GET", "/privacy/emp-9")
    assert exported["outgoing"][0]["attendee"]["email"] == "jana@datev.example"

    # Deleting on the requester cancels at the host, then forgets the person.
    status, deleted = await datev.admin("DELETE", "/privacy/emp-9")
    assert deleted["deleted"] == {"incoming": 0, "outgoing": 1}
    await sync(datev, lex)
    status, host_view = await lex.admin("GET", f"/sessions/{sid}/reservations")
    assert [r["state"] for r in host_view["reservations"]] == ["cancelled"]
    assert host_view["taken"] == 0
    status, deleted = await lex.admin("DELETE", "/privacy/emp-9")
    assert deleted["deleted"] == {"incoming": 1, "outgoing": 0}
    status, exported = await lex.admin("GET", "/privacy/emp-9")
    assert (exported["incoming"], exported["outgoing"]) == ([], [])
    status, outgoing = await datev.admin("GET", "/reservations/outgoing")
    assert outgoing["items"] == []
