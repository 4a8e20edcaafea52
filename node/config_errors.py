"""Messages for configuration mistakes: which setting, where it came from, what is wrong.

Admins set up a node from a TOML file and ``OPENSEATS_*`` variables, and the
common mistakes are always the same few: a typo in a setting's name, a
port that is not a number or out of range, a list written the wrong way in
the environment, a TOML syntax error.  pydantic reports them precisely but
in its own terms; this turns each into one line that names the setting and
its source (the file, or the variable when one is set), German first.
Values are repeated to help find the mistake, except for settings that may
hold secrets.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable

from pydantic import ValidationError

_GERMAN = {
    "int_parsing": "keine ganze Zahl",
    "int_type": "keine ganze Zahl",
    "int_from_float": "keine ganze Zahl",
    "bool_parsing": "kein Wahrheitswert (true/false)",
    "bool_type": "kein Wahrheitswert (true/false)",
    "less_than_equal": "zu groß",
    "less_than": "zu groß",
    "greater_than_equal": "zu klein",
    "greater_than": "zu klein",
    "string_too_short": "zu kurz",
    "string_too_long": "zu lang",
    "string_type": "kein Text",
    "string_pattern_mismatch": "nicht im erwarteten Format",
    "literal_error": "kein erlaubter Wert",
    "list_type": "keine Liste",
    "url_parsing": "keine gültige URL",
    "url_scheme": "keine gültige URL",
}
_SECRET = re.compile(r"token|password|secret|database_url", re.IGNORECASE)
_ENV_FIELD = re.compile(r'field "([^"]+)"')


def env_name(setting: str) -> str:
    return f"OPENSEATS_{setting.upper()}"


def _origin(setting: str, source: str) -> str:
    name = env_name(setting)
    if name in os.environ:
        return f"Umgebungsvariable / environment variable {name}"
    return source


def _shown(setting: str, value: object) -> str:
    if _SECRET.search(setting) or isinstance(value, dict):
        return ""
    text = repr(value)
    return f" ({text[:60]}…)" if len(text) > 60 else f" ({text})"


def describe_validation_error(
    exc: ValidationError, *, source: str, settings: Iterable[str] = ()
) -> str:
    """One line per mistake; *settings* are the known names, for "did you mean"."""
    lines = []
    for error in exc.errors(include_url=False):
        name = ".".join(str(part) for part in error["loc"])
        top = str(error["loc"][0]) if error["loc"] else name
        kind = error["type"]
        message = error["msg"].removeprefix("Value error, ")
        if kind == "extra_forbidden":
            close = difflib.get_close_matches(top, list(settings), n=1)
            hint = f"; gemeint / did you mean '{close[0]}'?" if close else ""
            lines.append(
                f"Unbekannte Einstellung '{name}' in {source} / "
                f"unknown setting '{name}' in {source}{hint}"
            )
        elif kind == "missing":
            lines.append(
                f"Einstellung '{name}' fehlt in {source} (oder {env_name(top)}) / "
                f"setting '{name}' is missing in {source} (or {env_name(top)})"
            )
        elif kind == "value_error":  # our own validators already speak both languages
            lines.append(f"Einstellung / setting '{name}' ({_origin(top, source)}): {message}")
        else:
            german = _GERMAN.get(kind, "ungültiger Wert")
            value = _shown(top, error.get("input"))
            lines.append(
                f"Einstellung '{name}' ({_origin(top, source)}): {german}{value} / "
                f"setting '{name}': {message}"
            )
    return "\n".join(lines)


def describe_env_parse_error(exc: Exception) -> str:
    """pydantic-settings could not decode a variable (a list or table not in JSON)."""
    found = _ENV_FIELD.search(str(exc))
    setting = found.group(1) if found else "?"
    return (
        f"Einstellung '{setting}' (Umgebungsvariable {env_name(setting)}): kein gültiges "
        f"JSON, z. B. [\"https://a.example.org\"] / setting '{setting}' (environment variable "
        f'{env_name(setting)}): not valid JSON, e.g. ["https://a.example.org"]'
    )


def describe_toml_error(path: object, exc: Exception) -> str:
    """A TOML syntax error; the parser's message carries the line and column."""
    return f"{path}: kein gültiges TOML / not valid TOML: {exc}"
