"""The OpenAPI document agrees with the code (issue 7, API contract).

- it is a valid OpenAPI 3.1 document (openapi-spec-validator);
- its operations are exactly the app's routes under ``/api/v1`` and
  ``/admin/api/v1`` (aiohttp's ``{id}`` and ``{action:a|b}`` templates
  normalised to ``{id}`` and ``{action}``; the HEAD routes aiohttp adds for
  each GET left out);
- every operation documents a 4xx answer, and every error answer has the
  error body, a copy of ``schemas/error.schema.json`` that must stay equal;
- the request bodies say what the pydantic models behind the handlers
  accept: the same members, required members, types, enums, patterns,
  lengths and bounds;
- a running node serves the same bytes at ``GET /api/v1/openapi.yaml``,
  without a token, and the packaged document is the one in ``docs/``.

That the answers match the document is what ``test_schemathesis.py`` checks
against a running node.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate

from node.app import create_app
from node.publishing.input import OpeningInput, SessionInput
from node.reservations.portal_input import PortalRequest
from node.settings import Settings
from node.web import openapi_route
from node.web.admin_api import AddPeer, NewToken
from node.web.admin_imports import UrlImport
from node.web.admin_reservations import CapInput
from tests.node.conftest import NodeFactory

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "openapi.yaml"
PREFIXES = ("/api/v1/", "/admin/api/v1/")
METHODS = {"get", "put", "post", "delete", "patch"}
#: Operations without a 4xx of their own would be listed here, with the reason.
NO_CLIENT_ERROR: dict[tuple[str, str], str] = {}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return dict(yaml.safe_load(DOCS.read_text(encoding="utf-8")))


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def resolve(spec: dict[str, Any], node: Any) -> Any:
    """Follow ``$ref`` (local JSON pointers) until a real object."""
    while isinstance(node, dict) and "$ref" in node and len(node) == 1:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def test_the_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_operations_are_exactly_the_apps_routes(spec: dict[str, Any], tmp_path: Path) -> None:
    settings = Settings(
        node_id="lex.openseats.test",
        base_url="http://127.0.0.1:9",
        display_name="LEX",
        data_dir=tmp_path,
    )
    app = create_app(settings, run_scheduler=False)
    routes = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method in ("HEAD", "*") or not path.startswith(PREFIXES):
            continue
        routes.add((route.method, re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path)))
    documented = set(operations(spec))
    assert routes - documented == set(), "routes missing from docs/openapi.yaml"
    assert documented - routes == set(), "documented operations the app does not have"
    assert len(routes) >= 45


def test_every_operation_documents_client_errors_with_the_error_body(
    spec: dict[str, Any],
) -> None:
    error_ref = "#/components/schemas/Error"
    for key, operation in operations(spec).items():
        answers = {code: resolve(spec, answer) for code, answer in operation["responses"].items()}
        client_errors = [code for code in answers if code.startswith("4")]
        assert client_errors or key in NO_CLIENT_ERROR, f"{key}: no 4xx documented"
        for code, answer in answers.items():
            if code < "400":
                continue
            schema = answer["content"]["application/json"]["schema"]
            parts = schema.get("allOf", [schema])
            assert {"$ref": error_ref} in parts, f"{key} {code}: not the error body"
            codes = [p["properties"]["code"]["enum"] for p in parts if "properties" in p]
            assert codes, f"{key} {code}: the error codes are not listed"
            assert all(re.fullmatch(r"[a-z][a-z0-9_]*", c) for c in codes[0]), codes


def test_the_error_body_is_the_published_error_schema(spec: dict[str, Any]) -> None:
    published = json.loads((ROOT / "schemas" / "error.schema.json").read_text(encoding="utf-8"))
    for key in ("$schema", "$id"):
        published.pop(key)
    assert spec["components"]["schemas"]["Error"] == published


# --- request bodies against the pydantic models ------------------------------------------

ANNOTATIONS = {"title", "description", "example", "examples"}


def normalise(schema: Any, root: dict[str, Any], *, keep_default: bool = True) -> Any:
    """A schema reduced to what validation means, comparable across both sources.

    ``$ref`` resolved against *root*; titles and descriptions dropped;
    ``const`` written as a one-value ``enum``; ``default: null`` dropped (it
    only says "optional"), every default without *keep_default*; ``anyOf``
    as a sorted list.
    """
    if isinstance(schema, list):
        return [normalise(item, root, keep_default=keep_default) for item in schema]
    if not isinstance(schema, dict):
        return schema
    while "$ref" in schema:
        ref = schema["$ref"]
        target: Any = root
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        dropped = key == "default" and (value is None or not keep_default)
        if key in ANNOTATIONS or key == "$defs" or dropped:
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "properties":
            out[key] = {k: normalise(v, root, keep_default=keep_default) for k, v in value.items()}
        elif key == "required":
            out[key] = sorted(value)
        elif key == "anyOf":
            out[key] = sorted(
                (normalise(v, root, keep_default=keep_default) for v in value),
                key=lambda v: json.dumps(v, sort_keys=True),
            )
        else:
            out[key] = normalise(value, root, keep_default=keep_default)
    return out


BODIES = {
    "SessionInput": SessionInput,
    "Opening": OpeningInput,
    "AddPeer": AddPeer,
    "NewToken": NewToken,
    "UrlImport": UrlImport,
    "CapInput": CapInput,
    "PortalReservationRequest": PortalRequest,
}
#: Rules a model validator enforces and the document states as schema keywords.
VALIDATOR_RULES = {("Opening", "audience"): "minItems"}


def _without_rule(schema: dict[str, Any], rule: str) -> dict[str, Any]:
    return {
        **schema,
        "anyOf": [{k: v for k, v in part.items() if k != rule} for part in schema["anyOf"]],
    }


@pytest.mark.parametrize("name", sorted(BODIES))
def test_request_bodies_match_the_models(spec: dict[str, Any], name: str) -> None:
    model = BODIES[name].model_json_schema()
    documented = normalise(spec["components"]["schemas"][name], spec)
    expected = normalise(model, model)
    # A model's default_factory (languages = ["de"]) has no default in its JSON Schema.
    for prop, schema in documented["properties"].items():
        if "default" in schema and "default" not in expected["properties"][prop]:
            schema.pop("default")
        if (name, prop) in VALIDATOR_RULES:
            documented["properties"][prop] = _without_rule(schema, VALIDATOR_RULES[name, prop])
    expected.pop("type", None), documented.pop("type", None)
    assert documented == expected


def test_a_patch_takes_any_member_of_a_session(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    patch = normalise(schemas["SessionPatch"], spec, keep_default=False)
    full = normalise(schemas["SessionInput"], spec, keep_default=False)
    assert "required" not in patch
    assert patch["properties"] == full["properties"]
    assert patch["additionalProperties"] is False


# --- serving it ----------------------------------------------------------------------------


def test_the_packaged_document_is_the_one_in_docs() -> None:
    assert openapi_route.document() == DOCS.read_bytes()
    # One file, not two copies: docs/ links to the package, which ships it.
    assert DOCS.is_symlink()
    assert DOCS.resolve() == (ROOT / "node" / "web" / "openapi.yaml").resolve()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "web/openapi.yaml" in pyproject["tool"]["setuptools"]["package-data"]["node"]


@pytest.mark.parametrize("engine", ["sqlite"])  # storage plays no part
async def test_a_running_node_serves_it_without_a_token(make_node: NodeFactory) -> None:
    lex = await make_node("lex")
    url = f"{lex.url}{openapi_route.PATH}"
    async with lex.http.get(url) as response:
        body = await response.read()
        assert response.status == 200
        assert response.content_type == "application/yaml"
        etag = response.headers["ETag"]
    assert body == DOCS.read_bytes()
    assert yaml.safe_load(body)["info"]["title"] == "OpenSeats node API"
    async with lex.http.get(url, headers={"If-None-Match": etag}) as response:
        assert response.status == 304
        assert await response.read() == b""
