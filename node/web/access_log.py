"""The access log, without personal data.

Request lines can carry an attendee's ref (``/api/v1/reservations?ref=…``,
``/admin/api/v1/privacy/{ref}``) or a calendar token (``?token=``).  The
log therefore records the method, the path with every query string cut
off and the ref segment of privacy paths replaced, the status, the size
and the time taken, never headers (SPEC.md §12: logs record reservation
uuids, never attendee data).
"""

from __future__ import annotations

import re

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

PRIVATE_SEGMENT = re.compile(r"(/privacy/)[^/]+")


def redact(path: str) -> str:
    return PRIVATE_SEGMENT.sub(r"\1…", path.split("?", 1)[0])


class RedactingAccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %s %.1fms",
            request.method,
            redact(request.path),
            response.status,
            response.body_length,
            time * 1000,
        )
