"""``/admin/sessions``: our own sessions, searchable; create and edit them.

The detail page with opening, closing, cancelling and the reservations is
:mod:`node.ui.admin_session_detail`.  Both call
:class:`~node.publishing.service.SessionService`, as the admin API does.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node.publishing.service import SessionError
from node.ui.admin_common import LABELS, node_of, not_found_for, when_for
from node.ui.admin_session_form import (
    FORMAT_OPTIONS,
    blank_session,
    parse_session,
    session_values,
)
from node.ui.auth import require_admin
from node.ui.forms import FieldErrors, read_form
from node.ui.i18n import Message
from node.ui.render import add_admin_nav, redirect, render

LIST_PATH = "/admin/sessions"
SEARCH_MAX = 200


async def list_page(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    q = request.query.get("q", "").strip()[:SEARCH_MAX]
    rows = await node_of(request).sessions.list(q=q or None, limit=500)
    return await render(
        request,
        "admin/sessions.html",
        {"rows": rows, "q": q, "when": when_for(request), "labels": LABELS},
    )


async def _form_page(
    request: web.Request,
    *,
    values: dict[str, str],
    errors: FieldErrors,
    session_id: str | None = None,
    status: int = 200,
) -> web.Response:
    context: dict[str, Any] = {
        "values": values,
        "errors": errors,
        "session_id": session_id,
        "format_options": FORMAT_OPTIONS,
    }
    return await render(request, "admin/session_form.html", context, status=status)


async def new_page(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    return await _form_page(request, values=blank_session(), errors={})


def _service_errors(exc: SessionError) -> FieldErrors:
    if exc.code == "join_url_required":
        return {"join_url": Message("admin.err_join_url_required")}
    return {exc.field or "title": Message("admin.err_invalid")}


async def create(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    node = node_of(request)
    form = await read_form(request)
    values = {**blank_session(), **form}
    parsed = parse_session(form, node.clock.now())
    if isinstance(parsed, dict):
        return await _form_page(request, values=values, errors=parsed, status=400)
    row = await node.sessions.create(parsed)
    return redirect(request, f"{LIST_PATH}/{row.id}", flash=("success", "admin.session_created"))


async def edit_page(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    try:
        row = await node_of(request).sessions.get(request.match_info["id"])
    except SessionError as exc:
        raise not_found_for(exc) from None
    return await _form_page(request, values=session_values(row), errors={}, session_id=row.id)


async def update(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    node = node_of(request)
    try:
        row = await node.sessions.get(request.match_info["id"])
    except SessionError as exc:
        raise not_found_for(exc) from None
    form = await read_form(request)
    values = {**session_values(row), **form}
    parsed = parse_session(form, node.clock.now())
    if isinstance(parsed, dict):
        return await _form_page(
            request, values=values, errors=parsed, session_id=row.id, status=400
        )
    try:
        await node.sessions.update(row.id, parsed)
    except SessionError as exc:
        if exc.status == 404:
            raise not_found_for(exc) from None
        errors = _service_errors(exc)
        return await _form_page(
            request, values=values, errors=errors, session_id=row.id, status=400
        )
    return redirect(request, f"{LIST_PATH}/{row.id}", flash=("success", "admin.session_saved"))


def setup(app: web.Application) -> None:
    app.router.add_get(LIST_PATH, list_page)
    app.router.add_get(f"{LIST_PATH}/new", new_page)
    app.router.add_post(f"{LIST_PATH}/new", create)
    app.router.add_post(LIST_PATH, create)
    app.router.add_get(f"{LIST_PATH}/{{id}}/edit", edit_page)
    app.router.add_post(f"{LIST_PATH}/{{id}}/edit", update)
    add_admin_nav(app, LIST_PATH, "nav.sessions")
