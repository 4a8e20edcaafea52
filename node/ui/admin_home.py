"""``/admin/``: the overview an admin lands on after logging in.

For now it says who is logged in and offers the logout button; the pages
for sessions, partners and reservations add themselves to the navigation
with :func:`node.ui.render.add_admin_nav` and may add cards here.  It is
also the smallest example of an admin page (see :mod:`node.ui`).
"""

from __future__ import annotations

from aiohttp import web

from node.ui.admin_overview import overview_context
from node.ui.auth import HOME_PATH, require_admin
from node.ui.render import add_admin_nav, redirect, render


async def overview(request: web.Request) -> web.StreamResponse:
    admin = await require_admin(request)
    context = {"username": admin.username, **await overview_context(request)}
    return await render(request, "admin/overview.html", context)


async def to_overview(request: web.Request) -> web.StreamResponse:
    return redirect(request, HOME_PATH)


def setup(app: web.Application) -> None:
    app.router.add_get("/admin", to_overview)
    app.router.add_get(HOME_PATH, overview)
    add_admin_nav(app, HOME_PATH, "nav.overview")
