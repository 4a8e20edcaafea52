"""Errors a UI handler raises on purpose, and the catalogue keys of error pages.

Raise :class:`PageError` (or any ``web.HTTPException`` of status 400 or
more) from a UI handler or middleware; :func:`node.ui.render.ui_errors`
turns it into ``error.html`` in the visitor's language, with the same
status and headers.  For a mistake in a form, re-render the form with a
field error instead (see :mod:`node.ui`).
"""

from __future__ import annotations

from collections.abc import Mapping

from node.ui.i18n import Message

# The page title per status; the text is the PageError's message, or this.
TITLES: Mapping[int, str] = {
    400: "error.400",
    401: "error.401",
    403: "error.403",
    404: "error.404",
    405: "error.405",
    413: "error.413",
    429: "error.429",
}
TEXTS: Mapping[int, str] = {
    400: "error.400_text",
    401: "error.401_text",
    403: "error.403_text",
    404: "error.404_text",
    405: "error.405_text",
    413: "error.413_text",
    429: "error.429_text",
}
GENERIC_TITLE = "error.generic"
GENERIC_TEXT = "error.generic_text"


class PageError(Exception):
    """An error page: an HTTP status and what to tell the visitor."""

    def __init__(
        self,
        status: int,
        key: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **params: object,
    ) -> None:
        text = key or TEXTS.get(status, GENERIC_TEXT)
        super().__init__(text)
        self.status = status
        self.message = Message(text, params)
        self.headers = dict(headers or {})
