"""Real node processes and PostgreSQL databases of their own, for tests.

A separate process cannot be pointed at a schema the way in-process nodes
are (conftest ``Schemas``), so tests that start ``openseats serve`` get a
whole database, created for them and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from node.db.engine import normalise_url
from tests.node.conftest import PG_URL
from tests.node.test_cli import wait_for_port


def clean_environment(**settings: str) -> dict[str, str]:
    """This process's environment without any ``OPENSEATS_*``, plus *settings*
    (``database_url="..."`` becomes ``OPENSEATS_DATABASE_URL``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSEATS_")}
    env.update({f"OPENSEATS_{name.upper()}": value for name, value in settings.items()})
    return env


async def drop_pg_database(url: str) -> None:
    """Drop the database of *url*, even while connections are open."""
    name = make_url(url).database
    admin = create_async_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@asynccontextmanager
async def pg_databases(count: int = 1) -> AsyncIterator[list[str]]:
    """Fresh PostgreSQL databases (their URLs), dropped afterwards."""
    names = [f"t_{uuid.uuid4().hex[:16]}" for _ in range(count)]
    urls = [make_url(PG_URL).set(database=n).render_as_string(hide_password=False) for n in names]
    admin = create_async_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            for name in names:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield urls
    finally:
        await admin.dispose()
        for url in urls:
            await drop_pg_database(url)


@asynccontextmanager
async def own_pg_database() -> AsyncIterator[str]:
    """One fresh PostgreSQL database (its URL), dropped afterwards."""
    async with pg_databases(1) as (url,):
        yield url


@asynccontextmanager
async def serving(
    data: Path, env: dict[str, str], port: int
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """``openseats serve --port PORT`` on *data* until the block ends.

    The process is up once it accepts connections; at the end it gets
    SIGTERM, then SIGKILL.  Its output goes to a file in the data dir,
    which a failure to start shows, as does a process that died while the
    block ran (other than by a signal the test sent).
    """
    command = [sys.executable, "-m", "node.cli", "serve", "--data", str(data), "--port", str(port)]
    log = data / f"serve-{port}.log"  # a file: a full pipe would block the process
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    try:
        try:
            await asyncio.to_thread(wait_for_port, port, 30.0)
        except AssertionError:
            raise AssertionError(f"openseats serve did not start:\n{log.read_text()}") from None
        yield process
        assert process.poll() is None or process.returncode < 0, (
            f"openseats serve died:\n{log.read_text()}"
        )
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 20)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait, 10)
