"""``/admin/outgoing``: our own employees' reservations at partners, with their state.

The rows come from :meth:`node.reservations.requester.RequestDesk.find`,
as for ``GET /admin/api/v1/reservations/outgoing``.  Titles and
organisation names come from partners and are shown as text only.
"""

from __future__ import annotations

from aiohttp import web

from node.ui.admin_common import LABELS, RESERVATION_STATE, node_of, when_for
from node.ui.auth import require_admin
from node.ui.render import add_admin_nav, render

PATH = "/admin/outgoing"
STATE_OPTIONS = [("", "admin.state_any"), *RESERVATION_STATE.items()]


async def outgoing_page(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    state = request.query.get("state", "")
    if state not in RESERVATION_STATE:
        state = ""
    rows = await node_of(request).requests.find(state=state or None, limit=1000)
    context = {
        "rows": rows,
        "state": state,
        "state_options": STATE_OPTIONS,
        "labels": LABELS,
        "when": when_for(request),
    }
    return await render(request, "admin/outgoing.html", context)


def setup(app: web.Application) -> None:
    app.router.add_get(PATH, outgoing_page)
    add_admin_nav(app, PATH, "nav.outgoing")
