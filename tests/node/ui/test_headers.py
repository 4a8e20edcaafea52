"""Browser security headers on UI pages, static files and error pages; the widget exception."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pytest
from pydantic import ValidationError

from node.settings import Settings
from node.ui.render import TEMPLATES
from tests.node.conftest import NodeFactory, RunningNode
from tests.node.ui.conftest import Browser, BrowserFactory, sqlite_only

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors {}"
)


def assert_ui_headers(headers: Mapping[str, str], ancestors: str = "'none'") -> None:
    assert headers.get("Content-Security-Policy") == CSP.format(ancestors)
    assert headers.get("Referrer-Policy") == "same-origin"
    assert headers.get("X-Content-Type-Options") == "nosniff"


@sqlite_only
async def test_pages_static_files_and_errors_carry_the_headers(browser: Browser) -> None:
    page = await browser.get("/admin/login")
    assert_ui_headers(page.headers)
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"

    stylesheet = re.search(r'href="(/static/style\.css\?v=[^"]+)"', page.text)
    script = re.search(r'src="(/static/ui\.js\?v=[^"]+)"', page.text)
    assert stylesheet
    assert script
    css = await browser.get(stylesheet.group(1))
    assert (css.status, css.headers["Content-Type"].split(";")[0]) == (200, "text/css")
    assert_ui_headers(css.headers)
    assert (await browser.get(script.group(1))).status == 200

    missing = await browser.get("/nowhere")
    assert missing.status == 404
    assert missing.headers["Content-Type"].startswith("text/html")
    assert "Seite nicht gefunden" in missing.text
    assert_ui_headers(missing.headers)
    assert missing.headers["X-Frame-Options"] == "DENY"
    assert (await browser.get("/static/nothing.css")).status == 404

    # a POST without a token is refused before routing says anything
    assert (await browser.post("/lang/en", csrf=False)).status == 403


@sqlite_only
async def test_the_apis_keep_their_json_and_get_only_harmless_headers(lex: RunningNode) -> None:
    status, _, headers = await lex.portal("/nope")
    assert status == 404
    assert headers["Content-Type"].startswith("application/json")
    assert "Content-Security-Policy" not in headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


@sqlite_only
async def test_widget_pages_may_be_framed_by_the_configured_origins(
    make_node: NodeFactory, browsers: BrowserFactory
) -> None:
    kiwi = await make_node(
        "kiwi", widget_frame_ancestors=["https://intranet.kiwi.example", "https://*.kiwi.example/"]
    )
    page = await browsers(kiwi.url).get("/widget/catalogue")
    assert_ui_headers(page.headers, "'self' https://intranet.kiwi.example https://*.kiwi.example")
    assert "X-Frame-Options" not in page.headers
    # everything else stays unframeable
    page = await browsers(kiwi.url).get("/admin/login")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert_ui_headers(page.headers)


@sqlite_only
async def test_without_configured_origins_a_widget_is_framed_only_by_the_node_itself(
    browser: Browser,
) -> None:
    page = await browser.get("/widget")
    assert_ui_headers(page.headers, "'self'")
    assert page.headers["X-Frame-Options"] == "SAMEORIGIN"


@pytest.mark.parametrize(
    "origin",
    [
        "*",
        "https://intranet.example.org/page",
        "intranet.example.org",
        "'unsafe-inline'",
        "https://a.example; script-src *",
        "javascript:alert(1)",
    ],
)
def test_widget_origins_must_be_plain_origins(origin: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Settings(
            node_id="lex.example.org",
            base_url="https://lex.example.org",
            display_name="LEX",
            data_dir=tmp_path,
            widget_frame_ancestors=[origin],
        )


def test_templates_have_no_inline_scripts_styles_or_handlers() -> None:
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template
        assert not re.search(r"\son[a-z]+\s*=", text, re.I), template
        assert not re.search(r"\sstyle\s*=", text, re.I), template
        assert "<style" not in text, template
        assert "javascript:" not in text, template
