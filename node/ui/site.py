"""Wiring the HTML UI into the node's app: :func:`setup` is called by ``create_app``.

It creates the Jinja2 environment (autoescape for every template,
undefined names are errors), serves ``static/`` under ``/static/`` with
versioned URLs, installs the security headers and the UI middlewares, and
registers the routes of the UI modules.  The middlewares run in this order
inside the app's JSON error middleware, each only on UI paths:

1. :func:`node.ui.render.ui_errors`: errors become pages in the visitor's language;
2. :func:`node.ui.auth.admin_gate`: ``/admin/...`` needs a logged-in admin;
3. :func:`node.ui.csrf.csrf_protect`: unsafe methods need a CSRF token.
"""

from __future__ import annotations

import aiohttp_jinja2
import jinja2
from aiohttp import web

from node.ui import admin_home, login
from node.ui.admin_pages import setup as setup_admin_pages
from node.ui.auth import admin_gate
from node.ui.catalogue_site import setup as setup_catalogue_pages
from node.ui.csrf import csrf_protect
from node.ui.i18n import CATALOGUES, LANG_COOKIE, LANGUAGES, Catalogues
from node.ui.render import ADMIN_NAV, STATIC, TEMPLATES, ui_errors
from node.ui.security import add_security_headers, is_https, local_path
from node.web.protocol_routes import NODE

LANG_COOKIE_SECONDS = 365 * 24 * 3600


async def switch_language(request: web.Request) -> web.StreamResponse:
    """``GET /lang/{code}?next=/path``: remember the language, go back (local paths only)."""
    code = request.match_info["code"]
    if code not in LANGUAGES:
        raise web.HTTPNotFound()
    response = web.Response(status=303, headers={"Location": local_path(request.query.get("next"))})
    # Lax, not Strict: a visitor arriving from the intranet keeps their language.
    response.set_cookie(
        LANG_COOKIE,
        code,
        max_age=LANG_COOKIE_SECONDS,
        path="/",
        secure=is_https(request.app[NODE].settings),
        httponly=True,
        samesite="Lax",
    )
    return response


def setup(app: web.Application) -> None:
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        default_helpers=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    app[CATALOGUES] = Catalogues.load()
    app[ADMIN_NAV] = []
    app.on_response_prepare.append(add_security_headers)
    app.middlewares.extend([ui_errors, admin_gate, csrf_protect])
    app.router.add_static("/static/", STATIC, name="static", append_version=True)
    app.router.add_get("/lang/{code}", switch_language)
    login.setup(app)
    admin_home.setup(app)
    setup_catalogue_pages(app)
    setup_admin_pages(app)
