"""Database URLs: checking them when settings load, and naming their target in messages.

A mistyped ``database_url`` should fail when the settings are read, with a
message naming the setting, not later inside SQLAlchemy with a traceback.
Messages about an unreachable database name the host and port (or the
SQLite file) but never the password.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

_SQLITE = {"sqlite", "sqlite+aiosqlite"}
_POSTGRES = {"postgresql", "postgres", "postgresql+asyncpg"}


def check_database_url(url: str) -> str:
    """*url* if it names a database the node can use, else ``ValueError`` saying why."""
    if not url:
        return url
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        raise ValueError(
            "keine Datenbank-URL, erwartet z. B. postgresql://host:5432/openseats oder "
            "sqlite:////pfad/openseats.db / not a database URL, expected e.g. "
            "postgresql://host:5432/openseats or sqlite:////path/openseats.db"
        )
    if scheme.lower() not in _SQLITE | _POSTGRES:
        raise ValueError(
            f"Datenbanktyp '{scheme}' wird nicht unterstützt, nur postgresql:// oder sqlite:/// "
            f"/ database type '{scheme}' is not supported, only postgresql:// or sqlite:///"
        )
    if scheme.lower() in _SQLITE and (
        not rest.startswith("/") or rest.strip("/") in ("", ":memory:")
    ):
        raise ValueError(
            "SQLite braucht einen Dateipfad: sqlite:////absoluter/pfad.db / "
            "SQLite needs a file path: sqlite:////absolute/path.db"
        )
    try:
        urlsplit(url).port  # noqa: B018 - raises ValueError on a port that is not a number
        make_url(url)
    except (sa_exc.ArgumentError, ValueError) as exc:
        raise ValueError(
            f"Datenbank-URL nicht lesbar / database URL cannot be parsed: {exc}"
        ) from None
    return url


def describe_target(url: str) -> str:
    """Where *url* points: ``host:port/database`` or the SQLite file; never the password."""
    try:
        parsed = make_url(url)
    except (sa_exc.ArgumentError, ValueError):
        return "?"
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or "?"
    host = parsed.host or "localhost (Unix-Socket)"
    return f"{host}:{parsed.port or 5432}/{parsed.database or ''}"


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; ``None`` for any other engine."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


def postgres_command_url(url: str) -> str:
    """*url* as ``pg_dump``/``psql`` take it (plain ``postgresql://``), password hidden."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=True)
