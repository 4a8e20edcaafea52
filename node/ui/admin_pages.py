"""The admin pages after the overview, registered in navigation order.

``/admin/sessions/new`` must be routed before ``/admin/sessions/{id}``,
so :mod:`~node.ui.admin_sessions` comes before the detail page.
"""

from __future__ import annotations

from aiohttp import web

from node.ui import (
    admin_imports_page,
    admin_node,
    admin_outgoing,
    admin_partners,
    admin_session_detail,
    admin_sessions,
)


def setup(app: web.Application) -> None:
    admin_sessions.setup(app)
    admin_session_detail.setup(app)
    admin_partners.setup(app)
    admin_outgoing.setup(app)
    admin_imports_page.setup(app)
    admin_node.setup(app)
