"""``GET /api/v1/openapi.yaml``: the API contract, for portal developers.

The document describes ``/api/v1`` and ``/admin/api/v1`` (OpenAPI 3.1).
It lives in this package as ``node/web/openapi.yaml``, so it is part of
every install: an editable install reads it from the source tree, a wheel
carries it as package data, and ``importlib.resources`` finds it either
way.  ``docs/openapi.yaml`` is a symlink to the same file, so there is one
copy and nothing to keep in sync; tests check the document against the
app's routes and fuzz a running node with it (``tests/node/test_openapi.py``,
``tests/node/test_schemathesis.py``).

The route needs no token: the contract is public, like the protocol's
SPEC.md.  The bytes are read once at startup and served with an ETag.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from aiohttp import web

PATH = "/api/v1/openapi.yaml"
CONTENT_TYPE = "application/yaml"


def document() -> bytes:
    """The OpenAPI document as shipped with the package."""
    return resources.files("node.web").joinpath("openapi.yaml").read_bytes()


def setup(app: web.Application) -> None:
    body = document()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'

    async def openapi(request: web.Request) -> web.Response:
        headers = {"ETag": etag, "Cache-Control": "public, max-age=3600"}
        if etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type=CONTENT_TYPE, charset="utf-8", headers=headers)

    app.router.add_get(PATH, openapi)
