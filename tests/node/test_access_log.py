"""The access log never records attendee refs or tokens."""

from __future__ import annotations

import logging

import pytest

from node.web.access_log import redact
from tests.node.conftest import NodeFactory
from tests.node.reservations.helpers import api, portal_token


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/api/v1/reservations?ref=emp-4711", "/api/v1/reservations"),
        ("/admin/api/v1/privacy/emp-4711", "/admin/api/v1/privacy/…"),
        ("/api/v1/catalogue.ics?token=secret", "/api/v1/catalogue.ics"),
        ("/protocol/v1/feed", "/protocol/v1/feed"),
    ],
)
def test_redact(path: str, logged: str) -> None:
    assert redact(path) == logged


@pytest.mark.parametrize("engine", ["sqlite"])
async def test_requests_with_refs_log_no_ref(
    make_node: NodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    node = await make_node("lex")
    token = await portal_token(node)
    caplog.clear()
    await api(node, "GET", "/reservations?ref=emp-4711", token)
    await node.admin("GET", "/privacy/emp-4711")
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == 2
    assert "emp-4711" not in "\n".join(lines)
