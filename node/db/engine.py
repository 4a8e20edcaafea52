"""Engines, transactions and migrations for SQLite and PostgreSQL.

:class:`Database` hands out two kinds of transactions:

* ``db.write()`` for anything that changes rows.  On SQLite all writes of
  the process go through one connection, so they queue in Python instead
  of failing with "database is locked"; WAL mode lets readers carry on.
  On PostgreSQL it is an ordinary pooled transaction.
* ``db.read()`` for queries, from a pool of connections on both engines.

Another process writing the same SQLite file (the CLI while ``serve``
runs) waits up to ``busy_timeout``.  Several replicas need PostgreSQL.
Both kinds of transaction turn an unreachable or full database into
:class:`~node.db.faults.DatabaseUnavailable` or
:class:`~node.db.faults.StorageFull` (see :mod:`node.db.faults`).

Migrations are Alembic's, run in-process by :func:`upgrade` at start or by
``openseats db upgrade``.  Replicas starting at once on PostgreSQL would
each see the same migrations pending and run them twice, so
:meth:`Database.upgrade` first takes a transaction-level advisory lock
(``pg_advisory_xact_lock``, a fixed key, released at commit).  Migrations
run in that same transaction (PostgreSQL's DDL is transactional): the second
replica waits for the lock, then reads the committed version and finds
nothing pending.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from node.db.faults import guarded

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 0x4F70656E5365617473 & 0x7FFFFFFFFFFFFFFF  # "OpenSeats", a bigint key


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``sqlite:///`` and pick the async drivers."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Database:
    """The node's database: one URL, a read pool and a write path."""

    def __init__(
        self, url: str, *, schema: str | None = None, echo: bool = False, pool_size: int = 10
    ) -> None:
        self.url = normalise_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        connect_args: dict[str, Any] = {}
        if self.dialect == "postgresql" and schema:
            connect_args["server_settings"] = {"search_path": schema}
        self.schema = schema
        # A SQLite file cannot drop a connection; PostgreSQL can (restarts).
        self.read_engine: AsyncEngine = create_async_engine(
            self.url,
            echo=echo,
            hide_parameters=True,  # attendee data must never reach a log or an error
            connect_args=connect_args,
            # PostgreSQL: at most pool_size connections per process, half kept open.
            pool_size=max(pool_size // 2, 1),
            max_overflow=pool_size - max(pool_size // 2, 1),
            pool_pre_ping=make_url(self.url).get_backend_name() != "sqlite",
        )
        if self.dialect == "sqlite":
            event.listen(self.read_engine.sync_engine, "connect", _sqlite_pragmas)
            self.write_engine = create_async_engine(
                self.url,
                echo=echo,
                hide_parameters=True,
                poolclass=AsyncAdaptedQueuePool,
                pool_size=1,
                max_overflow=0,
                pool_timeout=60,
            )
            event.listen(self.write_engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            self.write_engine = self.read_engine

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        async with guarded(self.write_engine.begin()) as connection:
            yield connection

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with guarded(self.read_engine.connect()) as connection:
            yield connection

    async def dispose(self) -> None:
        await self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            await self.write_engine.dispose()

    async def upgrade(self) -> None:
        """Apply every pending migration; one replica at a time (see above)."""
        async with self.write() as connection:
            if self.dialect == "postgresql":
                lock = text("SELECT pg_advisory_xact_lock(:key)")
                await connection.execute(lock, {"key": MIGRATION_LOCK})
            await connection.run_sync(_upgrade_sync)

    async def pending_migrations(self) -> list[str]:
        async with self.read() as connection:
            return await connection.run_sync(_pending_sync)


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade_sync(connection: Connection) -> None:
    command.upgrade(_alembic_config(connection), "head")


def _pending_sync(connection: Connection) -> list[str]:
    script = ScriptDirectory.from_config(_alembic_config(connection))
    current = set(MigrationContext.configure(connection).get_current_heads())
    pending = []
    for revision in script.walk_revisions():
        if revision.revision in current:
            break
        pending.append(revision.revision)
    return pending
