"""Full-text search terms that work the same on SQLite and PostgreSQL.

Text is split into words, and each word is stored casefolded ("Straße" ->
"strasse") plus, where different, with umlauts spelt out ("schröder" ->
"schroeder") and with accents stripped ("schroder", "café" -> "cafe").  A
query word matches every stored term it is a prefix of, so "prompt" finds
"KI-Prompting" and "Schroder", "Schröder" and "Schroeder" all find "Anna
Schröder".  The index is a plain table with a primary key starting at the
term, so a prefix is a range scan on both engines.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

MAX_TERM = 64
MAX_QUERY_WORDS = 8
_WORD = re.compile(r"\w+", re.UNICODE)
_SPELLED_OUT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def _strip_accents(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    return [w.casefold()[:MAX_TERM] for w in _WORD.findall(text)]


def terms(texts: Iterable[str]) -> set[str]:
    """Every stored form of every word in *texts*."""
    found: set[str] = set()
    for word in {w for text in texts for w in _WORD.findall(text)}:
        folded = word.casefold()[:MAX_TERM]
        found.add(folded)
        if not folded.isascii():
            lowered = word.lower()
            found.add(lowered.translate(_SPELLED_OUT).casefold()[:MAX_TERM])
            found.add(_strip_accents(lowered).casefold()[:MAX_TERM])
    return found


def query_words(q: str) -> list[str]:
    """The words of a search query, casefolded (at most eight)."""
    return list(dict.fromkeys(words(q)))[:MAX_QUERY_WORDS]


def prefix_end(word: str) -> str:
    """The smallest string greater than every string starting with *word*."""
    return word[:-1] + chr(ord(word[-1]) + 1)
