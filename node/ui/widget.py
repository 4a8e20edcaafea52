"""``/widget``: the catalogue as a compact list for an intranet page (SharePoint & co.).

An intranet page embeds it with the ``<iframe>`` snippet the catalogue page
offers; only the origins in ``widget_frame_ancestors`` may frame it
(:mod:`node.ui.security`).  It takes the same filters as ``/`` plus
``limit`` (1–50) and ``lang`` (``de``/``en``: a cookie is not sent inside a
cross-site frame, so the snippet names the language).  Its links open the
session page in a new tab (``target="_blank" rel="noopener"``), as the
visitor's cookies work only in a top-level page; a token the widget got
in ``?token=`` rides along on those links.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from node.runtime import NodeServices
from node.ui.catalogue_access import Access, catalogue_view
from node.ui.catalogue_pages import find_entries, query_string
from node.ui.entry_view import entry_view
from node.ui.i18n import CATALOGUES, LANGUAGES, translator_for
from node.ui.render import render
from node.web.protocol_routes import NODE

DEFAULT_LIMIT = 20
MAX_LIMIT = 50


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "")
    return min(max(int(raw), 1), MAX_LIMIT) if raw.isascii() and raw.isdigit() else DEFAULT_LIMIT


@catalogue_view
async def widget(request: web.Request, access: Access) -> web.StreamResponse:
    node: NodeServices = request.app[NODE]
    lang = request.query.get("lang", "")
    t = request.app[CATALOGUES].translator(lang) if lang in LANGUAGES else translator_for(request)
    listing = await find_entries(request, _limit(request), paged=False)
    token = access.token if access.from_query else None
    suffix = "?" + urlencode({"token": token}) if token else ""
    context = {
        "t": t,
        "lang": t.lang,
        "entries": [entry_view(t, entry, node.clock.now()) for entry in listing.entries],
        "errors": listing.errors,
        "link_suffix": suffix,
        "all_href": "/?" + query_string(listing.values, token=token),
    }
    return await render(request, "catalogue/widget.html", context)


def setup(app: web.Application) -> None:
    app.router.add_get("/widget", widget)
