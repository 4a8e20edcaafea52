"""What the overview at ``/admin/`` shows: peers' health and sessions that need action.

Peers come with their last sync, backoff, rejected items and dead letters
(:func:`node.ui.admin_partners.peer_statuses`).  Sessions need action when
reservations wait for approval or when few seats are left.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from node.db.sessions import SessionRow
from node.ui.admin_common import LABELS, node_of, when_for
from node.ui.admin_partners import peer_statuses

NEARLY_FULL = 0.8


@dataclass(frozen=True)
class NeedsAction:
    session: SessionRow
    pending: int
    nearly_full: bool


def is_nearly_full(row: SessionRow) -> bool:
    return row.is_open and row.seats_taken >= max(1, row.open_seats * NEARLY_FULL)


async def overview_context(request: web.Request) -> dict[str, Any]:
    node = node_of(request)
    pending = Counter(row.session_id for row in await node.host.pending())
    sessions = await node.sessions.list(limit=1000)
    now = node.clock.now()
    actions = [
        NeedsAction(row, pending.get(row.id, 0), is_nearly_full(row))
        for row in sessions
        if row.status != "cancelled"
        and row.start_at > now
        and (pending.get(row.id) or is_nearly_full(row))
    ]
    return {
        "statuses": await peer_statuses(request),
        "actions": actions,
        "when": when_for(request),
        "labels": LABELS,
    }
