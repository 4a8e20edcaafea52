"""Who may see the catalogue pages: the ``catalogue_page`` setting.

- ``public``: anyone.
- ``token``: a logged-in admin, or a visitor with a ``portal``, ``calendar``
  or ``admin`` token.  The token comes once in ``?token=`` (a link from the
  intranet) and is then kept in the ``openseats_catalogue`` cookie
  (HttpOnly, SameSite=Lax, so a visitor arriving from the intranet keeps
  it).  It is checked on every request, so revoking it takes effect at once.
- ``login``: a logged-in admin only.

A visitor who may not see the catalogue gets ``catalogue/denied.html`` in
their language (401 without a token, 403 with a revoked or unknown one),
never a stack trace.  Handlers are wrapped with :func:`catalogue_view` and
receive the :class:`Access`; its ``token`` is what the webcal link and the
widget snippet carry when the calendar API needs one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from node.db import tokens as token_repo
from node.ui.auth import LOGIN_PATH, Handler, current_admin
from node.ui.render import render
from node.ui.security import is_https
from node.web.protocol_routes import NODE

TOKEN_COOKIE = "openseats_catalogue"  # noqa: S105 (a cookie name)
TOKEN_COOKIE_SECONDS = 30 * 24 * 3600
TOKEN_ROLES = frozenset({"portal", "calendar", "admin"})


@dataclass(frozen=True)
class Access:
    """What let this visitor in; ``token`` is a valid token they brought, if any."""

    token: str | None = None
    from_query: bool = False
    denied: int | None = None
    reason: str = ""


AccessHandler = Callable[[web.Request, Access], Awaitable[web.StreamResponse]]


async def _valid(request: web.Request, token: str) -> bool:
    if not token or len(token) > 256:
        return False
    async with request.app[NODE].db.read() as conn:
        return await token_repo.role_of(conn, token) in TOKEN_ROLES


async def check_access(request: web.Request) -> Access:
    """The visitor's :class:`Access` under the node's ``catalogue_page`` mode."""
    mode = request.app[NODE].settings.catalogue_access
    from_query = "token" in request.query
    token = request.query.get("token") if from_query else request.cookies.get(TOKEN_COOKIE)
    valid = token is not None and await _valid(request, token)
    found = Access(token, from_query) if valid else Access()
    if mode == "public":
        return found
    if await current_admin(request) is not None:
        return found
    if mode == "login":
        return Access(denied=401, reason="catalogue.denied_login")
    if valid:
        return found
    if from_query:
        return Access(denied=403, reason="catalogue.denied_bad_token")
    return Access(denied=401, reason="catalogue.denied_token")


def remember_token(request: web.Request, response: web.StreamResponse, access: Access) -> None:
    """Keep a token that came in ``?token=`` in a cookie for the next pages."""
    if access.token is None or not access.from_query:
        return
    if request.cookies.get(TOKEN_COOKIE) == access.token:
        return
    response.set_cookie(
        TOKEN_COOKIE,
        access.token,
        max_age=TOKEN_COOKIE_SECONDS,
        path="/",
        secure=is_https(request.app[NODE].settings),
        httponly=True,
        samesite="Lax",
    )


def catalogue_view(handler: AccessHandler) -> Handler:
    """Run *handler* only for visitors allowed to see the catalogue."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        access = await check_access(request)
        if access.denied is not None:
            denied = await render(
                request,
                "catalogue/denied.html",
                {"reason": access.reason, "login_path": LOGIN_PATH, "status": access.denied},
                status=access.denied,
            )
            if request.cookies.get(TOKEN_COOKIE) and not access.from_query:
                denied.del_cookie(TOKEN_COOKIE, path="/")
            return denied
        response = await handler(request, access)
        remember_token(request, response, access)
        return response

    return wrapped
