"""Storage: tables, migrations and repositories.  The only SQLAlchemy user.

Repositories are modules of small async functions that take an
``AsyncConnection`` (so the caller decides the transaction: several
repository calls that must commit together share one ``db.write()``) and
return plain frozen dataclasses, never SQLAlchemy rows.

Seat counts and change numbers are never read-modify-write in Python:
they are conditional ``UPDATE`` statements, so they stay correct with
several processes on PostgreSQL.
"""

from node.db.engine import Database

__all__ = ["Database"]
