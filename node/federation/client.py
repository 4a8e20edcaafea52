"""Signed HTTP requests to partner nodes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from node.clock import Clock
from node.streams import BodyTooLarge, read_limited
from protocol.canonical import loads_object
from protocol.errors import MalformedError
from protocol.httpsig import sign_request
from protocol.keys import SigningKey

MAX_RESPONSE_BYTES = 8 * 1024 * 1024
DESCRIPTOR_PATH = "/.well-known/openseats"


class DeliveryError(Exception):
    """A request to a peer failed.  ``kind``: timeout, connection, status, invalid."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class PeerResponse:
    status: int
    body: bytes
    content_type: str

    def json(self) -> dict[str, Any]:
        return loads_object(self.body)


class PeerClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        clock: Clock,
        key: Callable[[], SigningKey] | None = None,
        *,
        timeout: float = 10.0,
    ) -> None:
        self.session = session
        self.clock = clock
        self.key = key
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def _request(
        self, method: str, url: str, body: bytes, headers: list[tuple[str, str]]
    ) -> PeerResponse:
        try:
            async with self.session.request(
                method,
                url,
                data=body or None,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            ) as response:
                try:
                    data = await read_limited(response.content, MAX_RESPONSE_BYTES)
                except BodyTooLarge:
                    raise DeliveryError("invalid", "Antwort zu groß / response too large") from None
                retry_after = response.headers.get("Retry-After")
                result = PeerResponse(response.status, data, response.content_type)
        except TimeoutError:
            raise DeliveryError("timeout", f"Zeitüberschreitung / timeout: {url}") from None
        except aiohttp.ClientError as exc:
            raise DeliveryError("connection", f"Verbindung fehlgeschlagen / {exc}") from None
        if result.status >= 300:
            raise DeliveryError(
                "status",
                _describe_error(result),
                status=result.status,
                retry_after=_seconds(retry_after),
            )
        return result

    async def fetch_descriptor(self, base_url: str) -> dict[str, Any]:
        url = base_url.rstrip("/") + DESCRIPTOR_PATH
        response = await self._request("GET", url, b"", [("Accept", "application/json")])
        return _json_body(response)

    async def signed(self, method: str, url: str, body: bytes = b"") -> PeerResponse:
        if self.key is None:
            raise RuntimeError("PeerClient has no signing key")
        headers = sign_request(
            method=method, url=url, body=body, key=self.key(), now=self.clock.now()
        )
        headers.append(("Accept", "application/json"))
        return await self._request(method, url, body, headers)

    async def signed_json(self, method: str, url: str, body: bytes = b"") -> dict[str, Any]:
        return _json_body(await self.signed(method, url, body))


def _json_body(response: PeerResponse) -> dict[str, Any]:
    if response.content_type != "application/json":
        raise DeliveryError(
            "invalid", f"Antwort ist kein JSON / response is {response.content_type or 'untyped'}"
        )
    try:
        return response.json()
    except MalformedError as exc:
        raise DeliveryError("invalid", f"Ungültiges JSON / invalid JSON: {exc}") from None


def _describe_error(response: PeerResponse) -> str:
    try:
        body = response.json()
        return f"HTTP {response.status}: {body.get('code')}: {body.get('message')}"
    except MalformedError:
        return f"HTTP {response.status}"


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(float(int(value)), 0.0)
    except ValueError:
        return None
