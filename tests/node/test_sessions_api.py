"""Admin API for local sessions: the happy path and every class of bad input.

Each bad-input test also checks that nothing stored changed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from node.clock import ManualClock
from tests.node.conftest import NodeFactory, RunningNode


def session_body(clock: ManualClock, **changes: Any) -> dict[str, Any]:
    body = {
        "title": "KI-Prompting für Einsteiger",
        "description": "Ein 60-minütiger Impuls mit Beispielen aus dem Alltag.",
        "format": "impulse",
        "languages": ["de"],
        "start": (clock.now() + timedelta(days=10)).isoformat(),
        "timezone": "Europe/Berlin",
        "duration_minutes": 60,
        "host_name": "Anna Schröder",
        "tags": ["KI", "Prompting"],
        "join_url": "https://meet.example.org/ki-prompting",
    }
    body.update(changes)
    return body


async def snapshot(node: RunningNode) -> Any:
    status, body = await node.admin("GET", "/sessions")
    assert status == 200
    return body


async def test_create_open_update_close_cancel(make_node: NodeFactory, clock: ManualClock) -> None:
    lex = await make_node("lex")
    status, created = await lex.admin("POST", "/sessions", session_body(clock))
    assert status == 201, created
    sid = created["id"]
    assert created["opening"] is None
    assert created["announcement_version"] == 0

    status, opened = await lex.admin(
        "PUT",
        f"/sessions/{sid}/opening",
        {"seats": 5, "audience": "all", "registration_mode": "approval"},
    )
    assert status == 200, opened
    assert opened["opening"]["seats"] == 5
    assert opened["opening"]["registration_mode"] == "approval"
    assert opened["announcement_version"] == 1

    status, updated = await lex.admin("PATCH", f"/sessions/{sid}", {"title": "KI-Prompting II"})
    assert (status, updated["title"], updated["announcement_version"]) == (
        200,
        "KI-Prompting II",
        2,
    )

    new_start = (clock.now() + timedelta(days=11)).isoformat()
    status, moved = await lex.admin("PATCH", f"/sessions/{sid}", {"start": new_start})
    assert (moved["status"], moved["announcement_version"]) == ("rescheduled", 3)

    status, closed = await lex.admin("DELETE", f"/sessions/{sid}/opening")
    assert (status, closed["opening"]) == (200, None)

    status, cancelled = await lex.admin("POST", f"/sessions/{sid}/cancel")
    assert (status, cancelled["status"]) == (200, "cancelled")
    status, body = await lex.admin("PUT", f"/sessions/{sid}/opening", {"seats": 2})
    assert (status, body["code"]) == (409, "session_cancelled")

    status, _ = await lex.admin("DELETE", f"/sessions/{sid}")
    assert status == 204
    assert (await lex.admin("GET", f"/sessions/{sid}"))[0] == 404


async def test_search(make_node: NodeFactory, clock: ManualClock) -> None:
    lex = await make_node("lex")
    await lex.admin("POST", "/sessions", session_body(clock))
    await lex.admin("POST", "/sessions", session_body(clock, title="AMA: Agiles Arbeiten"))
    _, body = await lex.admin("GET", "/sessions?q=agil")
    assert [s["title"] for s in body["sessions"]] == ["AMA: Agiles Arbeiten"]


BAD_SESSIONS = {
    "missing_title": ({"title": None}, "title"),
    "blank_title": ({"title": "   "}, "title"),
    "start_in_past": ({"start": "2020-01-01T10:00:00+01:00"}, None),
    "bad_date": ({"start": "3. Dezember"}, "start"),
    "duration_zero": ({"duration_minutes": 0}, "duration_minutes"),
    "duration_over_8h": ({"duration_minutes": 481}, "duration_minutes"),
    "duration_float": ({"duration_minutes": 60.5}, None),
    "unknown_timezone": ({"timezone": "Europe/Bärlin"}, None),
    "unknown_format": ({"format": "party"}, "format"),
    "unknown_field": ({"audience_secret": 1}, "audience_secret"),
    "bad_join_url": ({"join_url": "javascript:alert(1)"}, "join_url"),
    "huge_integer": ({"duration_minutes": 2**60}, None),
}


@pytest.mark.parametrize("case", sorted(BAD_SESSIONS))
async def test_bad_session_bodies(make_node: NodeFactory, clock: ManualClock, case: str) -> None:
    lex = await make_node("lex")
    changes, field = BAD_SESSIONS[case]
    body = session_body(clock, **changes)
    if changes.get("title", "") is None:
        del body["title"]
    before = await snapshot(lex)
    status, answer = await lex.admin("POST", "/sessions", body)
    assert status == 400, answer
    assert answer["code"]
    assert answer["message"]
    if field:
        assert answer["field"].startswith(field)
    assert await snapshot(lex) == before


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "code"),
    [
        (b'{"title": "KI"', "application/json", 400, "invalid_json"),
        (b'{"title": "a", "title": "b"}', "application/json", 400, "duplicate_key"),
        (b"\xff\xfe", "application/json", 400, "invalid_encoding"),
        (b"[1, 2]", "application/json", 400, "invalid_body"),
        (b"title=KI", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
)
async def test_malformed_bodies(
    make_node: NodeFactory, raw: bytes, content_type: str, status: int, code: str
) -> None:
    lex = await make_node("lex")
    before = await snapshot(lex)
    got, body = await lex.admin(
        "POST", "/sessions", raw=raw, headers={"Content-Type": content_type}
    )
    assert (got, body["code"]) == (status, code)
    assert await snapshot(lex) == before


async def test_oversized_body(make_node: NodeFactory, clock: ManualClock) -> None:
    lex = await make_node("lex", max_body_bytes=4096)
    before = await snapshot(lex)
    body = session_body(clock, description="x" * 5000)
    status, answer = await lex.admin("POST", "/sessions", body)
    assert (status, answer["code"]) == (413, "payload_too_large")
    assert await snapshot(lex) == before


@pytest.mark.parametrize(
    ("opening", "code"),
    [
        ({"seats": 0}, "invalid_field"),
        ({"seats": -3}, "invalid_field"),
        ({"seats": 1_000_000}, "invalid_field"),
        ({"seats": "fünf"}, "invalid_field"),
        ({"seats": 2, "audience": []}, "invalid_field"),
        ({"seats": 2, "audience": ["nobody.example.org"]}, "unknown_peer"),
        ({"seats": 2, "registration_mode": "lottery"}, "invalid_field"),
    ],
)
async def test_bad_openings(
    make_node: NodeFactory, clock: ManualClock, opening: dict[str, Any], code: str
) -> None:
    lex = await make_node("lex")
    _, created = await lex.admin("POST", "/sessions", session_body(clock))
    before = await snapshot(lex)
    status, body = await lex.admin("PUT", f"/sessions/{created['id']}/opening", opening)
    assert (status, body["code"]) == (400, code), body
    assert await snapshot(lex) == before


async def test_unknown_session(make_node: NodeFactory) -> None:
    lex = await make_node("lex")
    for method, path in [
        ("GET", "/sessions/nope"),
        ("POST", "/sessions/nope/cancel"),
        ("DELETE", "/sessions/nope/opening"),
    ]:
        status, body = await lex.admin(method, path)
        assert (status, body["code"]) == (404, "not_found")


@pytest.mark.parametrize("token", [None, "os_admin_forged", "portal"])
async def test_admin_api_needs_an_admin_token(make_node: NodeFactory, token: str | None) -> None:
    lex = await make_node("lex")
    if token == "portal":
        _, created = await lex.admin("POST", "/tokens", {"role": "portal"})
        token = created["token"]
    headers = {"Authorization": f"Bearer {token}"} if token else {"Authorization": ""}
    status, body = await lex.admin("GET", "/sessions", headers=headers)
    assert status == (403 if token and token.startswith("os_portal") else 401)
    assert body["code"] in ("unauthenticated", "forbidden")


async def test_unknown_query_parameters(make_node: NodeFactory) -> None:
    lex = await make_node("lex")
    for query in ("?limit=0", "?limit=abc", "?colour=red"):
        status, body = await lex.admin("GET", f"/sessions{query}")
        assert (status, body["code"]) == (400, "invalid_query")
