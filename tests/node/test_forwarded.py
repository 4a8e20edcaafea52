"""The client address behind a reverse proxy (``trusted_proxies``), over real loopback requests.

A tiny aiohttp app answers with :func:`client_address` for the request it
got; the client always connects from 127.0.0.1, which is or is not a
trusted proxy depending on the test.  The setting's parsing and its error
messages are checked through :func:`load_settings`, as ``serve`` loads it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from node.settings import SettingsError, load_settings, write_config
from node.web.forwarded import Network, client_address, parse_address

Ask = Callable[..., Awaitable[str]]
Serve = Callable[[list[Network]], Awaitable[Ask]]


def networks(*values: str) -> list[Network]:
    return [ipaddress.ip_network(value) for value in values]


@pytest.fixture
async def ask() -> AsyncIterator[Serve]:
    servers: list[TestServer] = []
    http = aiohttp.ClientSession()

    async def serve(proxies: list[Network]) -> Ask:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(text=client_address(request, proxies))

        app = web.Application()
        app.router.add_get("/", handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)

        async def request(*forwarded: str) -> str:
            headers = [("X-Forwarded-For", value) for value in forwarded]
            async with http.get(server.make_url("/"), headers=headers) as response:
                return await response.text()

        return request

    yield serve
    await http.close()
    for server in servers:
        await server.close()


async def test_without_trusted_proxies_the_header_is_ignored(ask: Serve) -> None:
    request = await ask([])
    assert await request() == "127.0.0.1"
    assert await request("203.0.113.7") == "127.0.0.1"
    assert await request("203.0.113.7, 198.51.100.1") == "127.0.0.1"


async def test_a_spoofed_header_from_an_untrusted_peer_is_ignored(ask: Serve) -> None:
    request = await ask(networks("10.0.0.0/8", "::1/128"))  # the peer 127.0.0.1 is not in it
    assert await request("203.0.113.7") == "127.0.0.1"


async def test_a_trusted_proxy_names_the_client(ask: Serve) -> None:
    request = await ask(networks("127.0.0.1/32"))
    assert await request("203.0.113.7") == "203.0.113.7"
    assert await request("2001:db8::7") == "2001:db8::7"
    assert await request("203.0.113.7:51234") == "203.0.113.7"
    assert await request("[2001:db8::7]:443") == "2001:db8::7"
    # No header: the proxy itself is the client (a health check from the proxy host).
    assert await request() == "127.0.0.1"


async def test_entries_the_client_wrote_itself_are_never_used(ask: Serve) -> None:
    request = await ask(networks("127.0.0.1/32"))
    # The client sent "X-Forwarded-For: 198.51.100.1"; nginx appended what it saw.
    assert await request("198.51.100.1, 203.0.113.7") == "203.0.113.7"
    # The same as two header lines.
    assert await request("198.51.100.1", "203.0.113.7") == "203.0.113.7"
    # Garbage to the left of the real client does not matter either.
    assert await request("<script>, 203.0.113.7") == "203.0.113.7"


async def test_a_chain_of_trusted_proxies_is_walked_from_the_right(
    ask: Serve,
) -> None:
    request = await ask(networks("127.0.0.1/32", "10.1.0.0/16"))
    assert await request("198.51.100.1, 203.0.113.7, 10.1.2.3") == "203.0.113.7"
    # Every entry trusted: the left-most one is the client.
    assert await request("10.1.9.9, 10.1.2.3") == "10.1.9.9"
    # A garbage entry stops the walk at the nearest trusted hop.
    assert await request("203.0.113.7, not-an-address, 10.1.2.3") == "10.1.2.3"
    assert await request("not-an-address") == "127.0.0.1"


def test_parse_address_forms() -> None:
    assert str(parse_address("::ffff:192.0.2.1")) == "192.0.2.1"
    assert parse_address("") is None
    assert parse_address("unknown") is None
    assert parse_address("1.2.3.4:80:90") is None


def _config(tmp_path: Path, **extra: object) -> Path:
    data = tmp_path / "node"
    data.mkdir(parents=True)
    write_config(
        data / "openseats.toml",
        {"node_id": "lex.example.org", "base_url": "https://lex.example.org", "display_name": "LEX"}
        | extra,
    )
    return data


def test_the_setting_takes_addresses_and_networks_from_toml_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _config(tmp_path, trusted_proxies=["127.0.0.1", "10.0.0.0/8", "::1"])
    settings = load_settings(data)
    assert settings.trusted_proxies == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    assert load_settings(_config(tmp_path / "empty")).trusted_networks == ()

    monkeypatch.setenv("OPENSEATS_TRUSTED_PROXIES", "192.0.2.10, 172.16.0.0/12")
    assert load_settings(data).trusted_proxies == ["192.0.2.10/32", "172.16.0.0/12"]
    monkeypatch.setenv("OPENSEATS_TRUSTED_PROXIES", '["192.0.2.11"]')
    assert load_settings(data).trusted_proxies == ["192.0.2.11/32"]


@pytest.mark.parametrize("value", [["10.0.0.300"], ["lex.example.org"], ["10.0.0.0/33"], "x"])
def test_a_bad_value_names_the_setting(tmp_path: Path, value: object) -> None:
    data = _config(tmp_path, trusted_proxies=value)
    with pytest.raises(SettingsError) as caught:
        load_settings(data)
    message = str(caught.value)
    assert "'trusted_proxies'" in message
    assert "openseats.toml" in message  # where the value came from
    assert "keine IP-Adresse" in message
    assert "not an IP address" in message


def test_a_bad_environment_value_names_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _config(tmp_path)
    monkeypatch.setenv("OPENSEATS_TRUSTED_PROXIES", "127.0.0.1,proxy.internal")
    with pytest.raises(SettingsError, match="OPENSEATS_TRUSTED_PROXIES") as caught:
        load_settings(data)
    assert "'proxy.internal'" in str(caught.value)
