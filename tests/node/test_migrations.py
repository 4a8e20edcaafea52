"""The Alembic migrations build exactly the schema that node.db.tables declares.

A column or index added to ``tables.py`` without a migration (or the other
way round) would work in tests that create tables from the metadata and
break real upgrades; this compares the migrated database with the metadata
on both engines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from node.db.tables import metadata
from tests.node.conftest import Schemas, new_database


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": False, "include_schemas": False}
    )
    return list(compare_metadata(context, metadata))


async def test_migrations_match_the_table_definitions(
    engine: str, tmp_path: Path, schemas: Schemas
) -> None:
    database = await new_database(engine, tmp_path, schemas)
    try:
        async with database.read() as conn:
            differences = await conn.run_sync(_differences)
    finally:
        await database.dispose()
    assert differences == []
