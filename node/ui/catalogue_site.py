"""The catalogue's pages for employees: one call wires them all (from :mod:`node.ui.site`).

- ``/`` and ``/sessions/{sid@origin}``: :mod:`node.ui.catalogue_pages`;
- ``/sessions/{id}/reserve``, ``/reservations/{uuid}?k=…`` (``.ics``,
  ``/cancel``): :mod:`node.ui.reserve_pages`;
- ``/widget``: :mod:`node.ui.widget`;
- who may see them: :mod:`node.ui.catalogue_access` (``catalogue_page``).
"""

from __future__ import annotations

from aiohttp import web

from node.ui import catalogue_pages, reserve_pages, widget


def setup(app: web.Application) -> None:
    catalogue_pages.setup(app)
    reserve_pages.setup(app)
    widget.setup(app)
