"""``/admin/imports``: upload a CSV or ICS file, or subscribe to a calendar URL.

Both go through :class:`~node.publishing.importer.Importer`, as the admin
API does; the answer is the import report (imported, updated, unchanged,
cancelled, rejected with the reason per record).  A file that cannot be
read at all becomes a field error in the visitor's language.  Uploads
are limited by the app's ``max_body_bytes`` (the API takes larger files).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from node.imports import ImportFileError
from node.publishing.importer import ImportReport, detect_kind
from node.ui.admin_common import int_or_none, node_of, when_for
from node.ui.auth import require_admin
from node.ui.errors import PageError
from node.ui.forms import FieldErrors, read_form
from node.ui.i18n import Message
from node.ui.render import add_admin_nav, redirect, render
from node.web.admin_imports import UrlImport

PATH = "/admin/imports"
FILE_ERRORS = {
    "bad_encoding": "admin.import_err_bad_encoding",
    "bad_ics": "admin.import_err_bad_ics",
    "duplicate_column": "admin.import_err_duplicate_column",
    "empty": "admin.import_err_empty",
    "missing_column": "admin.import_err_missing_column",
    "not_csv": "admin.import_err_not_csv",
}


async def _page(
    request: web.Request,
    *,
    report: ImportReport | None = None,
    values: dict[str, str] | None = None,
    errors: FieldErrors | None = None,
    status: int = 200,
) -> web.Response:
    context: dict[str, Any] = {
        "sources": await node_of(request).importer.sources(),
        "report": report,
        "values": values or {"url": "", "interval_minutes": ""},
        "errors": errors or {},
        "when": when_for(request),
    }
    return await render(request, "admin/imports.html", context, status=status)


async def imports_page(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    return await _page(request)


async def upload(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    upload = (await request.post()).get("file")
    if not isinstance(upload, web.FileField) or not upload.filename:
        return await _page(
            request, errors={"file": Message("admin.import_err_no_file")}, status=400
        )
    data = upload.file.read()
    kind = detect_kind(data, upload.filename or upload.content_type)
    try:
        report = await node_of(request).importer.import_bytes(data, kind)
    except ImportFileError as exc:
        message = Message(FILE_ERRORS.get(exc.code, "admin.err_invalid"), {"detail": exc.message})
        return await _page(request, errors={"file": message}, status=400)
    return await _page(request, report=report)


async def subscribe(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    form = await read_form(request)
    values = {"url": form.get("url", ""), "interval_minutes": form.get("interval_minutes", "")}
    interval = int_or_none(values["interval_minutes"] or None)
    errors: FieldErrors = {}
    if values["interval_minutes"] and interval is None:
        errors["interval_minutes"] = Message("admin.err_interval")
    try:
        spec = UrlImport(url=values["url"], interval_minutes=interval)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            name = str(error["loc"][0]) if error["loc"] else "url"
            key = "admin.err_import_url" if name == "url" else "admin.err_interval"
            errors.setdefault(name, Message(key))
    if errors:
        return await _page(request, values=values, errors=errors, status=400)
    importer = node_of(request).importer
    try:
        if spec.interval_minutes:
            report = await importer.register(spec.url, spec.interval_minutes)
        else:
            report = await importer.import_url(spec.url)
    except ImportFileError as exc:
        message = Message("admin.err_import_download", {"detail": exc.message})
        return await _page(request, values=values, errors={"url": message}, status=400)
    return await _page(request, report=report)


async def remove_source(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    source_id = int_or_none(request.match_info["source_id"])
    if source_id is None or not await node_of(request).importer.unregister(source_id):
        raise PageError(404)
    return redirect(request, PATH, flash=("success", "admin.import_source_removed"))


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get(PATH, imports_page)
    r.add_post(PATH, upload)
    r.add_post(f"{PATH}/url", subscribe)
    r.add_post(f"{PATH}/sources/{{source_id:\\d+}}/remove", remove_source)
    add_admin_nav(app, PATH, "nav.imports")
