"""Which paths are the HTML UI, local redirect targets, and the security headers.

Everything outside the machine interfaces (``/api/``, ``/admin/api/``,
``/protocol/``, ``/.well-known/``) counts as UI: it gets HTML error pages,
CSRF checks and the full set of browser headers.  The headers are set in
``on_response_prepare``, so they are on every response whoever made it
(a handler, an error middleware, aiohttp's own 404, a static file).

- ``Content-Security-Policy``: scripts, styles and images only from the
  node itself; no inline script, no inline style, no ``<base>``, forms post
  only here.
- Framing: ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``,
  except under ``/widget``, which the origins in the
  ``widget_frame_ancestors`` setting may embed (and the node itself).
- ``Referrer-Policy: same-origin`` and ``X-Content-Type-Options: nosniff``
  everywhere, the APIs included (harmless for them).
- ``Cache-Control: no-store`` on admin pages, so Back after logout shows
  nothing.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from node.settings import Settings
from node.web.protocol_routes import NODE

MACHINE_PREFIXES = ("/api/", "/admin/api/", "/protocol/", "/.well-known/")
MACHINE_PATHS = ("/api", "/admin/api", "/protocol")
WIDGET_PREFIX = "/widget"
ADMIN_PREFIX = "/admin"

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}"
)


def is_ui_path(path: str) -> bool:
    return not (path.startswith(MACHINE_PREFIXES) or path in MACHINE_PATHS)


def is_widget_path(path: str) -> bool:
    return path == WIDGET_PREFIX or path.startswith(WIDGET_PREFIX + "/")


def is_admin_page(path: str) -> bool:
    return (path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")) and is_ui_path(path)


def local_path(target: str | None, default: str = "/") -> str:
    """*target* if it is a path on this node (``/x?y``), else *default*.

    Rejects absolute and scheme-relative URLs (``//evil``, ``/\\evil``,
    ``https:x``) and control characters, so ``?next=`` cannot send anyone
    elsewhere.
    """
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(ch == "\\" or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def is_https(settings: Settings) -> bool:
    return settings.base_url.startswith("https://")


def content_security_policy(path: str, settings: Settings) -> str:
    if is_widget_path(path):
        ancestors = " ".join(["'self'", *settings.widget_frame_ancestors])
    else:
        ancestors = "'none'"
    return _CSP.format(ancestors=ancestors)


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: the headers described in the module docstring."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    path = request.path
    if not is_ui_path(path):
        return
    settings = request.app[NODE].settings
    headers["Content-Security-Policy"] = content_security_policy(path, settings)
    if is_widget_path(path):
        headers.popall("X-Frame-Options", None)
        if not settings.widget_frame_ancestors:
            headers["X-Frame-Options"] = "SAMEORIGIN"
    else:
        headers["X-Frame-Options"] = "DENY"
    if is_admin_page(path):
        headers["Cache-Control"] = "no-store"
