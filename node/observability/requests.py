"""The outermost middleware: request id, log context and request metrics.

The request id is the proxy's ``X-Request-Id`` when it is well formed
(1–128 letters, digits and ``._:-``, so nothing odd reaches a log line),
else a new random one; it is echoed in the response's ``X-Request-Id``
(also on error pages, through ``on_response_prepare``).

Requests are counted under their route's *template*
(``/api/v1/reservations/{id}``), never the raw path, which may hold
reservation ids or refs; a path no route matches counts as ``unmatched``.
The middleware runs outside the JSON error middleware, so it records the
status the client really got; an exception that escapes every middleware
counts as 500.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from node.observability import logs
from node.observability.metrics import Metrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID_HEADER = "X-Request-Id"
_WELL_FORMED_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
UNMATCHED = "unmatched"


@dataclass
class RequestInfo:
    """What the access log and the response need to know about a request."""

    node: str
    request_id: str
    route: str
    peer: str | None = None


REQUEST_INFO = web.RequestKey("request_info", RequestInfo)


def request_id_from(header: str | None) -> str:
    if header is not None and _WELL_FORMED_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    if resource is None:
        return UNMATCHED
    return resource.canonical


def set_peer(request: web.Request, peer: str) -> None:
    """Record the verified peer of a protocol request for its log lines."""
    info = request.get(REQUEST_INFO)
    if info is not None:
        info.peer = peer
    logs.bind(peer=peer)  # this request's task only; it ends with the request


def make_observer(metrics: Metrics, node_id: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        info = RequestInfo(
            node_id,
            request_id_from(request.headers.get(REQUEST_ID_HEADER)),
            route_template(request),
        )
        request[REQUEST_INFO] = info
        token = logs.bind(node=node_id, request_id=info.request_id, route=info.route, peer=None)
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            metrics.http_request(info.route, request.method, status, time.perf_counter() - started)
            logs.unbind(token)

    return observe


async def echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every answer carries its request id."""
    info = request.get(REQUEST_INFO)
    if info is not None:
        response.headers[REQUEST_ID_HEADER] = info.request_id
