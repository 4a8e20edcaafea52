"""The access log, without personal data.

Request lines can carry an attendee's ref (``/api/v1/reservations?ref=…``,
``/admin/api/v1/privacy/{ref}``) or a calendar token (``?token=``).  The
log therefore records the method, the path with every query string cut
off and the ref segment of privacy paths replaced, the status, the size
and the time taken, never headers (SPEC.md §12: logs record reservation
uuids, never attendee data).

The line is an ordinary log record of ``aiohttp.access``: its message
reads as before, and the same values travel as fields (``method``,
``path``, ``status``, ``size``, ``duration_ms``) beside the request's
``node``, ``request_id``, ``route`` and ``peer``, which the JSON log
format writes as members (:mod:`node.observability.logs`).  The request's
own context has ended by the time aiohttp logs the line, so those come
from the request (:data:`node.observability.requests.REQUEST_INFO`).
"""

from __future__ import annotations

import re

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from node.observability.requests import REQUEST_INFO

PRIVATE_SEGMENT = re.compile(r"(/privacy/)[^/]+")


def redact(path: str) -> str:
    return PRIVATE_SEGMENT.sub(r"\1…", path.split("?", 1)[0])


class RedactingAccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        path = redact(request.path)
        info = request.get(REQUEST_INFO)
        self.logger.info(
            "%s %s %s %s %.1fms",
            request.method,
            path,
            response.status,
            response.body_length,
            time * 1000,
            extra={
                "method": request.method,
                "path": path,
                "status": response.status,
                "size": response.body_length,
                "duration_ms": round(time * 1000, 1),
                "node": info.node if info else None,
                "request_id": info.request_id if info else None,
                "route": info.route if info else None,
                "peer": info.peer if info else None,
            },
        )
