"""``/admin/node``: this node's fingerprint, key rotation, and API tokens.

The fingerprint is shown large, in its groups of four, so an admin can read
it to a partner over the phone.  Rotating the key asks first.  A new token
is shown exactly once, on the page that answers the form (never stored in
a cookie or a redirect); only its hash is kept.  Tokens are checked by
:class:`~node.web.admin_api.NewToken`, as in the admin API.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from node.db import tokens as token_repo
from node.identity import RotationRefused
from node.ui.admin_common import int_or_none, node_of, when_for
from node.ui.auth import require_admin
from node.ui.errors import PageError
from node.ui.forms import FieldErrors, confirmed, read_form
from node.ui.i18n import Message
from node.ui.render import add_admin_nav, redirect, render
from node.web.admin_api import NewToken

PATH = "/admin/node"
ROLE_OPTIONS = [
    ("portal", "admin.role_portal"),
    ("calendar", "admin.role_calendar"),
    ("admin", "admin.role_admin"),
]


async def _page(
    request: web.Request,
    *,
    values: dict[str, str] | None = None,
    errors: FieldErrors | None = None,
    new_token: str | None = None,
    status: int = 200,
) -> web.Response:
    node = node_of(request)
    async with node.db.read() as conn:
        tokens = await token_repo.list_tokens(conn)
    context = {
        "identity": node.identity,
        "tokens": tokens,
        "role_options": ROLE_OPTIONS,
        "roles": dict(ROLE_OPTIONS),
        "values": values or {"role": "portal", "label": ""},
        "errors": errors or {},
        "new_token": new_token,
        "when": when_for(request),
    }
    headers = {"Cache-Control": "no-store"}
    return await render(request, "admin/node.html", context, status=status, headers=headers)


async def node_page(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    return await _page(request)


async def rotate(request: web.Request) -> web.StreamResponse:
    """GET asks; POST with ``confirmed=yes`` makes a new key current."""
    await require_admin(request)
    if request.method == "POST" and confirmed(await read_form(request)):
        node = node_of(request)
        try:
            await node.identity.rotate(node.clock.now())
        except RotationRefused:  # too many old keys still within their grace period
            return redirect(request, PATH, flash=("error", "admin.key_rotation_refused"))
        return redirect(request, PATH, flash=("success", "admin.key_rotated"))
    return await render(request, "admin/node_rotate.html", {})


async def create_token(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    form = await read_form(request)
    values = {"role": form.get("role", ""), "label": form.get("label", "")}
    try:
        data = NewToken(**values)
    except ValidationError as exc:
        errors: FieldErrors = {}
        for error in exc.errors(include_url=False):
            name = str(error["loc"][0]) if error["loc"] else "role"
            key = "admin.err_role" if name == "role" else "admin.err_too_long"
            errors.setdefault(name, Message(key, {"max": 200}))
        return await _page(request, values=values, errors=errors, status=400)
    node = node_of(request)
    async with node.db.write() as conn:
        token = await token_repo.create(conn, data.role, data.label, node.clock.now())
    return await _page(request, new_token=token)


async def revoke_token(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    token_id = int_or_none(request.match_info["token_id"])
    node = node_of(request)
    if token_id is None:
        raise PageError(404)
    async with node.db.write() as conn:
        found = await token_repo.revoke(conn, token_id, node.clock.now())
    if not found:
        raise PageError(404)
    return redirect(request, PATH, flash=("success", "admin.token_revoked"))


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get(PATH, node_page)
    r.add_get(f"{PATH}/rotate", rotate)
    r.add_post(f"{PATH}/rotate", rotate)
    r.add_post(f"{PATH}/tokens", create_token)
    r.add_post(f"{PATH}/tokens/{{token_id:\\d+}}/revoke", revoke_token)
    add_admin_nav(app, PATH, "nav.node")
