"""``/admin/api/v1/imports``: CSV/ICS uploads and subscribed calendar URLs."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from node.imports import ImportFileError
from node.web.admin_api import PREFIX, json_body, node_of, validate
from node.web.errors import ApiError, plain_int, read_body
from protocol.models import format_timestamp

IMPORT_TYPES = {"text/csv": "csv", "text/calendar": "ics"}


class UrlImport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str = Field(min_length=8, max_length=2048, pattern=r"^https?://")
    interval_minutes: int | None = Field(default=None, ge=5, le=7 * 24 * 60)


async def run_import(request: web.Request) -> web.Response:
    """Upload a CSV/ICS file as the body, or JSON ``{"url", "interval_minutes"?}``."""
    node = node_of(request)
    try:
        if request.content_type in IMPORT_TYPES:
            data = await read_body(request, node.settings.max_body_bytes * 10)
            kind = IMPORT_TYPES[request.content_type]
            report = await node.importer.import_bytes(data, kind)  # type: ignore[arg-type]
        elif request.content_type == "application/json":
            spec = validate(UrlImport, await json_body(request))
            if spec.interval_minutes:
                report = await node.importer.register(spec.url, spec.interval_minutes)
            else:
                report = await node.importer.import_url(spec.url)
        else:
            raise ApiError(
                415, "unsupported_media_type", "text/csv, text/calendar oder/or application/json"
            )
    except ImportFileError as exc:
        raise ApiError(400, exc.code, exc.message) from None
    return web.json_response(report.to_json())


async def list_import_sources(request: web.Request) -> web.Response:
    sources = await node_of(request).importer.sources()
    return web.json_response(
        {
            "sources": [
                {
                    "id": s.id,
                    "url": s.url,
                    "interval_minutes": s.interval_minutes,
                    "last_run_at": format_timestamp(s.last_run_at) if s.last_run_at else None,
                    "last_report": s.last_report,
                }
                for s in sources
            ]
        }
    )


async def remove_import_source(request: web.Request) -> web.Response:
    source_id = plain_int(request.match_info["source_id"])
    if source_id is None or not await node_of(request).importer.unregister(source_id):
        raise ApiError(404, "not_found", "Quelle nicht gefunden / source not found")
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    app.router.add_post(f"{PREFIX}/imports", run_import)
    app.router.add_get(f"{PREFIX}/imports/sources", list_import_sources)
    app.router.add_delete(f"{PREFIX}/imports/sources/{{source_id}}", remove_import_source)
