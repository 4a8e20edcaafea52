"""CSRF protection for every unsafe request (POST, PUT, PATCH, DELETE) on UI paths.

A request must carry a token in the form field ``csrf_token`` or, from
JavaScript, the ``X-CSRF-Token`` header; otherwise the answer is a 403
page in the visitor's language and the handler never runs.

- A logged-in admin's token is the one stored with the session
  (:mod:`node.ui.auth`), so it dies with the session.
- An anonymous visitor (the login form, the public catalogue) gets a
  signed double-submit token: a random nonce in the ``openseats_csrf``
  cookie (HttpOnly, SameSite=Strict) and ``HMAC(key, nonce)`` in the form.
  A cross-site page can neither read the cookie nor compute the HMAC,
  whose key is derived from the node's private signing key (as
  :func:`node.web.portal_api._cursor_key` derives the cursor key).  The
  login form always uses this kind, since it comes before any session.

Templates get the token lazily: the cookie is only set on responses whose
page actually contains a form (:func:`node.ui.render.render`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from aiohttp import web

from node.db.admins import UiSession
from node.ui.auth import LOGIN_PATH, Handler, current_admin
from node.ui.errors import PageError
from node.ui.security import is_https, is_ui_path
from node.web.protocol_routes import NODE

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
CSRF_COOKIE = "openseats_csrf"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_NONCE = re.compile(r"[A-Za-z0-9_-]{43}")
_NEW_NONCE = web.RequestKey("ui_csrf_new_nonce", str)


def _key(request: web.Request) -> bytes:
    raw = request.app[NODE].identity.signing_key.private_key.private_bytes_raw()
    return hashlib.sha256(b"openseats-csrf\x00" + raw).digest()


def _sign(request: web.Request, nonce: str) -> str:
    mac = hmac.new(_key(request), nonce.encode("ascii"), "sha256").digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def _cookie_nonce(request: web.Request) -> str | None:
    nonce = request.cookies.get(CSRF_COOKIE, "")
    return nonce if _NONCE.fullmatch(nonce) else None


def _uses_session_token(request: web.Request, admin: UiSession | None) -> bool:
    return admin is not None and request.path != LOGIN_PATH


def token_for(request: web.Request, admin: UiSession | None) -> str:
    """The token a form on this page must send back (see the module docstring)."""
    if admin is not None and _uses_session_token(request, admin):
        return admin.csrf_token
    nonce = _cookie_nonce(request) or request.get(_NEW_NONCE)
    if nonce is None:
        nonce = secrets.token_urlsafe(32)
        request[_NEW_NONCE] = nonce
    return _sign(request, nonce)


def set_cookie_if_new(request: web.Request, response: web.StreamResponse) -> None:
    """Send the nonce cookie when :func:`token_for` made a new one for this page."""
    nonce = request.get(_NEW_NONCE)
    if nonce is not None:
        response.set_cookie(
            CSRF_COOKIE,
            nonce,
            path="/",
            secure=is_https(request.app[NODE].settings),
            httponly=True,
            samesite="Strict",
        )


async def _submitted(request: web.Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.content_type in FORM_TYPES:
        value = (await request.post()).get(CSRF_FIELD)
        if isinstance(value, str):
            return value
    return ""


def _same(a: str, b: str) -> bool:
    return bool(a) and hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


async def is_valid(request: web.Request) -> bool:
    submitted = await _submitted(request)
    admin = await current_admin(request)
    if admin is not None and _uses_session_token(request, admin):
        return _same(submitted, admin.csrf_token)
    nonce = _cookie_nonce(request)
    return nonce is not None and _same(submitted, _sign(request, nonce))


@web.middleware
async def csrf_protect(request: web.Request, handler: Handler) -> web.StreamResponse:
    unsafe = request.method in UNSAFE_METHODS and is_ui_path(request.path)
    if unsafe and not await is_valid(request):
        raise PageError(403, "error.csrf")
    if unsafe and request.content_type in FORM_TYPES:
        # No form field may carry U+0000: PostgreSQL cannot store or compare it.
        fields = await request.post()
        if any(isinstance(v, str) and "\x00" in k + v for k, v in fields.items()):
            raise PageError(400, "error.nul")
    return await handler(request)
