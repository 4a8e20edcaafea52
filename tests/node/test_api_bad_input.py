"""Bad input at the portal and admin APIs that used to crash the node (issue 7).

Each case was found by fuzzing the node with its OpenAPI document
(``test_schemathesis.py``) or by probing what the fuzzer cannot send (raw
header bytes).  Before the fixes each answered 500, stored half of the
request on one engine, or broke the node's descriptor.  Now each gets a
clear 4xx with the JSON error body, and the tests check that nothing was
stored.  Both engines: several of these failed only on PostgreSQL (NUL
characters, ids past 32 bits).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from node.clock import ManualClock
from node.identity import MAX_OLD_KEYS
from protocol.keyring import verify_new_descriptor
from tests.node.conftest import NodeFactory, RunningNode, peer, sync
from tests.node.reservations.helpers import api, open_session, portal_token
from tests.node.test_sessions_api import session_body

ERROR_SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "error.schema.json").read_text("utf-8")
)
NUL_CALENDAR = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:nul\x00@example.org\r\n"
    b"DTSTART:20990101T100000Z\r\nDURATION:PT1H\r\nSUMMARY:Impuls\x00\r\n"
    b"ORGANIZER;CN=Anna:mailto:anna@example.org\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def assert_error(
    status: int, body: Any, expected: int, code: str, field: str | None = None
) -> None:
    assert (status, body["code"]) == (expected, code), body
    jsonschema.validate(body, ERROR_SCHEMA)
    if field is not None:
        assert body.get("field") == field, body


async def portal(node: RunningNode, path: str, token: str) -> tuple[int, Any]:
    return await api(node, "GET", path, token)


async def raw_request(node: RunningNode, head: bytes, body: bytes = b"") -> tuple[int, Any]:
    """Send bytes aiohttp's client would refuse to send (non-UTF-8 header values)."""
    host, port = node.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head + f"Content-Length: {len(body)}\r\n".encode() + b"\r\n" + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    status_line, _, rest = answer.partition(b"\r\n")
    payload = rest.partition(b"\r\n\r\n")[2]
    return int(status_line.split()[1]), json.loads(payload)


async def stored(node: RunningNode, token: str) -> dict[str, Any]:
    """What the requests below could have changed."""
    sessions = await node.admin("GET", "/sessions")
    tokens = await node.admin("GET", "/tokens")
    sources = await node.admin("GET", "/imports/sources")
    dead = await node.admin("GET", "/outbox")
    node_info = await node.admin("GET", "/node")
    reservations = await portal(node, "/reservations", token)
    return {
        "sessions": sessions,
        "tokens": tokens,
        "sources": sources,
        "dead": dead,
        "node": node_info,
        "reservations": reservations,
    }


@pytest.fixture
async def lex(make_node: NodeFactory, clock: ManualClock) -> tuple[RunningNode, RunningNode, str]:
    """LEX (under test) peered with DATEV, whose open session is in LEX's catalogue."""
    lex, datev = await make_node("lex"), await make_node("datev")
    await peer(lex, datev)
    sid = await open_session(datev, clock)
    await sync(lex, datev)
    return lex, datev, f"{sid}@{datev.node_id}"


async def test_ids_beyond_the_database_integers(
    lex: tuple[RunningNode, RunningNode, str],
) -> None:
    node, _, _ = lex
    token = await portal_token(node)
    before = await stored(node, token)
    for raw_id in ("2147483648", "9" * 30):  # past PostgreSQL's and SQLite's integers
        for method, path in [
            ("DELETE", f"/tokens/{raw_id}"),
            ("DELETE", f"/imports/sources/{raw_id}"),
            ("POST", f"/outbox/{raw_id}/retry"),
            ("DELETE", f"/outbox/{raw_id}"),
        ]:
            status, body = await node.admin(method, path)
            assert_error(status, body, 404, "not_found")
    # "²" and "١" are digits to str.isdigit, but no id.
    for digit in ("²", "١"):
        assert_error(*(await node.admin("DELETE", f"/tokens/{digit}")), 400, "invalid_path")
        assert_error(*(await node.admin("DELETE", f"/outbox/{digit}")), 404, "not_found")
        assert_error(*(await node.admin("DELETE", f"/imports/sources/{digit}")), 404, "not_found")
    assert await stored(node, token) == before


async def test_limits_must_be_ascii_numbers(lex: tuple[RunningNode, RunningNode, str]) -> None:
    node, _, _ = lex
    token = await portal_token(node)
    for query in ("limit=²", "limit=" + "9" * 5000, "limit=0"):
        for path in ("/catalogue", "/catalogue.ics"):
            assert_error(*(await portal(node, f"{path}?{query}", token)), 400, "invalid_query")
    for query in ("limit=²", "offset=²", "offset=" + "9" * 5000):
        assert_error(*(await portal(node, f"/reservations?{query}", token)), 400, "invalid_query")


async def test_dates_past_what_the_calendar_can_hold(
    lex: tuple[RunningNode, RunningNode, str], clock: ManualClock
) -> None:
    node, _, _ = lex
    token = await portal_token(node)
    for query, field in [
        ("from=0001-01-01", "from"),
        ("to=9999-12-31T23:59:59-05:00", "to"),
        ("from=1899-12-31T23:00:00%2B00:00", "from"),
    ]:
        for path in ("/catalogue", "/catalogue.ics"):
            status, body = await portal(node, f"{path}?{query}", token)
            assert_error(status, body, 400, "invalid_query", field)
    status, _ = await portal(node, "/catalogue?from=2099-01-01&to=9000-12-31", token)
    assert status == 200
    before = await stored(node, token)
    for start in ("9999-12-31T23:00:00-05:00", "9999-12-31T23:00:00", "0001-01-01T00:00:00+05:00"):
        status, body = await node.admin("POST", "/sessions", session_body(clock, start=start))
        assert_error(status, body, 400, "invalid_field", "start")
    assert await stored(node, token) == before


async def test_error_bodies_stay_within_the_error_schema(
    lex: tuple[RunningNode, RunningNode, str],
) -> None:
    node, _, _ = lex
    token = await portal_token(node)
    name = "x" * 300  # echoed as field (at most 200) and in the message (at most 1000)
    status, body = await node.admin("GET", f"/reservations/outgoing?{name}=1")
    assert_error(status, body, 400, "invalid_query")
    assert body["field"].startswith("xxx")
    many = "&".join(f"{name}{i}=1" for i in range(5))
    assert_error(*(await portal(node, f"/catalogue?{many}", token)), 400, "invalid_query")
    assert_error(*(await node.admin("GET", f"/sessions?{many}")), 400, "invalid_query")


async def test_nul_characters_are_refused_before_anything_is_stored(
    lex: tuple[RunningNode, RunningNode, str], clock: ManualClock
) -> None:
    node, _, entry = lex
    token = await portal_token(node)
    sid = (await node.admin("POST", "/sessions", session_body(clock)))[1]["id"]
    before = await stored(node, token)
    checks: list[tuple[tuple[int, Any], str, str | None]] = [
        (await node.admin("GET", "/sessions?q=a%00b"), "invalid_query", "q"),
        (await node.admin("GET", "/sessions/a%00b"), "invalid_path", None),
        (await node.admin("GET", "/peers/a%00b.example"), "invalid_path", None),
        (await node.admin("GET", "/privacy/emp%00"), "invalid_path", None),
        (await portal(node, "/reservations?ref=emp%00", token), "invalid_query", "ref"),
        (await portal(node, "/catalogue?q=%00", token), "invalid_query", "q"),
        (await portal(node, "/sessions/a%00@b.example", token), "invalid_path", None),
        (
            await node.admin("POST", "/sessions", session_body(clock, title="KI\u0000")),
            "invalid_body",
            "title",
        ),
        (
            await node.admin("PATCH", f"/sessions/{sid}", {"tags": ["a\u0000"]}),
            "invalid_body",
            "tags.0",
        ),
        (
            await node.admin(
                "PUT", f"/sessions/{sid}/opening", {"seats": 1, "audience": ["\u0000"]}
            ),
            "invalid_body",
            "audience.0",
        ),
        (
            await node.admin("POST", "/tokens", {"role": "portal", "label": "\u0000"}),
            "invalid_body",
            "label",
        ),
        (
            await api(
                node,
                "POST",
                f"/sessions/{entry}/reservations",
                token,
                {"attendee": {"ref": "emp-1", "display_name": "Zoë\u0000"}},
            ),
            "invalid_body",
            "attendee.display_name",
        ),
        (
            await node.admin(
                "POST", "/imports", raw=NUL_CALENDAR, headers={"Content-Type": "text/calendar"}
            ),
            "bad_encoding",
            None,
        ),
    ]
    for (status, body), code, field in checks:
        assert_error(status, body, 400, code, field)
    assert await stored(node, token) == before


async def test_header_bytes_that_are_not_utf8(lex: tuple[RunningNode, RunningNode, str]) -> None:
    node, _, entry = lex
    token = await portal_token(node)
    host = node.url.removeprefix("http://").encode()
    before = await stored(node, token)
    for path in (b"/admin/api/v1/node", b"/api/v1/catalogue", b"/api/v1/reservations"):
        status, body = await raw_request(
            node,
            b"GET " + path + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n"
            b"Authorization: Bearer os_admin_\xe4\xff\r\n",
        )
        assert_error(status, body, 401, "unauthenticated")
    request = json.dumps({"attendee": {"ref": "emp-1", "display_name": "Zoë"}}).encode()
    for key in (b"\xe4\xff", b"two words", b"k" * 201):
        status, body = await raw_request(
            node,
            b"POST /api/v1/sessions/" + entry.encode() + b"/reservations HTTP/1.1\r\n"
            b"Host: " + host + b"\r\nConnection: close\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\nIdempotency-Key: " + key + b"\r\n",
            request,
        )
        assert_error(status, body, 400, "invalid_idempotency_key", "Idempotency-Key")
    assert await stored(node, token) == before


async def test_key_rotation_stops_before_the_descriptor_breaks(
    make_node: NodeFactory, clock: ManualClock
) -> None:
    lex = await make_node("lex")
    for _ in range(MAX_OLD_KEYS):
        status, body = await lex.admin("POST", "/keys/rotate")
        assert status == 200, body
    _, current = await lex.admin("GET", "/node")
    status, body = await lex.admin("POST", "/keys/rotate")
    assert_error(status, body, 409, "too_many_old_keys")
    assert (await lex.admin("GET", "/node"))[1] == current
    async with lex.http.get(f"{lex.url}/.well-known/openseats") as response:
        descriptor = verify_new_descriptor(await response.json(), now=clock.now())
    assert len(descriptor.old_keys) == MAX_OLD_KEYS
    # Once old keys leave their grace period, rotating works again.
    clock.advance(days=lex.settings.old_key_grace_days, seconds=1)
    status, body = await lex.admin("POST", "/keys/rotate")
    assert status == 200, body


async def test_an_audience_names_nodes(
    lex: tuple[RunningNode, RunningNode, str], clock: ManualClock
) -> None:
    node, datev, _ = lex
    sid = (await node.admin("POST", "/sessions", session_body(clock)))[1]["id"]
    before = await node.admin("GET", f"/sessions/{sid}")
    for audience in (["not a node id"], [datev.node_id] * 501):
        status, body = await node.admin(
            "PUT", f"/sessions/{sid}/opening", {"seats": 2, "audience": audience}
        )
        assert_error(status, body, 400, "invalid_field")
        assert body["field"].startswith("audience"), body
    assert await node.admin("GET", f"/sessions/{sid}") == before
    status, body = await node.admin(
        "PUT", f"/sessions/{sid}/opening", {"seats": 2, "audience": [datev.node_id]}
    )
    assert status == 200, body
