"""Small helpers the admin pages share: times, names of partners, service errors.

The admin pages are a thin layer over the same services as the JSON admin
API (:mod:`node.web.admin_api`): they call those services, and turn what
the services refuse into field errors or one-time messages in the
visitor's language.  Nothing here decides anything about sessions, peers
or reservations.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web

from node.federation.peering import PeeringError
from node.publishing.service import SessionError
from node.runtime import NodeServices
from node.ui.errors import PageError
from node.ui.i18n import language_of
from node.web.protocol_routes import NODE

_FORMATS = {"de": "%d.%m.%Y %H:%M", "en": "%Y-%m-%d %H:%M"}
DEFAULT_TIMEZONE = "Europe/Berlin"

Formatter = Callable[..., str]


def node_of(request: web.Request) -> NodeServices:
    return request.app[NODE]


def when_for(request: web.Request) -> Formatter:
    """``when(dt, tz=None)``: a moment as local wall-clock text for templates."""
    pattern = _FORMATS.get(language_of(request), _FORMATS["de"])

    def when(value: datetime | None, tz: str | None = None) -> str:
        if value is None:
            return "–"
        try:
            zone = ZoneInfo(tz or DEFAULT_TIMEZONE)
        except (KeyError, ValueError):
            zone = ZoneInfo(DEFAULT_TIMEZONE)
        return value.astimezone(zone).strftime(pattern)

    return when


async def peer_names(request: web.Request) -> dict[str, str]:
    """Each partner's display name by node id (untrusted text: never ``|safe``)."""
    return {row.node_id: row.display_name for row in await node_of(request).peering.list()}


def not_found_for(exc: SessionError | PeeringError) -> PageError:
    """A 404 page for a service's ``not_found``; anything else is unexpected here."""
    if exc.status == 404:
        return PageError(404)
    return PageError(exc.status if exc.status >= 400 else 400)


def int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


# Catalogue keys for stored words, spelled out so a test can check that each exists.
SESSION_STATUS = {
    "scheduled": "admin.status_scheduled",
    "rescheduled": "admin.status_rescheduled",
    "cancelled": "admin.status_cancelled",
}
RESERVATION_STATE = {
    "requested": "admin.state_requested",
    "held": "admin.state_held",
    "confirmed": "admin.state_confirmed",
    "waitlisted": "admin.state_waitlisted",
    "pending": "admin.state_pending",
    "rejected": "admin.state_rejected",
    "cancelled": "admin.state_cancelled",
}
PEER_STATE = {
    "pending_out": "admin.peer_pending_out",
    "pending_in": "admin.peer_pending_in",
    "active": "admin.peer_active",
    "suspended": "admin.peer_suspended",
    "declined": "admin.peer_declined",
}
LABELS = {"status": SESSION_STATUS, "state": RESERVATION_STATE, "peer": PEER_STATE}
