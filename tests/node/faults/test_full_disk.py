"""A full disk: a clear error and no partial write, for the node's database and for backups.

SQLite reports a full disk as ``SQLITE_FULL`` ("database or disk is full").
``PRAGMA max_page_count`` on the node's single write connection produces
exactly that condition without filling a real disk.  For ``openseats
backup`` a file size limit (``RLIMIT_FSIZE``) in the CLI process makes every
write beyond it fail, as on a small target file system.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from node.clock import ManualClock
from node.db import Database
from tests.node.cli_inprocess import run
from tests.node.conftest import NodeFactory
from tests.node.faults.test_database_unavailable import count_sessions, new_session
from tests.node.test_cli import OPENSEATS

LONG = " ".join(f"Abschnitt {n}: Lesbarkeit, Kontrast und Struktur." for n in range(150))


async def limit_to_current_size(db: Database) -> None:
    async with db.write() as conn:  # SQLite: the node's one write connection
        pages = (await conn.exec_driver_sql("PRAGMA page_count")).scalar_one()
        await conn.exec_driver_sql(f"PRAGMA max_page_count={pages}")


async def lift_limit(db: Database) -> None:
    async with db.write() as conn:
        await conn.exec_driver_sql("PRAGMA max_page_count=1073741823")


@pytest.mark.parametrize("engine", ["sqlite"])
async def test_full_sqlite_gives_507_and_stores_nothing(
    make_node: NodeFactory, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    node = await make_node("voll")
    assert node.database is not None
    session = new_session(clock) | {"description": LONG}
    day = (clock.now() + timedelta(days=20)).strftime("%d.%m.%Y")
    csv = (
        "Schlüssel;Titel;Beginn;Dauer;Referent(in);Beschreibung\n"
        f"v1;Import voll;{day} 10:00;60;Ada;{LONG}\n"
    )

    caplog.set_level(logging.WARNING)
    await limit_to_current_size(node.database)
    status, answer = await node.admin("POST", "/sessions", session)
    assert (status, answer["code"]) == (507, "storage_full"), answer
    assert answer["message"].index("Speicher") < answer["message"].index("storage")
    status, answer = await node.admin(
        "POST", "/imports", raw=csv.encode(), headers={"Content-Type": "text/csv"}
    )
    assert (status, answer["code"]) == (507, "storage_full"), answer
    assert await count_sessions(node.database) == (0, 0)
    assert await count_sessions(node.database, "Import voll") == (0, 0)
    async with node.database.read() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM feed_items"))).scalar_one() == 0
    full = [r for r in caplog.records if "storage full" in r.getMessage()]
    assert len(full) == 2
    assert all(LONG[:40] not in r.getMessage() for r in full)
    assert all(r.exc_info is None for r in full)

    await lift_limit(node.database)
    status, created = await node.admin("POST", "/sessions", session)
    assert status == 201, created
    status, report = await node.admin(
        "POST", "/imports", raw=csv.encode(), headers={"Content-Type": "text/csv"}
    )
    assert (status, report["imported"]) == (200, 1), report
    assert await count_sessions(node.database) == (1, 1)
    assert await count_sessions(node.database, "Import voll") == (1, 1)


def _limited(max_bytes: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write (EFBIG), do not kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))


def test_backup_to_a_full_target_leaves_nothing(tmp_path: Path) -> None:
    data = tmp_path / "quelle"
    run(
        "init",
        "--data",
        str(data),
        "--node-id",
        "quelle.cli.test",
        "--url",
        "http://127.0.0.1:18999",
    )
    target = tmp_path / "ziel"
    target.mkdir()
    output = target / f"sicherung-{datetime.now(UTC):%Y%m%d}.tar.gz"
    result = subprocess.run(
        [*OPENSEATS, "backup", "--data", str(data), "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: _limited(64 * 1024),
        check=False,
        env=dict(os.environ),
    )
    assert result.returncode == 1, result.stderr
    assert "Kein Platz" in result.stderr
    assert "no space" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(target.iterdir()) == []  # no partial archive, no temporary directory

    run("backup", "--data", str(data), "--output", str(output))  # without the limit it fits
    assert [p.name for p in target.iterdir()] == [output.name]
