"""Bad input at every door of a reservation: its own code, and nothing changes.

Real nodes on loopback: LEX hosts, DATEV requests, KIWI is another partner
of both, and STRANGER (where needed) is peered with nobody.  Every case
checks the HTTP status, the exact ``code`` of the JSON error body, that the
body holds no attendee data and no join link (SPEC.md §10.1), and that the
stored ledger is unchanged on both sides: the host's ``reservations_in``,
``sessions`` seat counts, ``partner_caps`` and ``outbox``, and the
requester's ``reservations_out`` and ``outbox``.

Refusals the host *decides* (an unknown session id, too many seats, a peer
outside the audience, a missing email) are answers with state ``rejected``,
not errors: they are stored as such, and no seat is taken.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Table, select

from node.clock import ManualClock
from node.db.tables import outbox, partner_caps, reservations_in, reservations_out, sessions
from protocol.httpsig import sign_request
from protocol.models import format_timestamp
from tests.node.conftest import NodeFactory, RunningNode, peer, sync
from tests.node.reservations.helpers import api, open_session, portal_token, reserve, state_of

REF, NAME, EMAIL = "emp-4711", "Zoë Geheimnis", "zoe.geheimnis@example.org"
JOIN = "https://meet.example.org/ki-prompting"
RESERVATIONS = "/protocol/v1/reservations"


@dataclass
class World:
    lex: RunningNode  # the host
    datev: RunningNode  # the requester
    kiwi: RunningNode  # another partner of both
    clock: ManualClock
    token: str  # DATEV's portal token
    sid: str  # open to all partners, 2 seats, DATEV capped at 2
    kiwi_only: str  # open to KIWI only
    email_sid: str  # needs an email
    local_sid: str  # DATEV's own session

    def entry(self, sid: str) -> str:
        return f"{sid}@{self.lex.node_id}"

    def put_url(self, reservation_id: str) -> str:
        return f"{self.lex.url}{RESERVATIONS}/{reservation_id}"

    def request(self, **changes: Any) -> dict[str, Any]:
        """A valid ``ReservationRequest`` from DATEV, changed by *changes*."""
        body: dict[str, Any] = {
            "type": "reservation_request",
            "id": str(uuid.uuid4()),
            "requester": self.datev.node_id,
            "session": {"origin": self.lex.node_id, "id": self.sid},
            "attendee": {"ref": REF, "display_name": NAME},
            "seats": 1,
            "hold": False,
            "issued_at": format_timestamp(self.clock.now()),
        }
        body.update(changes)
        return body


@pytest.fixture
async def world(make_node: NodeFactory, clock: ManualClock) -> World:
    lex, datev, kiwi = await make_node("lex"), await make_node("datev"), await make_node("kiwi")
    await peer(datev, lex)
    await peer(kiwi, lex)
    await peer(kiwi, datev)
    sid = await open_session(lex, clock, seats=2)
    status, body = await lex.admin("PUT", f"/sessions/{sid}/caps/{datev.node_id}", {"cap": 2})
    assert status == 200, body
    kiwi_only = await open_session(lex, clock, audience=[kiwi.node_id])
    email_sid = await open_session(lex, clock, email_required=True)
    local_sid = await open_session(datev, clock)
    await sync(lex, datev, kiwi)
    token = await portal_token(datev)
    return World(lex, datev, kiwi, clock, token, sid, kiwi_only, email_sid, local_sid)


@pytest.fixture
async def stranger(make_node: NodeFactory) -> RunningNode:
    """A node peered with nobody."""
    return await make_node("stranger")


# --- what must not change --------------------------------------------------------------


async def _rows(node: RunningNode, table: Table, *order: Any) -> list[dict[str, Any]]:
    async with node.node.db.read() as conn:
        return [dict(row._mapping) for row in await conn.execute(select(table).order_by(*order))]


async def ledger(world: World) -> dict[str, Any]:
    """Everything a reservation can touch, on both sides."""
    for node in (world.datev, world.kiwi, world.lex) * 2:  # work one side starts at the other
        await node.settle()
    lex, datev = world.lex, world.datev
    async with lex.node.db.read() as conn:
        seats = list(
            await conn.execute(
                select(sessions.c.id, sessions.c.open_seats, sessions.c.seats_taken).order_by(
                    sessions.c.id
                )
            )
        )
    return {
        "lex.reservations_in": await _rows(lex, reservations_in, reservations_in.c.seq),
        "lex.seats": [dict(row._mapping) for row in seats],
        "lex.partner_caps": await _rows(
            lex, partner_caps, partner_caps.c.session_id, partner_caps.c.requester
        ),
        "lex.outbox": await _rows(lex, outbox, outbox.c.id),
        "datev.reservations_out": await _rows(datev, reservations_out, reservations_out.c.id),
        "datev.outbox": await _rows(datev, outbox, outbox.c.id),
    }


def assert_private(text: str, *secrets: str) -> None:
    """An error body carries no attendee data and no join link (SPEC.md §10.1)."""
    readable = json.dumps(json.loads(text), ensure_ascii=False)  # unescaped non-ASCII
    for secret in (REF, NAME, EMAIL, JOIN, *secrets):
        for shown in (text, readable):
            assert secret not in shown, f"{secret!r} leaked into {readable}"


def attendee_data(body: Any) -> list[str]:
    """The attendee strings a request carried, to look for in its error."""
    attendee = body.get("attendee") if isinstance(body, dict) else None
    if not isinstance(attendee, dict):
        return []
    return [value for value in attendee.values() if isinstance(value, str) and len(value) > 3]


def assert_error(case: str, status: int, text: str, want_status: int, code: str) -> None:
    assert status == want_status, f"{case}: {status} {text}"
    body = json.loads(text)
    assert body["code"] == code, f"{case}: {text}"
    assert body["message"]


# --- sending --------------------------------------------------------------------------


async def raw_request(
    sender: RunningNode,
    method: str,
    url: str,
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
) -> tuple[int, str]:
    async with sender.http.request(method, url, data=body or None, headers=headers) as response:
        return response.status, (await response.read()).decode()


def signature(
    sender: RunningNode,
    method: str,
    url: str,
    body: bytes = b"",
    *,
    content_type: str = "application/json",
) -> list[tuple[str, str]]:
    assert sender.clock is not None
    return sign_request(
        method=method,
        url=url,
        body=body,
        key=sender.node.identity.signing_key,
        now=sender.clock.now(),
        content_type=content_type,
    )


async def signed(
    sender: RunningNode, method: str, url: str, body: Any = None, **options: Any
) -> tuple[int, str]:
    """A request signed with *sender*'s real key; *body* is JSON unless bytes."""
    data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    return await raw_request(
        sender, method, url, data, signature(sender, method, url, data, **options)
    )


# --- the portal -------------------------------------------------------------------------


def portal_body(**attendee: Any) -> dict[str, Any]:
    return {"attendee": {"ref": REF, "display_name": NAME, **attendee}}


# (case, session, body, status, code, field)
PORTAL_BODIES: list[tuple[str, str, Any, int, str, str | None]] = [
    ("unknown session", "nope", portal_body(), 404, "unknown_session", None),
    ("entry id without origin", "no-origin", portal_body(), 404, "unknown_session", None),
    ("own session", "local", portal_body(), 409, "local_session", None),
    ("zero seats", "open", {**portal_body(), "seats": 0}, 400, "invalid_seats", "seats"),
    ("negative seats", "open", {**portal_body(), "seats": -1}, 400, "invalid_seats", "seats"),
    ("too many seats", "open", {**portal_body(), "seats": 11}, 400, "invalid_seats", "seats"),
    ("seats as text", "open", {**portal_body(), "seats": "1"}, 400, "invalid_seats", "seats"),
    ("hold as text", "open", {**portal_body(), "hold": "yes"}, 400, "invalid_hold", "hold"),
    ("no attendee", "open", {"seats": 1}, 400, "attendee_missing", "attendee"),
    (
        "attendee ref missing",
        "open",
        {"attendee": {"display_name": NAME}},
        400,
        "attendee_ref_missing",
        "attendee.ref",
    ),
    ("empty ref", "open", portal_body(ref=""), 400, "invalid_attendee_ref", "attendee.ref"),
    (
        "ref with spaces",
        "open",
        portal_body(ref="Zoë Geheimnis"),
        400,
        "invalid_attendee_ref",
        "attendee.ref",
    ),
    (
        "over-long ref",
        "open",
        portal_body(ref="r" * 129),
        400,
        "invalid_attendee_ref",
        "attendee.ref",
    ),
    (
        "over-long name",
        "open",
        portal_body(display_name="Zoë " + "x" * 117),
        400,
        "invalid_display_name",
        "attendee.display_name",
    ),
    (
        "blank name",
        "open",
        portal_body(display_name="   "),
        400,
        "invalid_display_name",
        "attendee.display_name",
    ),
    ("email required, missing", "email", portal_body(), 400, "email_required", "attendee.email"),
    (
        "malformed email",
        "email",
        portal_body(email="zoe.geheimnis(at)example.org"),
        400,
        "invalid_email",
        "attendee.email",
    ),
    (
        "malformed email, not required",
        "open",
        portal_body(email="zoe.geheimnis@"),
        400,
        "invalid_email",
        "attendee.email",
    ),
    ("unknown field", "open", {**portal_body(), "note": "vegan"}, 400, "unknown_field", "note"),
    (
        "unknown attendee field",
        "open",
        portal_body(phone="0911 1234"),
        400,
        "unknown_field",
        "attendee.phone",
    ),
    ("body is a list", "open", [portal_body()], 400, "invalid_body", None),
]


async def test_portal_rejects_bad_requests(world: World) -> None:
    datev = world.datev
    entries = {
        "open": world.entry(world.sid),
        "email": world.entry(world.email_sid),
        "nope": world.entry("gibt-es-nicht"),
        "no-origin": world.sid,
        "local": f"{world.local_sid}@{datev.node_id}",
    }
    before = await ledger(world)
    for case, session, body, status, code, field in PORTAL_BODIES:
        got, answer = await api(
            datev, "POST", f"/sessions/{entries[session]}/reservations", world.token, body
        )
        text = json.dumps(answer)
        assert_error(case, got, text, status, code)
        assert answer.get("field") == field, f"{case}: {text}"
        assert_private(text, "vegan", *attendee_data(body))
        assert await ledger(world) == before, case


async def test_portal_rejects_bad_transport(world: World) -> None:
    datev = world.datev
    status, body = await datev.admin("POST", "/tokens", {"role": "calendar", "label": "Kalender"})
    assert status == 201, body
    calendar = body["token"]
    path = f"/api/v1/sessions/{world.entry(world.sid)}/reservations"
    good = json.dumps(portal_body()).encode()
    json_type = {"Content-Type": "application/json"}
    portal = world.token
    # (case, bearer token, headers, body, status, code)
    cases: list[tuple[str, str | None, dict[str, str], bytes, int, str]] = [
        ("no token", None, json_type, good, 401, "unauthenticated"),
        ("invalid token", "nope", json_type, good, 401, "unauthenticated"),
        ("calendar token", calendar, json_type, good, 403, "forbidden"),
        (
            "wrong content type",
            portal,
            {"Content-Type": "text/plain"},
            good,
            415,
            "unsupported_media_type",
        ),
        ("no content type", portal, {}, good, 415, "unsupported_media_type"),
        ("not JSON", portal, json_type, b'{"attendee": ', 400, "invalid_json"),
        ("duplicate member", portal, json_type, b'{"seats": 1, "seats": 2}', 400, "duplicate_key"),
        (
            "over-long idempotency key",
            portal,
            {**json_type, "Idempotency-Key": "k" * 201},
            good,
            400,
            "invalid_idempotency_key",
        ),
    ]
    before = await ledger(world)
    for case, token, headers, body, status, code in cases:
        sent = {**headers, **({"Authorization": f"Bearer {token}"} if token else {})}
        async with datev.http.post(f"{datev.url}{path}", data=body, headers=sent) as response:
            text = (await response.read()).decode()
            assert_error(case, response.status, text, status, code)
            assert response.content_type == "application/json", case
        assert_private(text)
        assert await ledger(world) == before, case


async def test_idempotency_key_reused_for_another_body(world: World) -> None:
    datev = world.datev
    path = f"/sessions/{world.entry(world.sid)}/reservations"
    key = {"Idempotency-Key": "intranet-req-0001"}
    status, first = await api(datev, "POST", path, world.token, portal_body(), key)
    assert status == 202, first
    await sync(world.datev, world.lex, world.kiwi)
    before = await ledger(world)
    status, again = await api(datev, "POST", path, world.token, portal_body(), key)
    assert (status, again["id"]) == (202, first["id"])
    assert await ledger(world) == before
    other = portal_body(ref="emp-0815", display_name="Max Muster")
    status, body = await api(datev, "POST", path, world.token, other, key)
    assert_error("same key, other body", status, json.dumps(body), 409, "idempotency_conflict")
    assert body["field"] == "Idempotency-Key"
    assert_private(json.dumps(body), "emp-0815", "Max Muster")
    assert await ledger(world) == before


async def test_portal_unknown_reservation(world: World) -> None:
    unknown = str(uuid.uuid4())
    cases = [
        ("GET", f"/reservations/{unknown}"),
        ("DELETE", f"/reservations/{unknown}"),
        ("POST", f"/reservations/{unknown}/confirm"),
        ("GET", f"/reservations/{unknown}.ics"),
        ("GET", "/reservations/kein-uuid"),
        ("DELETE", "/reservations/kein-uuid"),
    ]
    before = await ledger(world)
    for method, path in cases:
        status, body = await api(world.datev, method, path, world.token)
        assert_error(f"{method} {path}", status, json.dumps(body), 404, "unknown_reservation")
        assert await ledger(world) == before, path


async def test_host_refusals_are_answers_and_take_no_seat(world: World) -> None:
    lex, datev = world.lex, world.datev
    # (case, request changes, reason)
    cases: list[tuple[str, dict[str, Any], str]] = [
        (
            "unknown session id",
            {"session": {"origin": lex.node_id, "id": "gibt-es-nicht"}},
            "unknown_session",
        ),
        ("more seats than allowed per request", {"seats": 3}, "too_many_seats"),
        (
            "requester outside the audience",
            {"session": {"origin": lex.node_id, "id": world.kiwi_only}},
            "not_in_audience",
        ),
        (
            "email required but missing",
            {"session": {"origin": lex.node_id, "id": world.email_sid}},
            "email_required",
        ),
    ]
    for case, changes, reason in cases:
        before = await ledger(world)
        request = world.request(**changes)
        status, text = await signed(datev, "PUT", world.put_url(request["id"]), request)
        assert status == 201, f"{case}: {text}"
        answer = json.loads(text)
        assert (answer["state"], answer["reason"], answer["version"]) == (
            "rejected",
            reason,
            1,
        ), case
        assert "join_url" not in answer
        after = await ledger(world)
        # Stored as a rejected reservation; seats, caps and notices untouched.
        new = after["lex.reservations_in"][len(before["lex.reservations_in"]) :]
        assert [(row["id"], row["state"], row["reason"]) for row in new] == [
            (request["id"], "rejected", reason)
        ], case
        for name in ("lex.seats", "lex.partner_caps", "lex.outbox", "datev.reservations_out"):
            assert after[name] == before[name], (case, name)
        # Asking again repeats the same answer and changes nothing more.
        status, text = await signed(datev, "PUT", world.put_url(request["id"]), request)
        assert status == 200, text
        again = json.loads(text)
        assert {**again, "issued_at": None} == {**answer, "issued_at": None}
        assert await ledger(world) == after, case

    # Through the portal: too many seats for this host comes back as rejected.
    token = world.token
    before_seats = (await ledger(world))["lex.seats"]
    asked = await reserve(datev, lex, world.sid, token, "emp-9", seats=3)
    await sync(datev, lex)
    seen = await state_of(datev, asked["id"], token)
    assert (seen["state"], seen["reason"]) == ("rejected", "too_many_seats")
    assert (await ledger(world))["lex.seats"] == before_seats


def _put_cases(world: World) -> list[tuple[str, str, dict[str, Any] | bytes, int, str, str | None]]:
    """(case, path uuid, body, status, code, field) of PUTs signed by DATEV."""
    kiwi = world.kiwi
    rid = str(uuid.uuid4())

    def body(**changes: Any) -> dict[str, Any]:
        return world.request(id=rid, **changes)

    def attendee(**fields: Any) -> dict[str, Any]:
        return body(attendee={"ref": REF, "display_name": NAME, **fields})

    missing_ref = body(attendee={"display_name": NAME})
    return [
        ("id differs from path", rid, world.request(), 400, "schema_violation", "id"),
        (
            "requester is not the signer",
            rid,
            body(requester=kiwi.node_id),
            401,
            "origin_mismatch",
            "requester",
        ),
        (
            "session of another origin",
            rid,
            body(session={"origin": kiwi.node_id, "id": world.sid}),
            400,
            "schema_violation",
            "session.origin",
        ),
        ("zero seats", rid, body(seats=0), 400, "schema_violation", "seats"),
        ("negative seats", rid, body(seats=-2), 400, "schema_violation", "seats"),
        ("more than ten seats", rid, body(seats=11), 400, "schema_violation", "seats"),
        ("attendee ref missing", rid, missing_ref, 400, "schema_violation", "attendee.ref"),
        (
            "attendee missing",
            rid,
            {k: v for k, v in body().items() if k != "attendee"},
            400,
            "schema_violation",
            "attendee",
        ),
        (
            "over-long name",
            rid,
            attendee(display_name="Zoë " + "x" * 117),
            400,
            "schema_violation",
            "attendee.display_name",
        ),
        (
            "malformed email",
            rid,
            attendee(email="zoe.geheimnis(at)example.org"),
            400,
            "schema_violation",
            "attendee.email",
        ),
        ("unknown field", rid, body(note="vegan"), 400, "unknown_field", "note"),
        ("wrong type", rid, body(type="reservation_answer"), 400, "schema_violation", "type"),
        ("not JSON", rid, b'{"type": "reservation_request", ', 400, "invalid_json", None),
        ("a float", rid, json.dumps(body(seats=1.0)).encode(), 400, "float_not_allowed", None),
        ("path is not a uuid", "kein-uuid", body(), 404, "unknown_reservation", None),
        ("upper-case uuid in path", rid.upper(), body(), 404, "unknown_reservation", None),
    ]


async def test_protocol_put_rejects_bad_requests(world: World) -> None:
    datev = world.datev
    before = await ledger(world)
    for case, path_id, body, status, code, field in _put_cases(world):
        got, text = await signed(datev, "PUT", world.put_url(path_id), body)
        assert_error(case, got, text, status, code)
        assert json.loads(text).get("field") == field, f"{case}: {text}"
        assert_private(text, "vegan", *attendee_data(body))
        assert await ledger(world) == before, case

    # Not JSON as media type, signed as such: 415.
    request = world.request()
    got, text = await signed(
        datev, "PUT", world.put_url(request["id"]), request, content_type="text/plain"
    )
    assert_error("text/plain", got, text, 415, "unsupported_media_type")
    assert_private(text)
    assert await ledger(world) == before


async def test_protocol_put_rejects_unsigned_replayed_and_foreign(
    world: World, stranger: RunningNode
) -> None:
    datev, kiwi = world.datev, world.kiwi
    request = world.request()
    url = world.put_url(request["id"])
    data = json.dumps(request).encode()
    before = await ledger(world)

    # Unsigned, signed over other bytes, signed for another URL, by a stranger.
    plain = [("Content-Type", "application/json")]
    other_url = world.put_url(str(uuid.uuid4()))
    tampered = json.dumps({**request, "seats": 2}).encode()
    cases: list[tuple[str, RunningNode, bytes, list[tuple[str, str]], int, str]] = [
        ("unsigned", datev, data, plain, 401, "missing_signature"),
        (
            "body changed after signing",
            datev,
            tampered,
            signature(datev, "PUT", url, data),
            400,
            "digest_mismatch",
        ),
        (
            "signed for another URL",
            datev,
            data,
            signature(datev, "PUT", other_url, data),
            401,
            "bad_signature",
        ),
        (
            "signed by a node that is no peer",
            stranger,
            data,
            signature(stranger, "PUT", url, data),
            401,
            "unknown_key",
        ),
    ]
    for case, sender, body, headers, status, code in cases:
        got, text = await raw_request(sender, "PUT", url, body, headers)
        assert_error(case, got, text, status, code)
        assert_private(text)
        assert await ledger(world) == before, case

    # The genuine request, then its exact replay.
    headers = signature(datev, "PUT", url, data)
    status, text = await raw_request(datev, "PUT", url, data, headers)
    assert status == 201, text
    assert json.loads(text)["state"] == "confirmed"
    booked = await ledger(world)
    status, text = await raw_request(datev, "PUT", url, data, headers)
    assert_error("replayed", status, text, 401, "replayed_nonce")
    assert_private(text)
    assert await ledger(world) == booked

    # The same uuid with another body, from the same or another partner: 409.
    for case, sender, changed in [
        ("other attendee", datev, {**request, "attendee": {"ref": "emp-2", "display_name": "Max"}}),
        ("other seats", datev, {**request, "seats": 2}),
        ("same body from another partner", kiwi, {**request, "requester": kiwi.node_id}),
    ]:
        got, text = await signed(sender, "PUT", url, changed)
        assert_error(case, got, text, 409, "reservation_conflict")
        assert_private(text, "emp-2", "Max")
        assert await ledger(world) == booked, case

    # A retry of the very same request (new signature, new issued_at) is fine.
    world.clock.advance(seconds=1)
    retry = {**request, "issued_at": format_timestamp(world.clock.now())}
    status, text = await signed(datev, "PUT", url, retry)
    assert status == 200, text
    assert await ledger(world) == booked


async def test_reading_or_cancelling_what_is_not_yours(world: World) -> None:
    datev, kiwi = world.datev, world.kiwi
    request = world.request()
    mine = world.put_url(request["id"])
    status, text = await signed(datev, "PUT", mine, request)
    assert status == 201, text
    unknown = world.put_url(str(uuid.uuid4()))
    # (case, sender, method, url)
    cases: list[tuple[str, RunningNode, str, str]] = [
        ("GET unknown", datev, "GET", unknown),
        ("DELETE unknown", datev, "DELETE", unknown),
        ("confirm unknown", datev, "POST", unknown + "/confirm"),
        ("GET another partner's", kiwi, "GET", mine),
        ("DELETE another partner's", kiwi, "DELETE", mine),
        ("confirm another partner's", kiwi, "POST", mine + "/confirm"),
        ("GET a path that is no uuid", datev, "GET", world.put_url("kein-uuid")),
    ]
    before = await ledger(world)
    for case, sender, method, url in cases:
        got, text = await signed(sender, method, url)
        assert_error(case, got, text, 404, "unknown_reservation")
        assert_private(text)
        assert await ledger(world) == before, case
    status, text = await signed(datev, "GET", mine)
    assert (status, json.loads(text)["state"]) == (200, "confirmed")


# --- notices to the requester's inbox --------------------------------------------------------


async def test_inbox_rejects_bad_reservation_notices(world: World, stranger: RunningNode) -> None:
    lex, datev, kiwi = world.lex, world.datev, world.kiwi
    # A held reservation, then confirmed: version 2 at the requester.
    held = await reserve(datev, lex, world.sid, world.token, REF, hold=True)
    await sync(datev, lex)
    assert (await state_of(datev, held["id"], world.token))["state"] == "held"
    status, _ = await api(datev, "POST", f"/reservations/{held['id']}/confirm", world.token)
    assert status == 202
    await sync(datev, lex)
    stored = await state_of(datev, held["id"], world.token)
    assert (stored["state"], stored["version"]) == ("confirmed", 2)
    inbox = f"{datev.url}/protocol/v1/inbox"

    def notice(sender: str = lex.node_id, **answer: Any) -> dict[str, Any]:
        body = {
            "type": "reservation_answer",
            "id": held["id"],
            "session": {"origin": lex.node_id, "id": world.sid},
            "version": 2,
            "issued_at": format_timestamp(world.clock.now()),
            "state": "confirmed",
            "seats": 1,
            "join_url": JOIN,
        }
        body.update(answer)
        return {
            "type": "reservation_updated",
            "sender": sender,
            "issued_at": format_timestamp(world.clock.now()),
            "answer": body,
        }

    def cancelled(version: int) -> dict[str, Any]:
        sent = notice(version=version, state="cancelled", cancelled_by="host")
        del sent["answer"]["seats"], sent["answer"]["join_url"]
        return sent

    # (case, signer, body, status, code)
    cases: list[tuple[str, RunningNode, dict[str, Any], int, str]] = [
        ("never made", lex, notice(id=str(uuid.uuid4())), 404, "unknown_reservation"),
        (
            "another session",
            lex,
            notice(session={"origin": lex.node_id, "id": world.kiwi_only}),
            404,
            "unknown_reservation",
        ),
        (
            "made with another host",
            kiwi,
            notice(kiwi.node_id, session={"origin": kiwi.node_id, "id": world.sid}),
            404,
            "unknown_reservation",
        ),
        ("older version", lex, cancelled(1), 409, "stale_version"),
        ("sender is not the signer", lex, notice(kiwi.node_id), 401, "origin_mismatch"),
        (
            "session of another origin",
            lex,
            notice(session={"origin": kiwi.node_id, "id": world.sid}),
            401,
            "origin_mismatch",
        ),
        (
            "signed by no peer",
            stranger,
            notice(stranger.node_id, session={"origin": stranger.node_id, "id": world.sid}),
            401,
            "unknown_key",
        ),
        ("unknown member", lex, {**notice(), "note": "x"}, 400, "unknown_field"),
    ]
    before = await ledger(world)
    for case, signer, body, status, code in cases:
        got, text = await signed(signer, "POST", inbox, body)
        assert_error(case, got, text, status, code)
        assert_private(text)
        assert await ledger(world) == before, case

    # Unsigned: 401, nothing changes.
    data = json.dumps(notice()).encode()
    got, text = await raw_request(lex, "POST", inbox, data, [("Content-Type", "application/json")])
    assert_error("unsigned", got, text, 401, "missing_signature")
    assert await ledger(world) == before
    # Signed, but not declared as JSON: 415.
    got, text = await signed(lex, "POST", inbox, cancelled(3), content_type="text/plain")
    assert_error("text/plain", got, text, 415, "unsupported_media_type")
    assert await ledger(world) == before

    # The same version again, even with other content, is ignored (202).
    same = json.dumps(cancelled(2)).encode()
    headers = signature(lex, "POST", inbox, same)
    status, text = await raw_request(lex, "POST", inbox, same, headers)
    assert (status, text) == (202, "")
    assert await ledger(world) == before
    status, text = await raw_request(lex, "POST", inbox, same, headers)
    assert_error("replayed notice", status, text, 401, "replayed_nonce")
    assert await ledger(world) == before
    assert (await state_of(datev, held["id"], world.token))["state"] == "confirmed"

    # A newer version is applied: the cases above failed for their own reasons.
    status, text = await signed(lex, "POST", inbox, cancelled(3))
    assert (status, text) == (202, "")
    seen = await state_of(datev, held["id"], world.token)
    assert (seen["state"], seen["version"], seen["cancelled_by"]) == ("cancelled", 3, "host")
