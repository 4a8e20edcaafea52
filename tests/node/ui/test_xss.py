"""Untrusted text renders as text: partners' titles, form input, URLs."""

from __future__ import annotations

import aiohttp_jinja2

from node.ui.i18n import CATALOGUES
from tests.node.conftest import RunningNode
from tests.node.ui.conftest import Browser, sqlite_only

SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror="alert(1)">'


@sqlite_only
async def test_a_partners_title_renders_escaped_through_the_template_environment(
    lex: RunningNode,
) -> None:
    app = lex.server.app
    env = aiohttp_jinja2.get_env(app)
    t = app[CATALOGUES].translator("de")
    template = env.from_string("<h2>{{ title }}</h2><p>{{ t('admin.logged_in_as', name=who) }}</p>")
    html = template.render(title=SCRIPT, who=IMG, t=t)
    assert html == (
        "<h2>&lt;script&gt;alert(1)&lt;/script&gt;</h2>"
        "<p>Angemeldet als &lt;img src=x onerror=&#34;alert(1)&#34;&gt;.</p>"
    )
    # and in the macros that every form uses
    macros = env.get_template("macros.html").make_module({"t": t, "csrf_field": lambda: ""})
    field = str(macros.field("title", "login.username", SCRIPT, error="form.required"))
    assert SCRIPT not in field
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in field


@sqlite_only
async def test_form_input_is_echoed_as_text(browser: Browser) -> None:
    page = await browser.login('"><script>alert(1)</script>', "Falsches-Passwort-123")
    assert page.status == 400
    assert "<script>alert(1)" not in page.text
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page.text


@sqlite_only
async def test_urls_are_escaped_in_links_and_hidden_fields(browser: Browser) -> None:
    page = await browser.get('/admin/login?next=/x"><script>alert(1)</script>')
    assert "<script>alert(1)" not in page.text
    assert 'name="next" value="/x&#34;&gt;&lt;script&gt;' in page.text
    page = await browser.get("/nowhere", params={"q": SCRIPT})
    assert page.status == 404
    assert "<script>alert(1)" not in page.text
