"""Request verification on a real node: every kind of bad request signature.

Each request is sent over loopback with aiohttp, exactly as a peer would,
but with one thing wrong.  The answer must be the spec's error body with
the right status and code, and no nonce may be stored for a refused request.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import aiohttp
import pytest

from node.clock import ManualClock
from protocol.httpsig import sign_request
from protocol.keys import SigningKey
from tests.node.conftest import NodeFactory, RunningNode, peer

Headers = list[tuple[str, str]]


async def send(
    target: RunningNode, method: str, path: str, headers: Headers, body: bytes = b""
) -> tuple[int, dict[str, str], dict[str, object]]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, target.url + path, headers=headers, data=body or None) as response,
    ):
        payload = await response.read()
        return response.status, dict(response.headers), json.loads(payload) if payload else {}


def signed(
    reader: RunningNode,
    target: RunningNode,
    path: str,
    clock: ManualClock,
    *,
    method: str = "GET",
    body: bytes = b"",
    key: SigningKey | None = None,
    **kwargs: object,
) -> Headers:
    return sign_request(
        method=method,
        url=target.url + path,
        body=body,
        key=key or reader.node.identity.signing_key,
        now=clock.now(),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
async def pair(make_node: NodeFactory) -> tuple[RunningNode, RunningNode]:
    lex, datev = await make_node("lex"), await make_node("datev")
    await peer(datev, lex)
    return lex, datev


FEED = "/protocol/v1/feed"


async def test_good_request_passes(
    pair: tuple[RunningNode, RunningNode], clock: ManualClock
) -> None:
    lex, datev = pair
    status, _, body = await send(lex, "GET", FEED, signed(datev, lex, FEED, clock))
    assert status == 200, body


async def test_unsigned(pair: tuple[RunningNode, RunningNode]) -> None:
    lex, _ = pair
    status, _, body = await send(lex, "GET", FEED, [])
    assert (status, body["code"]) == (401, "missing_signature")


async def test_replayed_nonce(pair: tuple[RunningNode, RunningNode], clock: ManualClock) -> None:
    lex, datev = pair
    headers = signed(datev, lex, FEED, clock)
    assert (await send(lex, "GET", FEED, headers))[0] == 200
    status, _, body = await send(lex, "GET", FEED, headers)
    assert (status, body["code"]) == (401, "replayed_nonce")


async def test_stale_created(pair: tuple[RunningNode, RunningNode], clock: ManualClock) -> None:
    lex, datev = pair
    headers = signed(datev, lex, FEED, clock)
    clock.advance(minutes=10)
    status, _, body = await send(lex, "GET", FEED, headers)
    assert (status, body["code"]) == (401, "stale_signature")


async def test_unknown_key(pair: tuple[RunningNode, RunningNode], clock: ManualClock) -> None:
    lex, datev = pair
    stranger = SigningKey.generate()
    status, _, body = await send(lex, "GET", FEED, signed(datev, lex, FEED, clock, key=stranger))
    assert (status, body["code"]) == (401, "unknown_key")


async def test_signed_for_another_path(
    pair: tuple[RunningNode, RunningNode], clock: ManualClock
) -> None:
    lex, datev = pair
    headers = signed(datev, lex, FEED + "?afterChangeNumber=5", clock)
    status, _, body = await send(lex, "GET", FEED, headers)
    assert (status, body["code"]) == (401, "bad_signature")


async def test_body_does_not_match_digest(
    pair: tuple[RunningNode, RunningNode], clock: ManualClock
) -> None:
    lex, datev = pair
    path = "/protocol/v1/peering"
    body = b'{"type":"peering_answer"}'
    headers = signed(datev, lex, path, clock, method="POST", body=body)
    status, _, answer = await send(lex, "POST", path, headers, body.replace(b"answer", b"answers"))
    assert (status, answer["code"]) == (400, "digest_mismatch")


def _edit_input(headers: Headers, edit: Callable[[str], str]) -> Headers:
    return [(n, edit(v) if n == "Signature-Input" else v) for n, v in headers]


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        (lambda s: s.replace('tag="openseats"', 'tag="x"'), "invalid_signature_parameters"),
        (lambda s: s.replace('"content-digest"', '"date"'), "invalid_signature_parameters"),
        (lambda s: "garbage(", "malformed_signature"),
    ],
)
async def test_profile_violations(
    pair: tuple[RunningNode, RunningNode], clock: ManualClock, edit: Callable[[str], str], code: str
) -> None:
    lex, datev = pair
    status, _, body = await send(
        lex, "GET", FEED, _edit_input(signed(datev, lex, FEED, clock), edit)
    )
    assert (status, body["code"]) == (401 if code != "malformed_signature" else 400, code)


async def test_non_peer_with_valid_signature(make_node: NodeFactory, clock: ManualClock) -> None:
    lex, datev = await make_node("lex"), await make_node("datev")
    await lex.admin("POST", "/peers", {"url": datev.url, "fingerprint": datev.fingerprint})
    # datev has lex as pending-in: lex's signed feed request is refused.
    status, _, body = await send(datev, "GET", FEED, signed(lex, datev, FEED, clock))
    assert (status, body["code"]) == (403, "not_peer")


async def test_oversized_body(make_node: NodeFactory, clock: ManualClock) -> None:
    lex, datev = await make_node("lex", max_body_bytes=2048), await make_node("datev")
    await peer(datev, lex)
    body = json.dumps({"type": "feed_changed", "pad": "x" * 5000}).encode()
    path = "/protocol/v1/peering"
    headers = signed(datev, lex, path, clock, method="POST", body=body)
    status, _, answer = await send(lex, "POST", path, headers, body)
    assert (status, answer["code"]) == (413, "payload_too_large")


async def test_rate_limit(make_node: NodeFactory, clock: ManualClock) -> None:
    lex, datev = await make_node("lex", rate_limit_per_minute=20), await make_node("datev")
    await peer(datev, lex)
    statuses = []
    for _ in range(6):
        status, headers, _ = await send(lex, "GET", FEED, signed(datev, lex, FEED, clock))
        statuses.append(status)
    assert statuses[0] == 200
    assert statuses[-1] == 429
    assert set(statuses) == {200, 429}
    assert int(headers["Retry-After"]) >= 1


async def test_peer_key_rotation_is_followed(
    pair: tuple[RunningNode, RunningNode], clock: ManualClock
) -> None:
    lex, datev = pair
    old = datev.node.identity.signing_key
    status, body = await datev.admin("POST", "/keys/rotate")
    assert status == 200
    assert datev.node.identity.signing_key.key_id != old.key_id
    clock.advance(seconds=1)
    # lex sees an unknown key, fetches datev's descriptor (signed by old and
    # new key), applies the rotation rule, and accepts the request.
    status, _, answer = await send(lex, "GET", FEED, signed(datev, lex, FEED, clock))
    assert status == 200, answer
    status, peer_info = await lex.admin("GET", f"/peers/{datev.node_id}")
    assert peer_info["fingerprint"] == body["fingerprint"]


async def test_descriptor_signed_by_unpinned_key_is_refused(
    pair: tuple[RunningNode, RunningNode], clock: ManualClock
) -> None:
    lex, datev = pair
    # datev's key files are replaced behind its back (no rotation): its new
    # descriptor is signed only by a key lex never pinned.
    identity = datev.node.identity
    async with datev.node.db.write() as conn:
        from sqlalchemy import delete

        from node.db.tables import node_keys

        await conn.execute(delete(node_keys))
    await identity.create_first_key(clock.now())
    clock.advance(seconds=120)
    status, _, answer = await send(lex, "GET", FEED, signed(datev, lex, FEED, clock))
    assert (status, answer["code"]) == (401, "unknown_key")
    status, peer_info = await lex.admin("GET", f"/peers/{datev.node_id}")
    assert peer_info["fingerprint"] != identity.fingerprint


async def test_nonce_is_not_stored_for_refused_requests(
    pair: tuple[RunningNode, RunningNode], clock: ManualClock
) -> None:
    from sqlalchemy import func, select

    from node.db.tables import request_nonces

    lex, datev = pair

    async def stored() -> int:
        async with lex.node.db.read() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(request_nonces))).scalar_one()
            )

    before = await stored()
    status, _, _ = await send(lex, "GET", FEED, signed(datev, lex, FEED + "?x=1", clock))
    assert status == 401
    assert await stored() == before
    status, _, _ = await send(lex, "GET", FEED, signed(datev, lex, FEED, clock))
    assert status == 200
    assert await stored() == before + 1
