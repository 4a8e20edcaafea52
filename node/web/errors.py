"""JSON error bodies for every expected failure."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from node.federation.peering import PeeringError
from node.publishing.service import SessionError
from node.reservations.host import ReservationError
from node.streams import BodyTooLarge, read_limited
from protocol.errors import ProtocolError

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An error an API handler raises on purpose."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole request body, or 413 when it is larger than *limit*."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload_too_large", f"Höchstens / at most {limit} bytes")
    try:
        return await read_limited(request.content, limit)
    except BodyTooLarge:
        raise ApiError(413, "payload_too_large", f"Höchstens / at most {limit} bytes") from None


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return web.json_response(body, status=status, headers=headers)


def validation_error(exc: ValidationError) -> ApiError:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"]) or None
    code = "unknown_field" if error["type"] == "extra_forbidden" else "invalid_field"
    message = error["msg"].removeprefix("Value error, ")
    return ApiError(400, code, message, field=where)


_HTTP_CODES = {
    404: ("not_found", "Nicht gefunden / not found"),
    405: ("method_not_allowed", "Methode nicht erlaubt / method not allowed"),
    413: ("payload_too_large", "Anfrage zu groß / request body too large"),
    415: ("unsupported_media_type", "Falscher Inhaltstyp / unsupported media type"),
}


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(
            exc.status, exc.code, exc.message, field=exc.field, headers=exc.headers
        )
    except ProtocolError as exc:
        return error_response(exc.status, exc.code, exc.message, field=exc.field)
    except (SessionError, PeeringError, ReservationError) as exc:
        return error_response(exc.status, exc.code, exc.message, field=getattr(exc, "field", None))
    except ValidationError as exc:
        api = validation_error(exc)
        return error_response(api.status, api.code, api.message, field=api.field)
    except web.HTTPException as exc:
        if exc.status in _HTTP_CODES and not request.path.startswith(("/static/",)):
            code, message = _HTTP_CODES[exc.status]
            return error_response(exc.status, code, message)
        raise
