"""JSON error bodies for every expected failure."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from node.db.faults import StorageFault, StorageFull
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


MAX_MESSAGE, MAX_FIELD = 1000, 200  # schemas/error.schema.json


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    # Messages and fields may echo the client's input (an unknown parameter's
    # name): clip them to what the error schema allows.
    body: dict[str, Any] = {"code": code, "message": _clip(message, MAX_MESSAGE)}
    if field:
        body["field"] = _clip(field, MAX_FIELD)
    return web.json_response(body, status=status, headers=headers)


def validation_error(exc: ValidationError) -> ApiError:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"]) or None
    code = "unknown_field" if error["type"] == "extra_forbidden" else "invalid_field"
    message = error["msg"].removeprefix("Value error, ")
    return ApiError(400, code, message, field=where)


MAX_ID = 2**31 - 1  # row ids are 32-bit integers on PostgreSQL


def plain_int(raw: str, high: int = MAX_ID) -> int | None:
    """*raw* as a whole number from 0 to *high*, or None.

    ASCII digits only: ``str.isdigit`` is also true for "²" and "١", which
    ``int()`` refuses or reads as another number, and a larger number would
    overflow the database's integers.
    """
    if not raw or not raw.isascii() or not raw.isdigit() or len(raw) > len(str(high)):
        return None
    value = int(raw)
    return value if value <= high else None


_HTTP_CODES = {
    404: ("not_found", "Nicht gefunden / not found"),
    405: ("method_not_allowed", "Methode nicht erlaubt / method not allowed"),
    413: ("payload_too_large", "Anfrage zu groß / request body too large"),
    415: ("unsupported_media_type", "Falscher Inhaltstyp / unsupported media type"),
}


API_PREFIXES = ("/api/v1/", "/admin/api/v1/")


@web.middleware
async def refuse_nul(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No NUL character in an API path or query: PostgreSQL cannot store or compare one.

    JSON bodies get the same check in :func:`node.web.admin_api.json_body`.
    """
    if request.path.startswith(API_PREFIXES):
        message = "NUL-Zeichen sind nicht erlaubt / NUL characters are not allowed"
        if "\x00" in request.path:
            raise ApiError(400, "invalid_path", message)
        for name, value in request.query.items():
            if "\x00" in name or "\x00" in value:
                raise ApiError(400, "invalid_query", message, field=name.replace("\x00", ""))
    return await handler(request)


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
    except StorageFault as exc:
        if storage_fault_status(request, exc) == 507:
            return error_response(
                507,
                "storage_full",
                "Speicher des Knotens voll, Anfrage nicht ausgeführt; bitte die Betreiber "
                "informieren / the node's storage is full, the request was not carried out; "
                "please tell its operators",
            )
        return error_response(
            503,
            "database_unavailable",
            "Datenbank nicht erreichbar, Anfrage nicht ausgeführt; bitte gleich noch einmal "
            "versuchen / database unavailable, the request was not carried out; please try "
            "again shortly",
            headers=RETRY_LATER,
        )


RETRY_LATER = {"Retry-After": "5"}


def storage_fault_status(request: web.Request, exc: StorageFault) -> int:
    """Log one line about a database fault and pick the status: 507 full, else 503.

    The line names the route pattern and the driver's error class, never the
    SQL, its parameters or the path's values (they may hold personal data).
    """
    full = isinstance(exc, StorageFull)
    what = "storage full" if full else "database unavailable"
    log.warning("%s (%s): %s %s", what, exc.reason, request.method, _route(request))
    return 507 if full else 503


def _route(request: web.Request) -> str:
    """The route pattern (``/api/v1/sessions/{id}``), never the path with its values."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "-"
