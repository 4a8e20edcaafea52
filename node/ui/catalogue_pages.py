"""``/``: the merged catalogue for employees, and ``/sessions/{id}``: one session.

The catalogue page filters by date, format, language, organisation and
open seats, searches titles and descriptions, and pages with the portal
API's signed cursor: the filters are read by
:func:`node.web.portal_api.build_query`, the rows come from
:func:`node.db.catalogue.search`, so the page and the API always agree.
A filter the API refuses becomes a field error next to that filter.

The page also offers the ``webcal://`` subscription of the catalogue ICS
(with the visitor's token when the API needs one) and the ``<iframe>``
snippet for the widget (:mod:`node.ui.widget`).  Who may see these pages
is the ``catalogue_page`` setting (:mod:`node.ui.catalogue_access`).

The session page shows the host organisation, seats left and the
description, and for a partner's session the reservation form
(:mod:`node.ui.reserve_pages`); a session of our own organisation is booked
through its own system, so it has no form.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from node.catalogue.entry import CatalogueEntry
from node.db import catalogue as catalogue_repo
from node.db import peers as peer_repo
from node.db.catalogue import Query
from node.runtime import NodeServices
from node.ui.catalogue_access import Access, catalogue_view
from node.ui.entry_view import FORMATS, LANGUAGES, entry_view, format_label, language_label
from node.ui.errors import PageError
from node.ui.forms import FieldErrors
from node.ui.i18n import Message, translator_for
from node.ui.render import render
from node.web.errors import ApiError
from node.web.portal_api import build_query, encode_cursor
from node.web.protocol_routes import NODE

FILTERS = ("q", "from", "to", "format", "language", "org", "open_seats")
PAGE_SIZE = 50
FILTER_ERRORS = {
    "from": "catalogue.error_date",
    "to": "catalogue.error_to",
    "format": "catalogue.error_format",
    "open_seats": "catalogue.error_filter",
    "cursor": "catalogue.error_cursor",
}


@dataclass
class Listing:
    """The filters as typed, the entries found, and what went wrong."""

    values: dict[str, str]
    entries: list[CatalogueEntry] = field(default_factory=list)
    next_cursor: str | None = None
    errors: FieldErrors = field(default_factory=dict)


def filter_values(request: web.Request) -> dict[str, str]:
    values = {name: request.query.get(name, "").strip() for name in FILTERS}
    values["open_seats"] = "true" if values["open_seats"] in ("true", "yes", "on") else ""
    return values


def _api_query(values: dict[str, str], cursor: str | None) -> dict[str, str]:
    """The filters as the portal API reads them; a date ``to`` includes that day."""
    query = {name: value for name, value in values.items() if value}
    to = query.get("to", "")
    if len(to) == 10:
        with contextlib.suppress(ValueError):  # build_query names the mistake
            query["to"] = (date.fromisoformat(to) + timedelta(days=1)).isoformat()
    if cursor:
        query["cursor"] = cursor
    return query


async def find_entries(request: web.Request, limit: int, *, paged: bool = True) -> Listing:
    """The entries for the filters in the request's query, via the portal API's rules."""
    node: NodeServices = request.app[NODE]
    listing = Listing(filter_values(request))
    cursor = request.query.get("cursor") if paged else None
    clone = request.clone(rel_url=request.rel_url.with_query(_api_query(listing.values, cursor)))
    try:
        query = build_query(clone, extra={"cursor"}, max_limit=limit, default_limit=limit)
    except ApiError as exc:
        name = exc.field if exc.field in FILTERS else "q"
        listing.errors[name] = Message(FILTER_ERRORS.get(exc.field or "", "catalogue.error_filter"))
        return listing
    wanted = Query(**{**query.__dict__, "limit": query.limit + 1})
    async with node.db.read() as conn:
        entries = await catalogue_repo.search(conn, wanted, node.settings.registration_template)
    listing.entries = entries[: query.limit]
    if paged and len(entries) > query.limit and listing.entries:
        listing.next_cursor = encode_cursor(node, listing.entries[-1])
    return listing


async def organisations(node: NodeServices, chosen: str) -> list[tuple[str, str]]:
    """``(node id, name)`` for the organisation filter: this node and its partners."""
    async with node.db.read() as conn:
        peers = await peer_repo.list_peers(conn)
    found = [(node.settings.node_id, node.settings.display_name)]
    found += sorted(
        ((p.node_id, p.display_name) for p in peers if p.state == "active"),
        key=lambda pair: pair[1].casefold(),
    )
    if chosen and chosen not in {node_id for node_id, _ in found}:
        found.append((chosen, chosen))
    return found


def query_string(values: dict[str, str], **extra: str | None) -> str:
    kept = {name: value for name, value in values.items() if value}
    kept.update({name: value for name, value in extra.items() if value})
    return urlencode(kept)


def webcal_url(node: NodeServices, access: Access) -> str:
    """The catalogue ICS as ``webcal://``; with the visitor's token when the API needs one."""
    host = node.settings.base_url.split("://", 1)[1]
    url = f"webcal://{host}/api/v1/catalogue.ics"
    if not node.settings.public_catalogue and access.token:
        url += "?" + urlencode({"token": access.token})
    return url


def widget_snippet(node: NodeServices, values: dict[str, str], access: Access, lang: str) -> str:
    """The ``<iframe>`` an intranet page pastes in, with the page's current filters."""
    wanted = {name: value for name, value in values.items() if value and name != "q"}
    wanted["lang"] = lang
    if node.settings.catalogue_access != "public" and access.token:
        wanted["token"] = access.token
    src = f"{node.settings.base_url}/widget?{urlencode(wanted)}"
    title = f"{node.settings.display_name} – Peer Learning"
    return (
        f'<iframe src="{_attr(src)}" title="{_attr(title)}" width="100%" height="600" '
        'loading="lazy"></iframe>'
    )


def _attr(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )


@catalogue_view
async def catalogue_page(request: web.Request, access: Access) -> web.StreamResponse:
    node: NodeServices = request.app[NODE]
    t = translator_for(request)
    listing = await find_entries(request, PAGE_SIZE)
    now = node.clock.now()
    context: dict[str, Any] = {
        "values": listing.values,
        "errors": listing.errors,
        "entries": [entry_view(t, entry, now) for entry in listing.entries],
        "next_href": (
            "/?" + query_string(listing.values, cursor=listing.next_cursor)
            if listing.next_cursor
            else None
        ),
        "format_options": [("", "catalogue.any"), *[(f, format_label(f)) for f in FORMATS]],
        "language_options": [
            ("", t("catalogue.any")),
            *[(code, language_label(t, code)) for code in LANGUAGES],
        ],
        "org_options": [
            ("", t("catalogue.any")),
            *await organisations(node, listing.values["org"]),
        ],
        "webcal_url": webcal_url(node, access),
        "webcal_needs_token": not node.settings.public_catalogue and access.token is None,
        "widget_snippet": widget_snippet(node, listing.values, access, t.lang),
        "widget_origins": node.settings.widget_frame_ancestors,
    }
    return await render(
        request, "catalogue/index.html", context, status=400 if listing.errors else 200
    )


async def find_entry(node: NodeServices, entry_id: str) -> CatalogueEntry:
    """The entry ``sid@origin`` or a 404 page."""
    session_id, at, origin = entry_id.rpartition("@")
    entry = None
    if session_id and at and origin:
        async with node.db.read() as conn:
            entry = await catalogue_repo.get(
                conn, origin, session_id, node.settings.registration_template
            )
    if entry is None:
        raise PageError(404, "catalogue.session_not_found")
    return entry


async def session_page_response(
    request: web.Request,
    entry: CatalogueEntry,
    *,
    values: dict[str, str] | None = None,
    errors: FieldErrors | None = None,
    form_error: Message | None = None,
    status: int = 200,
) -> web.Response:
    """The session page; the reservation handler renders it again with errors."""
    node: NodeServices = request.app[NODE]
    t = translator_for(request)
    shown = {"display_name": "", "email": "", **(values or {})}
    # A fresh form gets a new id; a form shown again keeps its own (one booking).
    shown["form_id"] = shown.get("form_id") or secrets.token_urlsafe(16)
    context = {
        "view": entry_view(t, entry, node.clock.now()),
        "values": shown,
        "errors": errors or {},
        "form_error": form_error,
    }
    return await render(request, "catalogue/session.html", context, status=status)


@catalogue_view
async def session_page(request: web.Request, access: Access) -> web.StreamResponse:
    entry = await find_entry(request.app[NODE], request.match_info["entry_id"])
    return await session_page_response(request, entry)


def setup(app: web.Application) -> None:
    app.router.add_get("/", catalogue_page)
    app.router.add_get("/sessions/{entry_id}", session_page)
