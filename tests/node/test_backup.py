"""``openseats backup`` / ``restore``, run as an operator runs them: real processes, real files.

SQLite: an online backup while the node serves and keeps writing, the
keys kept apart, and the restore drill onto a fresh machine (data dir);
every refusal of ``restore`` leaves the target as it was; an older backup
is migrated.  PostgreSQL: ``backup`` explains ``pg_dump`` and the commands
it prints really dump and restore a node.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import shlex
import sqlite3
import subprocess
import tarfile
import threading
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from node.backup import backup_database
from node.db import Database, revisions
from tests.node.cli_inprocess import init, run
from tests.node.processes import pg_databases
from tests.node.test_cli import Cli

START = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT10:00")


@pytest.fixture
def cli(tmp_path: Path) -> Any:
    helper = Cli(tmp_path)
    yield helper
    for process in helper.servers:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def add_session(data: Path, title: str) -> str:
    return run(
        "session", "add", "--data", str(data), "--title", title, "--start", START,
        "--duration", "60", "--host", "Ada Lovelace",
    ).stdout.strip()  # fmt: skip


def titles(data: Path) -> list[str]:
    listing = run("session", "list", "--data", str(data)).stdout
    return sorted(line.split("\t")[-1] for line in listing.splitlines())


def api_post(port: int, token: str, path: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/admin/api/v1{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def repack(source: Path, target: Path, **changes: bytes) -> None:
    """Rewrite an archive with some entries replaced (a damaged or foreign backup)."""
    entries = members(source) | changes
    with tarfile.open(target, "w:gz") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".restore-" in p.name)


# --- SQLite ----------------------------------------------------------------------


def test_online_backup_keys_apart_and_restore_drill(cli: Cli, tmp_path: Path) -> None:
    data, port, fingerprint = init(tmp_path, "lex")
    token = run("token", "create", "--role", "admin", "--data", str(data)).stdout.strip()
    server = cli.serve(data, port)
    for n in range(3):
        assert api_post(port, token, "/sessions", _session(f"Vorher {n}")) == 201

    stop = threading.Event()
    written: list[int] = []

    busy = threading.Event()

    def keep_writing() -> None:  # the node keeps changing data during the backup
        while not stop.is_set():
            written.append(api_post(port, token, "/sessions", _session(f"Neu {len(written)}")))
            if len(written) >= 2:
                busy.set()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        assert busy.wait(60)
        backup = run("backup", "--data", str(data), "--output", str(tmp_path / "lex.tar.gz"))
    finally:
        stop.set()
        writer.join(60)
    assert set(written) <= {201}
    assert "keys not included" in backup.stdout
    archive = tmp_path / "lex.tar.gz"
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    content = members(archive)
    assert list(content) == ["manifest.json", "openseats.toml", "openseats.db"]
    assert b"PRIVATE KEY" not in b"".join(content.values())
    manifest = json.loads(content["manifest.json"])
    assert manifest["node_id"] == "lex.cli.test"
    assert manifest["schema_revision"] == revisions.head()

    keys = run("backup", "--keys", "--data", str(data), "--output", str(tmp_path / "keys.tgz"))
    assert "ACHTUNG" in keys.stderr
    assert "WARNING: this file is the node's identity" in keys.stderr
    assert oct((tmp_path / "keys.tgz").stat().st_mode & 0o777) == "0o600"
    assert [n for n in members(tmp_path / "keys.tgz") if n != "manifest.json"] == [
        f"keys/{p.name}" for p in (data / "keys").iterdir()
    ]

    refused = run("restore", str(archive), "--force", "--data", str(data), check=False)
    assert refused.returncode == 1
    assert "läuft ein Knoten" in refused.stderr
    assert "a node is running" in refused.stderr

    server.terminate()  # the machine is gone; restore on a new one
    assert server.wait(15) == 0
    fresh = tmp_path / "ersatz"
    out = run("restore", str(archive), "--data", str(fresh))
    assert "configuration written" in out.stdout
    assert "key" in out.stderr  # the keys are still missing, and it says so
    run("restore", str(tmp_path / "keys.tgz"), "--data", str(fresh))
    assert run("fingerprint", "--data", str(fresh)).stdout.strip() == fingerprint

    restored = sqlite3.connect(fresh / "openseats.db")
    try:
        names = [row[0] for row in restored.execute("SELECT title FROM sessions")]
        mirrored = [row[0] for row in restored.execute("SELECT title FROM catalogue")]
        assert restored.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        restored.close()
    assert 3 + 2 <= len(names) <= 3 + len(written)  # what was written before the copy, at least
    assert sorted(names) == sorted(mirrored)  # every create complete: row and catalogue
    cli.serve(fresh, port)
    with urllib.request.urlopen(
        urllib.request.Request(
            f"http://127.0.0.1:{port}/admin/api/v1/sessions",
            headers={"Authorization": f"Bearer {token}"},
        ),
        timeout=30,
    ) as response:
        served = [s["title"] for s in json.load(response)["sessions"]]
    assert sorted(served) == sorted(names)


def _session(title: str) -> dict[str, Any]:
    return {
        "title": title,
        "start": f"{START}:00+01:00",
        "timezone": "Europe/Berlin",
        "duration_minutes": 60,
        "host_name": "Ada Lovelace",
    }


def test_restore_refusals_change_nothing(tmp_path: Path) -> None:
    data, _, _ = init(tmp_path, "lex")
    add_session(data, "In der Sicherung")
    archive = tmp_path / "lex.tar.gz"
    run("backup", "--data", str(data), "--output", str(archive))
    again = run("backup", "--data", str(data), "--output", str(archive), check=False)
    assert (again.returncode, "--force" in again.stderr) == (1, True)
    add_session(data, "Nach der Sicherung")

    def refused(source: Path, target: Path, *expected: str, force: bool = False) -> None:
        before = {p.name: p.stat().st_mtime_ns for p in target.iterdir()} if target.exists() else {}
        flags = ["--force"] if force else []
        result = run("restore", str(source), *flags, "--data", str(target), check=False)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        for text_ in expected:
            assert text_ in result.stderr
        after = {p.name: p.stat().st_mtime_ns for p in target.iterdir()} if target.exists() else {}
        assert {k: v for k, v in after.items() if k != "openseats.lock"} == {
            k: v for k, v in before.items() if k != "openseats.lock"
        }

    refused(archive, data, "gibt es schon", "--force")
    assert titles(data) == ["In der Sicherung", "Nach der Sicherung"]

    other, _, _ = init(tmp_path, "datev")
    refused(archive, other, "gehört zu", "lex.cli.test", force=True)

    damaged = tmp_path / "damaged.tar.gz"
    database = bytearray(members(archive)["openseats.db"])
    database[len(database) // 2] ^= 0xFF
    repack(archive, damaged, **{"openseats.db": bytes(database)})
    refused(damaged, tmp_path / "leer", "Prüfsumme", "checksum", force=True)

    newer = tmp_path / "newer.tar.gz"
    manifest = json.loads(members(archive)["manifest.json"]) | {"schema_revision": "9999"}
    repack(archive, newer, **{"manifest.json": json.dumps(manifest).encode()})
    refused(newer, tmp_path / "leer", "9999", "upgrade OpenSeats first", force=True)

    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    refused(truncated, tmp_path / "leer", "beschädigt", "damaged", force=True)

    junk = tmp_path / "urlaub.jpg"
    junk.write_bytes(b"\xff\xd8\xff\xe0 kein Archiv")
    refused(junk, tmp_path / "leer", "nicht lesbar", force=True)
    assert leftovers(tmp_path / "leer") == []

    out = run("restore", str(archive), "--force", "--data", str(data))
    assert "restored" in out.stdout
    assert titles(data) == ["In der Sicherung"]
    assert leftovers(data) == []


def test_restore_migrates_an_older_backup(tmp_path: Path) -> None:
    old = tmp_path / "old.db"

    async def first_release() -> None:
        db = Database(f"sqlite:///{old}")
        try:
            await revisions.upgrade_to(db, revisions.known()[0])
        finally:
            await db.dispose()

    asyncio.run(first_release())
    archive = tmp_path / "alt.tar.gz"
    manifest = backup_database(
        old, archive, node_id="alt.cli.test", config=None, now=datetime.now(UTC)
    )
    assert manifest.schema_revision == revisions.known()[0]

    target = tmp_path / "neu"
    restored = run("restore", str(archive), "--data", str(target))
    assert f"Schema {revisions.known()[0]} → {revisions.head()}" in restored.stdout
    assert "no configuration" in restored.stderr
    assert revisions.sqlite_revision(target / "openseats.db") == revisions.head()
    assert sorted(p.name for p in target.iterdir()) == ["openseats.db", "openseats.lock"]


def test_keys_restore_checks_the_node(tmp_path: Path) -> None:
    lex, _, fingerprint = init(tmp_path, "lex")
    datev, _, _ = init(tmp_path, "datev")
    keys = tmp_path / "lex-keys.tgz"
    run("backup", "--keys", "--data", str(lex), "--output", str(keys))
    wrong = run("restore", str(keys), "--data", str(datev), check=False)
    assert (wrong.returncode, "gehört zu" in wrong.stderr) == (1, True)
    out = run("restore", str(keys), "--data", str(lex)).stdout
    assert "0 geschrieben / written, 1 unverändert / unchanged" in out
    assert run("fingerprint", "--data", str(lex)).stdout.strip() == fingerprint


# --- PostgreSQL -------------------------------------------------------------------


def test_postgres_backup_prints_pg_dump_steps_that_work(tmp_path: Path) -> None:
    async def drill() -> None:
        async with pg_databases(2) as (source_url, target_url):
            await asyncio.to_thread(_drill, tmp_path, source_url, target_url)

    asyncio.run(drill())


def _drill(tmp_path: Path, source_url: str, target_url: str) -> None:
    data = tmp_path / "pg"
    init = run(
        "init", "--data", str(data), "--node-id", "pg.cli.test", "--url", "http://127.0.0.1:1",
        "--database-url", source_url,
    )  # fmt: skip
    fingerprint = init.stdout.strip().splitlines()[-1].split(": ")[-1]
    add_session(data, "Auf PostgreSQL")

    explained = run("backup", "--data", str(data), "--output", str(tmp_path / "x"), check=False)
    assert explained.returncode == 2
    assert "Traceback" not in explained.stderr
    assert "pg_dump" in explained.stderr
    assert "docs/backup.md" in explained.stderr
    assert not (tmp_path / "x").exists()
    run("backup", "--keys", "--data", str(data), "--output", str(tmp_path / "keys.tgz"))

    dump = re.search(r"^\s*(pg_dump .*)$", explained.stderr, re.MULTILINE)
    restore = re.search(r"^\s*(pg_restore .*)$", explained.stderr, re.MULTILINE)
    assert dump is not None
    assert restore is not None
    subprocess.run(shlex.split(dump.group(1)), cwd=tmp_path, check=True, timeout=120)
    dumped = next(tmp_path.glob("openseats-*.dump"))
    target_command = restore.group(1).replace(source_url, target_url)
    assert target_command != restore.group(1)
    subprocess.run(shlex.split(target_command), cwd=tmp_path, check=True, timeout=120)
    assert dumped.name in target_command

    config = data / "openseats.toml"
    config.write_text(config.read_text().replace(source_url, target_url))
    assert "aktuell" in run("db", "upgrade", "--data", str(data)).stdout
    assert titles(data) == ["Auf PostgreSQL"]
    assert run("fingerprint", "--data", str(data)).stdout.strip() == fingerprint

    sqlite_archive = tmp_path / "sqlite.tar.gz"
    repack_manifest = {
        "kind": "database", "node_id": "pg.cli.test", "created_at": "2026-01-01T00:00:00Z",
        "openseats_version": "0.1.0", "schema_revision": revisions.head(),
    }  # fmt: skip
    with tarfile.open(sqlite_archive, "w:gz") as tar:
        payload = json.dumps(repack_manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    wrong = run("restore", str(sqlite_archive), "--data", str(data), check=False)
    assert wrong.returncode == 2
    assert "pg_restore" in wrong.stderr
