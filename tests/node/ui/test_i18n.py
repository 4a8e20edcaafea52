"""German by default, English on request; both catalogues complete and in step."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from node.ui.i18n import LOCALES, Catalogues, Message
from node.ui.render import TEMPLATES
from tests.node.ui.conftest import Browser, sqlite_only

UI = Path(TEMPLATES).parent
KEY = re.compile(r"[a-z_]+(\.[a-z0-9_]+)+")
FILE_NAME = re.compile(r".*\.(html|css|js|json|txt)")


def _is_key(literal: str, sections: set[str]) -> bool:
    return (
        bool(KEY.fullmatch(literal))
        and not FILE_NAME.fullmatch(literal)
        and literal.split(".")[0] in sections
    )


def _catalogue(lang: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8"))
    return data


def _used_keys() -> set[str]:
    """Catalogue keys the templates and the UI code name (literals with a known section)."""
    sections = {key.split(".")[0] for key in _catalogue("de")}
    used: set[str] = set()
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        literals = re.findall(r"""['"]([^'"\s]+)['"]""", text)
        used |= {literal for literal in literals if _is_key(literal, sections)}
        called = re.findall(r"""\bt\(\s*['"]([^'"]+)['"]""", text)
        used |= set(called)  # whatever t() is called with must exist, any section
    sources = [*UI.glob("*.py"), UI.parent / "cli_admin.py", UI.parent / "demo.py"]
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
            if is_text and _is_key(node.value, sections):
                used.add(node.value)
    return used


def test_both_catalogues_have_the_same_keys_and_placeholders() -> None:
    de, en = _catalogue("de"), _catalogue("en")
    assert sorted(de) == sorted(en)
    for key in de:
        assert de[key].strip(), key
        assert en[key].strip(), key
        assert set(re.findall(r"\{(\w+)\}", de[key])) == set(re.findall(r"\{(\w+)\}", en[key])), key


def test_every_key_in_use_exists() -> None:
    used = _used_keys()
    assert {"login.title", "error.csrf", "nav.overview", "account.password_weak"} <= used
    assert used - set(_catalogue("de")) == set()


def test_translation_fills_placeholders_and_falls_back() -> None:
    catalogues = Catalogues.load()
    en = catalogues.translator("en")
    assert en("login.rate_limited", minutes=3) == (
        "Too many failed logins. Please try again in 3 minutes."
    )
    assert en(Message("admin.logged_in_as", {"name": "anna"})) == "Logged in as anna."
    assert en("admin.logged_in_as") == "Logged in as {name}."
    assert en("no.such_key") == "no.such_key"
    assert catalogues.translator("fr")("login.title") == "Anmeldung"
    assert catalogues.both("login.invalid") == (
        "Benutzername oder Passwort ist falsch. / Username or password is wrong."
    )


@sqlite_only
async def test_german_by_default_english_after_switching(browser: Browser) -> None:
    page = await browser.get("/admin/login")
    assert '<html lang="de">' in page.text
    assert "<h1>Anmeldung</h1>" in page.text
    assert '<a href="/lang/en?next=/admin/login" lang="en" hreflang="en">English</a>' in page.text

    switch = await browser.get("/lang/en?next=/admin/login%3Fnext%3D/admin/")
    assert (switch.status, switch.location) == (303, "/admin/login?next=/admin/")
    cookie = switch.cookies["lang"]
    assert (cookie.value, cookie["samesite"], cookie["path"]) == ("en", "Lax", "/")
    page = await browser.get("/admin/login")
    assert '<html lang="en">' in page.text
    assert "<h1>Log in</h1>" in page.text
    assert '<label for="f-username">Username' in page.text
    page = await browser.login("anna", "")
    assert "Please fill this in." in page.text

    await browser.get("/lang/de?next=/admin/login")
    assert "<h1>Anmeldung</h1>" in (await browser.get("/admin/login")).text


@sqlite_only
async def test_the_switch_only_returns_to_local_paths(browser: Browser) -> None:
    for target in ("https://evil.example.org/", "//evil.example.org", "/\\evil", "", "admin"):
        page = await browser.get("/lang/en", params={"next": target})
        assert (page.status, page.location) == (303, "/"), target
    assert (await browser.get("/lang/fr?next=/")).status == 404
    page = await browser.get("/admin/login", cookies={"lang": "fr"})
    assert '<html lang="de">' in page.text
