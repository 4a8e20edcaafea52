"""Who is logged in: server-side sessions behind an HttpOnly cookie.

Logging in creates a random token; the browser keeps it in the
``openseats_admin`` cookie (HttpOnly, SameSite=Strict, Path=/, Secure when
the node's base URL is https) and the database keeps only its SHA-256,
the expiry and the session's CSRF token.  Every admin page is behind
:func:`admin_gate`: a request for ``/admin/...`` (not the JSON API, not the
login page) without a valid session is sent to the login page with
``next`` set, before any handler runs.  So a page a later helper forgets to
protect is still protected; handlers call :func:`require_admin` to get the
:class:`~node.db.admins.UiSession` (looked up once per request).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from aiohttp import web

from node.db import admins as admin_repo
from node.db.admins import UiSession
from node.ui.security import is_admin_page, is_https
from node.web.protocol_routes import NODE

SESSION_COOKIE = "openseats_admin"
SESSION_LIFETIME = timedelta(hours=12)
LOGIN_PATH = "/admin/login"
HOME_PATH = "/admin/"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class _Lookup:
    session: UiSession | None


_LOOKUP = web.RequestKey("ui_admin_lookup", _Lookup)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def current_admin(request: web.Request) -> UiSession | None:
    """The logged-in admin's session, or ``None``; one database read per request."""
    if _LOOKUP in request:
        return request[_LOOKUP].session
    session = None
    token = request.cookies.get(SESSION_COOKIE)
    if token and len(token) <= 128:
        node = request.app[NODE]
        async with node.db.read() as conn:
            session = await admin_repo.find_session(conn, token_hash(token), node.clock.now())
    request[_LOOKUP] = _Lookup(session)
    return session


def login_redirect(request: web.Request) -> web.HTTPSeeOther:
    """303 to the login page; ``next`` brings a GET back where it was."""
    target = request.path_qs if request.method in ("GET", "HEAD") else HOME_PATH
    return web.HTTPSeeOther(f"{LOGIN_PATH}?{urlencode({'next': target})}")


async def require_admin(request: web.Request) -> UiSession:
    """The logged-in admin, or raise a redirect to the login page."""
    session = await current_admin(request)
    if session is None:
        raise login_redirect(request)
    return session


@web.middleware
async def admin_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Deny by default: every admin page needs a session, except the login page."""
    path = request.path
    if is_admin_page(path) and path != LOGIN_PATH:
        await require_admin(request)
    return await handler(request)


async def start_session(request: web.Request, response: web.StreamResponse, user_id: int) -> None:
    """Create a session for *user_id* and set its cookie on *response*."""
    node = request.app[NODE]
    token = secrets.token_urlsafe(32)
    now = node.clock.now()
    async with node.db.write() as conn:
        await admin_repo.create_session(
            conn,
            user_id=user_id,
            token_hash=token_hash(token),
            csrf_token=secrets.token_urlsafe(32),
            now=now,
            expires_at=now + SESSION_LIFETIME,
        )
        await admin_repo.touch_login(conn, user_id, now)
        # A session from before is ended, never carried over (no fixation).
        if old := request.cookies.get(SESSION_COOKIE):
            await admin_repo.delete_session(conn, token_hash(old))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/",
        secure=is_https(node.settings),
        httponly=True,
        samesite="Strict",
    )


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        async with request.app[NODE].db.write() as conn:
            await admin_repo.delete_session(conn, token_hash(token))
    response.del_cookie(
        SESSION_COOKIE,
        path="/",
        secure=is_https(request.app[NODE].settings),
        httponly=True,
        samesite="Strict",
    )
