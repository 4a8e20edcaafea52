"""Shared steps for reservation tests between real nodes."""

from __future__ import annotations

import json
from typing import Any

from node.clock import ManualClock
from tests.node.conftest import RunningNode, sync
from tests.node.test_feed import new_session


async def portal_token(node: RunningNode) -> str:
    status, body = await node.admin("POST", "/tokens", {"role": "portal", "label": "Intranet"})
    assert status == 201, body
    return str(body["token"])


async def open_session(
    host: RunningNode, clock: ManualClock, *, seats: int = 2, **opening: Any
) -> str:
    sid = await new_session(host, clock)
    status, body = await host.admin(
        "PUT", f"/sessions/{sid}/opening", {"seats": seats, "audience": "all", **opening}
    )
    assert status == 200, body
    return sid


async def api(
    node: RunningNode,
    method: str,
    path: str,
    token: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    sent = {"Authorization": f"Bearer {token}", **(headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent.setdefault("Content-Type", "application/json")
    async with node.http.request(
        method, f"{node.url}/api/v1{path}", data=data, headers=sent
    ) as response:
        raw = await response.read()
        if "json" in response.content_type and raw:
            return response.status, json.loads(raw)
        return response.status, raw.decode()


async def reserve(
    requester: RunningNode,
    host: RunningNode,
    sid: str,
    token: str,
    ref: str,
    **extra: Any,
) -> dict[str, Any]:
    body = {"attendee": {"ref": ref, "display_name": f"Person {ref}"}, **extra}
    status, answer = await api(
        requester, "POST", f"/sessions/{sid}@{host.node_id}/reservations", token, body
    )
    assert status == 202, answer
    assert answer["state"] == "requested"
    return dict(answer)


async def state_of(node: RunningNode, reservation_id: str, token: str) -> dict[str, Any]:
    status, body = await api(node, "GET", f"/reservations/{reservation_id}", token)
    assert status == 200, body
    return dict(body)


__all__ = ["sync"]
