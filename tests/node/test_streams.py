"""Large bodies arrive whole (a plain ``read(n)`` returns only what has arrived)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from node.clock import ManualClock
from node.federation.client import DeliveryError, PeerClient
from node.streams import read_limited
from tests.node.conftest import NodeFactory

BIG = {"items": [{"n": n, "text": "Lernen im Netzwerk " * 20} for n in range(6000)]}


@pytest.fixture
async def big_server() -> AsyncIterator[str]:
    body = json.dumps(BIG).encode()

    async def streamed(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for start in range(0, len(body), 50_000):
            await response.write(body[start : start + 50_000])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/big", streamed)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/big"))
    await server.close()


async def test_peer_client_reads_a_multi_megabyte_page(
    big_server: str, clock: ManualClock, make_node: NodeFactory
) -> None:
    lex = await make_node("lex")
    client = PeerClient(lex.node.http, clock, lambda: lex.node.identity.signing_key)
    assert await client.signed_json("GET", big_server) == BIG


async def test_too_large_is_refused(
    big_server: str, clock: ManualClock, make_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import node.federation.client as client_module

    lex = await make_node("lex")
    monkeypatch.setattr(client_module, "MAX_RESPONSE_BYTES", 100_000)
    client = PeerClient(lex.node.http, clock, lambda: lex.node.identity.signing_key)
    with pytest.raises(DeliveryError, match="zu groß"):
        await client.signed_json("GET", big_server)


async def test_a_large_upload_is_imported_whole(make_node: NodeFactory, clock: ManualClock) -> None:
    lex = await make_node("lex", max_body_bytes=400_000)
    day = (clock.now() + timedelta(days=20)).strftime("%d.%m.%Y")
    rows = [f"k{n};Sitzung {n} {'x' * 150};{day} 10:00;60;Anna" for n in range(700)]
    csv = ("Schlüssel;Titel;Beginn;Dauer;Referent(in)\n" + "\n".join(rows) + "\n").encode()
    assert len(csv) > 100_000
    status, report = await lex.admin(
        "POST", "/imports", raw=csv, headers={"Content-Type": "text/csv"}
    )
    assert status == 200, report
    assert (report["imported"], report["rejected"]) == (700, 0)


async def test_read_limited_stops_at_the_limit() -> None:
    import asyncio

    from aiohttp import StreamReader
    from aiohttp.base_protocol import BaseProtocol

    loop = asyncio.get_running_loop()
    stream = StreamReader(BaseProtocol(loop), 2**16, loop=loop)
    stream.feed_data(b"a" * 10)
    stream.feed_data(b"b" * 10)
    stream.feed_eof()
    assert await read_limited(stream, 20) == b"a" * 10 + b"b" * 10
