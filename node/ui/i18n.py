"""German first, English second: one flat JSON catalogue per language.

``locales/de.json`` and ``locales/en.json`` map dotted keys
(``login.username``) to plain text; a test keeps their keys equal and
checks that every key the templates and ``node/ui`` use exists.  Text may
contain ``{name}`` placeholders filled from keyword arguments.  Catalogue
text is never markup: templates autoescape whatever ``t`` returns, so an
untrusted value passed as a parameter stays text too.

The language is the ``lang`` cookie (set by ``GET /lang/{code}``), else
German.  Code that has no request (the CLI) uses :meth:`Catalogues.both`
for one ``"deutsch / english"`` line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

log = logging.getLogger(__name__)

LANGUAGES = ("de", "en")
# Each language is offered in its own name, whatever the page's language.
LANGUAGE_NAMES = {"de": "Deutsch", "en": "English"}
DEFAULT_LANGUAGE = "de"
LANG_COOKIE = "lang"
LOCALES = Path(__file__).resolve().parent / "locales"


@dataclass(frozen=True)
class Message:
    """A catalogue key with its parameters, translated only when shown."""

    key: str
    params: Mapping[str, object] = field(default_factory=dict)


class _Params(dict[str, object]):
    def __missing__(self, name: str) -> str:
        return "{" + name + "}"


class Translator:
    """``t(key, **params)`` for one language, falling back to German, then the key."""

    def __init__(self, lang: str, strings: Mapping[str, str], fallback: Mapping[str, str]):
        self.lang = lang
        self._strings = strings
        self._fallback = fallback

    def __call__(self, key: str | Message, /, **params: object) -> str:
        if isinstance(key, Message):
            params = {**key.params, **params}
            key = key.key
        text = self._strings.get(key) or self._fallback.get(key)
        if text is None:
            log.warning("no text for %r in %s", key, self.lang)
            return key
        return text.format_map(_Params(params)) if params else text


class Catalogues:
    """Every language's strings, loaded once per app from ``locales/``."""

    def __init__(self, strings: Mapping[str, Mapping[str, str]]) -> None:
        self.strings = strings

    @classmethod
    def load(cls, directory: Path = LOCALES) -> Catalogues:
        loaded: dict[str, dict[str, str]] = {}
        for lang in LANGUAGES:
            data = json.loads((directory / f"{lang}.json").read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in data.items()
            ):
                raise ValueError(f"{lang}.json: a flat object of strings expected")
            loaded[lang] = data
        return cls(loaded)

    def translator(self, lang: str) -> Translator:
        if lang not in self.strings:
            lang = DEFAULT_LANGUAGE
        return Translator(lang, self.strings[lang], self.strings[DEFAULT_LANGUAGE])

    def has(self, key: str) -> bool:
        return key in self.strings[DEFAULT_LANGUAGE]

    def both(self, key: str | Message, /, **params: object) -> str:
        """German and English in one line, for the CLI."""
        german = self.translator("de")(key, **params)
        english = self.translator("en")(key, **params)
        return german if german == english else f"{german} / {english}"


CATALOGUES = web.AppKey("ui_catalogues", Catalogues)


def language_of(request: web.Request) -> str:
    lang = request.cookies.get(LANG_COOKIE, "")
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def translator_for(request: web.Request) -> Translator:
    return request.app[CATALOGUES].translator(language_of(request))
