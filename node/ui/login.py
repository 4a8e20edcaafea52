"""``/admin/login`` and ``/admin/logout``, with failed logins limited per user and per IP.

Failures are rows in the database (:mod:`node.db.admins`), so the limit
holds across restarts and replicas: at most :data:`MAX_PER_USER` failures
for one username and :data:`MAX_PER_IP` from one client address within
:data:`WINDOW`.  Beyond that every attempt, even with the right password,
gets 429 with the minutes to wait, and the password is not even checked.
A successful login clears the username's failures.  Attempts racing in
parallel may each pass the check before any is recorded; scrypt's cost
keeps that overshoot small.  Unknown users and
wrong passwords get the same answer after the same scrypt work, so the
form does not tell which usernames exist.

The client address is the TCP peer, or behind a reverse proxy listed in
``trusted_proxies`` the client that proxy names in ``X-Forwarded-For``
(:mod:`node.web.forwarded`).  Behind a proxy that is not listed, the
per-IP limit counts everyone together, while the per-user limit still works.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta

from aiohttp import web

from node.db import admins as admin_repo
from node.ui.accounts import normalise_username
from node.ui.auth import HOME_PATH, LOGIN_PATH, current_admin, end_session, start_session
from node.ui.i18n import Message
from node.ui.passwords import verify_password_async
from node.ui.render import redirect, render
from node.ui.security import local_path
from node.web.forwarded import client_address
from node.web.protocol_routes import NODE

WINDOW = timedelta(minutes=15)
MAX_PER_USER = 5
MAX_PER_IP = 20
LOGOUT_PATH = "/admin/logout"


async def _form(
    request: web.Request,
    *,
    username: str,
    target: str,
    errors: Mapping[str, Message] | None = None,
    form_error: Message | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    context = {
        "values": {"username": username},
        "errors": dict(errors or {}),
        "form_error": form_error,
        "next": target,
    }
    return await render(request, "login.html", context, status=status, headers=headers)


async def login_form(request: web.Request) -> web.StreamResponse:
    target = local_path(request.query.get("next"), HOME_PATH)
    if await current_admin(request) is not None:
        return redirect(request, target)
    return await _form(request, username="", target=target)


async def _wait_minutes(request: web.Request, username: str, client_ip: str) -> int | None:
    """Minutes until this user/address may try again, or ``None`` if it may now."""
    node = request.app[NODE]
    now = node.clock.now()
    since = now - WINDOW
    async with node.db.read() as conn:
        checks = (
            (await admin_repo.failures_for_user(conn, username, since), MAX_PER_USER),
            (await admin_repo.failures_from_ip(conn, client_ip, since), MAX_PER_IP),
        )
    oldest = [f.oldest for f, limit in checks if f.count >= limit and f.oldest is not None]
    if not oldest:
        return None
    return max(1, math.ceil((min(oldest) + WINDOW - now).total_seconds() / 60))


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username = normalise_username(str(form.get("username", "")))
    password = str(form.get("password", ""))
    target = local_path(str(form.get("next", "")), HOME_PATH)
    errors = {
        name: Message("form.required")
        for name, value in (("username", username), ("password", password))
        if not value
    }
    if errors:
        return await _form(request, username=username, target=target, errors=errors, status=400)
    client_ip = client_address(request, request.app[NODE].settings.trusted_networks)
    wait = await _wait_minutes(request, username, client_ip)
    if wait is not None:
        return await _form(
            request,
            username=username,
            target=target,
            form_error=Message("login.rate_limited", {"minutes": wait}),
            status=429,
            headers={"Retry-After": str(wait * 60)},
        )
    node = request.app[NODE]
    async with node.db.read() as conn:
        user = await admin_repo.find_user(conn, username)
    if user is None or not await verify_password_async(password, user.password_hash):
        if user is None:  # the same work as a real check, so timing tells nothing
            await verify_password_async(password, None)
        now = node.clock.now()
        async with node.db.write() as conn:
            await admin_repo.record_failure(conn, username, client_ip, now, now - WINDOW)
        return await _form(
            request,
            username=username,
            target=target,
            errors={"password": Message("login.invalid")},
            form_error=Message("login.invalid"),
            status=400,
        )
    async with node.db.write() as conn:
        await admin_repo.clear_failures(conn, username)
    response = redirect(request, target)
    await start_session(request, response, user.id)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    response = redirect(request, LOGIN_PATH, flash=("success", "login.logged_out"))
    await end_session(request, response)
    return response


def setup(app: web.Application) -> None:
    app.router.add_get(LOGIN_PATH, login_form)
    app.router.add_post(LOGIN_PATH, login)
    app.router.add_post(LOGOUT_PATH, logout)
