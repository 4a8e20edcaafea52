"""Schema revisions: which Alembic revisions this release knows, and moving between them.

The node itself only ever upgrades to head (:meth:`Database.upgrade`).
Backups record the revision of the database they hold, and a restore
must refuse a database from a newer release (its revision is unknown
here) but can take an older one and migrate it; the upgrade tests walk a
database up and down one revision at a time.  All of that needs to name
revisions, which is what this module offers.  The revision of a SQLite
file is read with the standard library, so a backup or restore can check
it without opening the node's engine.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from node.db.engine import MIGRATIONS, Database


def _script() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config)


def known() -> list[str]:
    """Every revision of this release, oldest first."""
    return [revision.revision for revision in reversed(list(_script().walk_revisions()))]


def head() -> str:
    return known()[-1]


def sqlite_revision(path: Path) -> str | None:
    """The revision stamped in a SQLite file; ``None`` if it was never migrated."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        has_table = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone()
        if has_table is None:
            return None
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        return str(row[0]) if row else None
    finally:
        connection.close()


async def current(db: Database) -> str | None:
    async with db.read() as connection:
        return await connection.run_sync(_current_sync)


async def upgrade_to(db: Database, revision: str) -> None:
    async with db.write() as connection:
        await connection.run_sync(_move_sync, "upgrade", revision)


async def downgrade_to(db: Database, revision: str) -> None:
    """Down to *revision* (``"base"`` for nothing); each step's ``downgrade()`` runs."""
    async with db.write() as connection:
        await connection.run_sync(_move_sync, "downgrade", revision)


def _current_sync(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _move_sync(connection: Connection, direction: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    if direction == "upgrade":
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)
