"""Storage faults: the database going away or running out of space.

Two things can go wrong with the database that are nobody's bug and that
the node must survive: it becomes unreachable (PostgreSQL restarts, the
network drops, a SQLite file is locked by another program or cannot be
opened), or it runs out of space (SQLite's "database or disk is full",
PostgreSQL's ``disk_full``).  Both surface as driver exceptions of many
shapes: SQLAlchemy wraps most of them, but asyncpg's connect raises a raw
``ConnectionRefusedError``.

:func:`guarded` sits around every transaction :class:`node.db.Database`
hands out and turns those exceptions into two of our own,
:class:`DatabaseUnavailable` and :class:`StorageFull`, so that the web
layer answers 503 ``database_unavailable`` / 507 ``storage_full`` and the
CLI prints one clear line, without either knowing about drivers.  A raw
``OSError`` counts only when it comes from opening or committing the
transaction, never from the caller's own code inside it (an HTTP call to a
peer fails with an ``OSError`` too, and that is not the database).

Nothing partial is stored in either case: the failing transaction is
rolled back (by the server when the connection dies, by SQLite when a
write does not fit), and ``pool_pre_ping`` replaces dead pooled
connections, so the next request after recovery works without a restart.

The exceptions carry the driver's error class and code (``reason``, fit
for logs) and its message without the statement (``detail``, which the CLI
prints).  The driver's exception is not chained to them: SQLAlchemy's
quotes the SQL parameters, which may hold personal data and must not reach
a logged traceback.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeVar

from sqlalchemy import exc as sa_exc

T = TypeVar("T")

# SQLite primary result codes (the low byte of an extended code).
_SQLITE_FULL = 13
_SQLITE_UNAVAILABLE = {
    3: "SQLITE_PERM",
    5: "SQLITE_BUSY",
    6: "SQLITE_LOCKED",
    8: "SQLITE_READONLY",
    10: "SQLITE_IOERR",
    14: "SQLITE_CANTOPEN",
    26: "SQLITE_NOTADB",
}
# PostgreSQL SQLSTATEs: connection exceptions, shutdowns, out of resources.
_PG_FULL = {"53100"}
_PG_UNAVAILABLE_CLASSES = ("08", "57P", "53")
_PG_UNAVAILABLE = {"3D000", "28000", "28P01"}  # no such database, auth failed


class StorageFault(Exception):
    """``reason`` is the driver's error class or code, fit for logs; ``detail``
    the driver's own message (for the CLI, which prints it to the admin)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = ""


class DatabaseUnavailable(StorageFault):
    """The database cannot be reached or used right now; retrying later may work."""


class StorageFull(StorageFault):
    """A write did not fit: the disk (or the database's size limit) is full."""


def classify(exc: BaseException, *, raw_os_errors: bool) -> StorageFault | None:
    """Our exception for a driver exception, or ``None`` if it is something else."""
    if isinstance(exc, StorageFault):
        return exc
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection came free in time
        return DatabaseUnavailable("pool_timeout")
    if isinstance(exc, sa_exc.DBAPIError):
        return _classify_dbapi(exc)
    if isinstance(exc, sqlite3.Error):
        return _classify_sqlite(exc)
    if raw_os_errors and isinstance(exc, OSError):
        return DatabaseUnavailable(type(exc).__name__)
    sqlstate = getattr(exc, "sqlstate", None)  # asyncpg's own errors, if unwrapped
    if isinstance(sqlstate, str):
        return _classify_sqlstate(sqlstate, type(exc).__name__)
    return None


def _classify_dbapi(exc: sa_exc.DBAPIError) -> StorageFault | None:
    orig = exc.orig
    if isinstance(orig, sqlite3.Error):
        return _classify_sqlite(orig)
    name = type(orig).__name__
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):  # the server answered: its code says what happened
        return _classify_sqlstate(sqlstate, name)
    if exc.connection_invalidated or isinstance(orig, OSError):
        return DatabaseUnavailable(name)
    if isinstance(exc, sa_exc.InterfaceError | sa_exc.OperationalError):
        return DatabaseUnavailable(name)
    return None


def _classify_sqlite(exc: sqlite3.Error) -> StorageFault | None:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return None
    primary = code & 0xFF
    if primary == _SQLITE_FULL:
        return StorageFull("SQLITE_FULL")
    if primary in _SQLITE_UNAVAILABLE:
        return DatabaseUnavailable(_SQLITE_UNAVAILABLE[primary])
    return None


def _classify_sqlstate(sqlstate: str, name: str) -> StorageFault | None:
    if sqlstate in _PG_FULL:
        return StorageFull(f"{name} ({sqlstate})")
    if sqlstate in _PG_UNAVAILABLE or sqlstate.startswith(_PG_UNAVAILABLE_CLASSES):
        return DatabaseUnavailable(f"{name} ({sqlstate})")
    return None


@asynccontextmanager
async def guarded(opening: AbstractAsyncContextManager[T]) -> AsyncIterator[T]:
    """Enter *opening* (a connection or transaction); translate storage faults."""
    from_body: BaseException | None = None
    try:
        async with opening as connection:
            try:
                yield connection
            except BaseException as exc:
                from_body = exc
                raise
    except Exception as exc:
        problem = classify(exc, raw_os_errors=exc is not from_body)
        if problem is None or problem is exc:
            raise
        problem.detail = _detail(exc)
        raise problem from None  # the driver's exception may quote SQL parameters


def _detail(exc: BaseException) -> str:
    """The driver's message without the SQL statement or its parameters."""
    if isinstance(exc, sa_exc.DBAPIError):
        exc = exc.orig if isinstance(exc.orig, BaseException) else exc
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__
