"""Rendering pages: one call gives a template all that the base layout needs.

``await render(request, "x.html", {...})`` adds to the context:

- ``t`` (:class:`~node.ui.i18n.Translator`), ``lang`` and ``language_names``;
- ``admin`` (the logged-in :class:`~node.db.admins.UiSession` or ``None``)
  and ``admin_nav`` (the entries registered with :func:`add_admin_nav`);
- ``csrf_token()`` and ``csrf_field()`` (a hidden input); the anonymous
  token's cookie is set only when the page used it;
- ``flash`` (a message carried over one redirect by :func:`redirect`);
- ``static_url(name)`` (versioned, so browsers never keep a stale file),
  ``path``, ``path_qs`` and ``node_name``.

:func:`ui_errors` renders ``error.html`` for every :class:`PageError` and
HTTP error on UI paths, so visitors never see a JSON body or a bare text.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup

from node.db.faults import StorageFault
from node.ui.auth import Handler, current_admin
from node.ui.csrf import CSRF_FIELD, set_cookie_if_new, token_for
from node.ui.errors import GENERIC_TEXT, GENERIC_TITLE, TEXTS, TITLES, PageError
from node.ui.i18n import CATALOGUES, LANGUAGE_NAMES, Message, translator_for
from node.ui.security import is_https, is_ui_path, local_path
from node.web.errors import RETRY_LATER, storage_fault_status
from node.web.protocol_routes import NODE

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
FLASH_COOKIE = "openseats_flash"
FLASH_KINDS = ("success", "info", "error")


@dataclass(frozen=True)
class NavItem:
    path: str
    label_key: str


@dataclass(frozen=True)
class Flash:
    kind: str
    message: Message


ADMIN_NAV = web.AppKey[list[NavItem]]("ui_admin_nav")


def add_admin_nav(app: web.Application, path: str, label_key: str) -> None:
    """Show a link to *path* in the admin navigation (in registration order)."""
    app[ADMIN_NAV].append(NavItem(path, label_key))


def _flash(request: web.Request) -> Flash | None:
    kind, _, key = request.cookies.get(FLASH_COOKIE, "").partition(":")
    if kind in FLASH_KINDS and request.app[CATALOGUES].has(key):
        return Flash(kind, Message(key))
    return None


async def page_context(request: web.Request) -> dict[str, Any]:
    admin = await current_admin(request)
    t = translator_for(request)
    nav: list[NavItem] = request.app[ADMIN_NAV] if admin else []

    def csrf_token() -> str:
        return token_for(request, admin)

    def csrf_field() -> Markup:
        return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, csrf_token())

    def static_url(name: str) -> str:
        return str(request.app.router["static"].url_for(filename=name))

    return {
        "t": t,
        "lang": t.lang,
        "language_names": LANGUAGE_NAMES,
        "admin": admin,
        "admin_nav": nav,
        "csrf_token": csrf_token,
        "csrf_field": csrf_field,
        "flash": _flash(request),
        "static_url": static_url,
        "path": request.path,
        "path_qs": return_path(request),
        "node_name": request.app[NODE].settings.display_name,
    }


def return_path(request: web.Request) -> str:
    """Where the language switch should lead back to.

    A page shown in answer to a POST (a form with errors, a confirmation
    step) has no GET address of its own; go back to the page the form was
    on (the same-origin ``Referer``), never to the POST address.
    """
    if request.method in ("GET", "HEAD"):
        return request.path_qs
    referer = urlsplit(request.headers.get("Referer", ""))
    if referer.netloc == request.host and referer.path:
        return local_path(referer.path + (f"?{referer.query}" if referer.query else ""))
    return "/"


async def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """*template* rendered with the page context plus *context* (which wins)."""
    page = await page_context(request)
    page.update(context or {})
    response = aiohttp_jinja2.render_template(template, request, page, status=status)
    response.headers.update(headers or {})
    set_cookie_if_new(request, response)
    if FLASH_COOKIE in request.cookies:
        response.del_cookie(FLASH_COOKIE, path="/")
    return response


def redirect(
    request: web.Request, location: str, *, flash: tuple[str, str] | None = None
) -> web.Response:
    """A 303 to a local *location*, optionally with a one-time ``(kind, key)`` message."""
    response = web.Response(status=303, headers={"Location": local_path(location)})
    if flash is not None:
        kind, key = flash
        if kind not in FLASH_KINDS or not request.app[CATALOGUES].has(key):
            raise ValueError(f"unknown flash {flash!r}")
        response.set_cookie(
            FLASH_COOKIE,
            f"{kind}:{key}",
            max_age=120,
            path="/",
            secure=is_https(request.app[NODE].settings),
            httponly=True,
            samesite="Strict",
        )
    return response


async def error_page(
    request: web.Request,
    status: int,
    message: Message | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    context = {
        "status": status,
        "title_key": TITLES.get(status, GENERIC_TITLE),
        "message": message or Message(TEXTS.get(status, GENERIC_TEXT)),
    }
    return await render(request, "error.html", context, status=status, headers=headers)


_KEPT_HEADERS = ("Allow", "Retry-After")


@web.middleware
async def ui_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_ui_path(request.path):
        return await handler(request)
    try:
        return await handler(request)
    except PageError as exc:
        return await error_page(request, exc.status, exc.message, exc.headers)
    except StorageFault as exc:  # the page itself cannot be built; say so in HTML
        status = storage_fault_status(request, exc)
        return await error_page(request, status, headers=RETRY_LATER if status == 503 else None)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kept = {name: exc.headers[name] for name in _KEPT_HEADERS if name in exc.headers}
        return await error_page(request, exc.status, headers=kept)
