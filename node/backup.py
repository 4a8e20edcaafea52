"""Backups of a SQLite node: one archive file, taken while the node runs, restored atomically.

A backup is a ``.tar.gz`` holding ``manifest.json`` (first, so a restore
can check it before reading anything else), ``openseats.db`` and the
node's ``openseats.toml``.  The manifest names the node, the schema
revision of the database, when and by which OpenSeats version it was made,
and the SHA-256 of the database, which a restore checks.  The private keys
are *not* in it: a database backup travels to backup servers and tapes,
while the keys are the node's identity and belong offline
(:mod:`node.backup_keys` writes them to a separate archive).  The database
does hold personal data (attendees' names and e-mail addresses), so the
archive is written with mode 0600 like the keys.

The copy is consistent although the node keeps writing: SQLite's online
backup API copies the whole file in one step inside a read transaction,
which in WAL mode never blocks the node's writers, and the copy is then
switched to a self-contained rollback journal and checked with
``PRAGMA integrity_check``.  Nothing is ever half-written: the copy and the
archive are built in a hidden temporary directory beside the target and
only the finished archive is renamed into place.  A full disk (or a file
size limit) ends with a clear message and no file at the target.

Restoring goes the other way and is just as careful.  It refuses while a
node serves from the data dir (:mod:`node.datadir`), when the database
already exists (unless ``--force``), when the archive is damaged, when it
belongs to another node than the data dir's configuration, and when its
schema is newer than this release knows.  An older schema is migrated on
the temporary copy, so the file that is renamed into place is complete and
current; stale ``-wal``/``-shm`` files of the replaced database are removed
first, because SQLite would otherwise replay them into the new file.

PostgreSQL has its own tools for this (``pg_dump``/``pg_restore``);
``docs/backup.md`` describes them, and the CLI prints the commands.
"""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from node.backup_archive import (
    CHUNK,
    CONFIG_MEMBER,
    DB_MEMBER,
    Archive,
    BackupError,
    Manifest,
    check_target,
    fsync_dir,
    new_manifest,
    scratch_dir,
    write_archive,
    write_problem,
)
from node.db import Database, revisions


@dataclass
class RestoreReport:
    target: Path
    manifest: Manifest
    migrated_from: str | None = None
    config_written: Path | None = None
    missing_keys: list[str] = field(default_factory=list)


_SQLITE_FULL, _SQLITE_IOERR_WRITE = 13, 778


def copy_database(source: Path, target: Path, *, output: Path) -> str | None:
    """A consistent copy of a live SQLite database; returns its schema revision.

    Only the copy is written, so a full disk or a write error there is
    reported as a problem of the backup's target, *output*.
    """
    if not source.is_file():
        raise BackupError(f"Keine Datenbank unter / no database at {source}")
    try:
        src = sqlite3.connect(source, timeout=30)
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)  # every page in one step, inside one read transaction
                dst.execute("PRAGMA journal_mode=DELETE")
                check = dst.execute("PRAGMA integrity_check").fetchone()
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        code = getattr(exc, "sqlite_errorcode", 0) or 0
        if code & 0xFF == _SQLITE_FULL or code == _SQLITE_IOERR_WRITE:
            raise write_problem(output, OSError(errno.ENOSPC, str(exc))) from None
        raise BackupError(
            f"Datenbank {source} nicht lesbar / cannot read the database: {exc}"
        ) from None
    if check is None or check[0] != "ok":
        raise BackupError(
            f"Datenbank {source} ist beschädigt (integrity_check) / is damaged: {check}"
        )
    return revisions.sqlite_revision(target)


def backup_database(
    database: Path,
    output: Path,
    *,
    node_id: str,
    config: Path | None,
    now: datetime,
    force: bool = False,
) -> Manifest:
    check_target(output, force=force)
    with scratch_dir(output) as scratch:
        copy = scratch / DB_MEMBER
        revision = copy_database(database, copy, output=output)
        digest = hashlib.sha256()
        with copy.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
        manifest = new_manifest("database", node_id, now).model_copy(
            update={
                "schema_revision": revision,
                "database_sha256": digest.hexdigest(),
                "database_bytes": copy.stat().st_size,
            }
        )
        files: dict[str, Path | bytes] = {}
        if config is not None and config.is_file():  # before the database: see unpack
            files[CONFIG_MEMBER] = config.read_bytes()
        files[DB_MEMBER] = copy
        write_archive(output, scratch, manifest, files)
    return manifest


@dataclass
class Unpacked:
    """A database archive's content: the database unpacked beside its target."""

    database: Path
    target: Path


def unpack_database(archive: Archive, target_for: Callable[[bytes | None], Path]) -> Unpacked:
    """Extract the database next to where it goes, checking its size and hash.

    The archive holds the configuration before the database, so
    *target_for* gets the archived ``openseats.toml`` (or ``None``) and says
    where the database belongs before a byte of it is written.
    """
    manifest = archive.manifest
    config: bytes | None = None
    unpacked: Unpacked | None = None
    for member, stream in archive.members():
        if member.name == CONFIG_MEMBER and config is None and unpacked is None:
            config = archive.small(member)
        elif member.name == DB_MEMBER and unpacked is None:
            target = target_for(config)
            copy = target.with_name(f".{target.name}.restore-{os.urandom(4).hex()}")
            unpacked = Unpacked(copy, target)
            try:
                found = archive.copy_to(stream, copy)
            except BackupError:
                with suppress(FileNotFoundError):
                    copy.unlink()
                raise
            if found != (manifest.database_sha256, manifest.database_bytes):
                copy.unlink()
                raise BackupError(
                    f"{archive.path}: Prüfsumme falsch, Sicherung beschädigt / checksum "
                    "mismatch, the backup is damaged"
                )
        else:
            raise BackupError(f"{archive.path}: unerwarteter Eintrag / unexpected entry")
    if unpacked is None:
        raise BackupError(f"{archive.path}: openseats.db fehlt / is missing")
    return unpacked


def check_revision(revision: str | None) -> None:
    """Refuse a database from a newer release: this one cannot know its schema."""
    known = revisions.known()
    if revision is not None and revision not in known:
        raise BackupError(
            f"Die Sicherung hat Schema {revision}, neuer als diese Version kennt (bis "
            f"{known[-1]}); zuerst OpenSeats aktualisieren / the backup has schema "
            f"{revision}, newer than this release knows (up to {known[-1]}); upgrade "
            "OpenSeats first"
        )


async def bring_to_head(database: Path, revision: str | None) -> str | None:
    """Check the copy's schema against this release; migrate an older one in place."""
    if revision is None:
        raise BackupError("Datenbank ohne Schema-Stand / database has no schema revision")
    check_revision(revision)
    if revision == revisions.head():
        return None
    db = Database(f"sqlite:///{database}")
    try:
        await db.upgrade()
    finally:
        await db.dispose()
    connection = sqlite3.connect(database)
    try:
        connection.execute("PRAGMA journal_mode=DELETE")  # fold the WAL back into the file
    finally:
        connection.close()
    return revision


def check_copy(database: Path) -> str | None:
    """Integrity and schema revision of an unpacked copy."""
    try:
        connection = sqlite3.connect(database)
        try:
            check = connection.execute("PRAGMA integrity_check").fetchone()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise BackupError(f"Datenbank in der Sicherung nicht lesbar / unreadable: {exc}") from None
    if check is None or check[0] != "ok":
        raise BackupError(f"Datenbank in der Sicherung beschädigt / damaged: {check}")
    return revisions.sqlite_revision(database)


def put_in_place(copy: Path, target: Path) -> None:
    """Atomically replace *target* by *copy*, dropping the old file's WAL and shm."""
    for suffix in ("-wal", "-shm", "-journal"):
        with suppress(FileNotFoundError):
            target.with_name(target.name + suffix).unlink()
    os.replace(copy, target)
    fsync_dir(target.parent)


def remove_copy(copy: Path) -> None:
    """Delete an unpacked copy that was not put in place, with SQLite's side files."""
    for path in (copy, *(copy.with_name(copy.name + s) for s in ("-wal", "-shm", "-journal"))):
        with suppress(FileNotFoundError):
            path.unlink()


def current_key_ids(database: Path) -> list[str]:
    connection = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = connection.execute("SELECT key_id FROM node_keys WHERE state = 'current'")
        return [str(row[0]) for row in rows]
    finally:
        connection.close()
