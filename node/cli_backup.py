"""``openseats backup`` and ``openseats restore`` (see :mod:`node.backup` for the design).

These commands work on files, not through the node's services: a backup
reads the SQLite file with the standard library while ``serve`` may be
running, and a restore must not start the node on a database it is about to
replace.  Everything they print is German first, then English; mistakes end
with exit status 1, a PostgreSQL node asking for ``openseats backup`` or
``restore`` with 2 and the ``pg_dump``/``pg_restore`` commands to use.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from node import datadir
from node.backup import (
    RestoreReport,
    backup_database,
    bring_to_head,
    check_copy,
    check_revision,
    current_key_ids,
    put_in_place,
    remove_copy,
    unpack_database,
)
from node.backup_archive import Archive, BackupError
from node.backup_keys import export_keys, key_file_name, restore_keys
from node.cli_commands import CliError, ConfigError, command
from node.db import revisions
from node.db.urls import postgres_command_url, sqlite_file
from node.settings import CONFIG_NAME, Settings, SettingsError, load_settings, resolve_data_dir

KEYS_WARNING = """\
ACHTUNG: Diese Datei ist die Identität des Knotens. Wer sie hat, kann im Namen
des Knotens bei allen Partnern signieren. Geheim halten und offline aufbewahren
(z. B. verschlüsselter USB-Stick im Tresor), nie zusammen mit den Datenbank-
Sicherungen.
WARNING: this file is the node's identity. Whoever holds it can sign in the
node's name towards every partner. Keep it secret and offline (e.g. an
encrypted USB stick in a safe), never together with the database backups."""


def add_parsers(commands: Any) -> None:
    backup = commands.add_parser(
        "backup", help="Sicherung schreiben (SQLite) / write a backup (SQLite)"
    )
    _common(backup)
    backup.add_argument("--output", "-o", required=True, metavar="FILE", help="Zieldatei / file")
    backup.add_argument(
        "--keys",
        action="store_true",
        help="nur die privaten Schlüssel, getrennt und offline aufbewahren / "
        "the private keys only, to keep apart and offline",
    )
    backup.add_argument(
        "--force", action="store_true", help="vorhandene Datei ersetzen / replace an existing file"
    )
    restore = commands.add_parser(
        "restore", help="Sicherung oder Schlüssel zurückspielen / restore a backup or the keys"
    )
    _common(restore)
    restore.add_argument(
        "file", metavar="FILE", help="von openseats backup / from openseats backup"
    )
    restore.add_argument(
        "--force",
        action="store_true",
        help="vorhandene Datenbank oder Schlüssel ersetzen / replace an existing database or keys",
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="Datenverzeichnis / data dir (default: ./openseats-data)")
    parser.add_argument("--config", help="Konfigurationsdatei / config file (TOML)")


def _config_path(args: argparse.Namespace, data_dir: Path) -> Path:
    return Path(args.config) if args.config else data_dir / CONFIG_NAME


def _load(args: argparse.Namespace, config: Path | None = None) -> Settings:
    try:
        return load_settings(args.data, config or args.config)
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None


def postgres_help(settings: Settings, *, restoring: bool) -> str:
    url = postgres_command_url(settings.database)
    day = datetime.now(UTC).strftime("%Y%m%d")
    intro = (
        "Mit PostgreSQL spielt pg_restore die Datenbank zurück, nicht openseats restore / "
        "with PostgreSQL, restore the database with pg_restore, not openseats restore."
        if restoring
        else "Mit PostgreSQL sichert pg_dump die Datenbank, nicht openseats backup / "
        "with PostgreSQL, back up the database with pg_dump, not openseats backup."
    )
    return f"""\
Fehler / error: {intro}
Sichern / back up:
  pg_dump --format=custom --file=openseats-{day}.dump '{url}'
  openseats backup --keys --output openseats-keys.tar.gz   # Schlüssel / keys
Zurückspielen (Knoten gestoppt) / restore (node stopped):
  pg_restore --clean --if-exists --no-owner --dbname='{url}' openseats-{day}.dump
  openseats db upgrade
Passwort über PGPASSWORD oder ~/.pgpass / password via PGPASSWORD or ~/.pgpass.
Anleitung / guide: docs/backup.md"""


# --- backup ------------------------------------------------------------------------


@command("backup")
async def backup(args: argparse.Namespace) -> int:
    settings = _load(args)
    output = Path(args.output)
    now = datetime.now(UTC)
    try:
        if args.keys:
            ids = export_keys(
                settings.keys_dir, output, node_id=settings.node_id, now=now, force=args.force
            )
            print(KEYS_WARNING, file=sys.stderr)
            print(f"{len(ids)} Schlüssel gesichert in / keys written to {output}")
            return 0
        database = sqlite_file(settings.database)
        if database is None:
            print(postgres_help(settings, restoring=False), file=sys.stderr)
            return 2
        manifest = backup_database(
            database,
            output,
            node_id=settings.node_id,
            config=_config_path(args, settings.data_dir),
            now=now,
            force=args.force,
        )
    except BackupError as exc:
        raise CliError(str(exc)) from None
    print(
        f"Sicherung geschrieben / backup written: {output} "
        f"(Schema {manifest.schema_revision}, {manifest.database_bytes} Bytes)"
    )
    print(
        "Ohne Schlüssel; diese mit 'openseats backup --keys' getrennt sichern / "
        "keys not included; back them up apart with 'openseats backup --keys'"
    )
    return 0


# --- restore -----------------------------------------------------------------------


@command("restore")
async def restore(args: argparse.Namespace) -> int:
    data_dir = resolve_data_dir(args.data)
    config = _config_path(args, data_dir)
    source = Path(args.file)
    if not source.is_file():
        raise CliError(f"Datei nicht gefunden / file not found: {source}")
    try:
        archive = Archive(source)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    try:
        settings = _load(args) if config.exists() else None
        manifest = archive.manifest
        if settings is not None and settings.node_id != manifest.node_id:
            raise CliError(
                f"Die Sicherung gehört zu {manifest.node_id}, {config} zu {settings.node_id} / "
                f"the backup belongs to {manifest.node_id}, {config} to {settings.node_id}"
            )
        with _exclusive(data_dir):
            if manifest.kind == "keys":
                return _restore_keys(archive, settings, data_dir, force=args.force)
            if settings is not None and sqlite_file(settings.database) is None:
                print(postgres_help(settings, restoring=True), file=sys.stderr)
                return 2
            check_revision(manifest.schema_revision)  # before unpacking anything
            report = await _restore_database(archive, args, settings, data_dir, config)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    finally:
        archive.close()
    _print_report(report)
    if not config.exists():
        print(
            f"Keine Konfiguration unter {config}; vor dem Start anlegen / no configuration at "
            f"{config}; write one before starting the node",
            file=sys.stderr,
        )
    return 0


@contextmanager
def _exclusive(data_dir: Path) -> Iterator[None]:
    try:
        with datadir.exclusive(data_dir):
            yield
    except datadir.DataDirBusy:
        raise CliError(
            f"In {data_dir} läuft ein Knoten; zuerst stoppen / a node is running in "
            f"{data_dir}; stop it first"
        ) from None
    except datadir.DataDirNotWritable as exc:
        raise ConfigError(
            f"Datenverzeichnis nicht beschreibbar / data dir not writable: {exc}"
        ) from None


def _restore_keys(
    archive: Archive, settings: Settings | None, data_dir: Path, *, force: bool
) -> int:
    keys_dir = settings.keys_dir if settings is not None else data_dir / "keys"
    result = restore_keys(archive, keys_dir, force=force)
    print(
        f"Schlüssel zurückgespielt / keys restored in {keys_dir}: {len(result.written)} "
        f"geschrieben / written, {len(result.unchanged)} unverändert / unchanged"
    )
    return 0


async def _restore_database(
    archive: Archive,
    args: argparse.Namespace,
    settings: Settings | None,
    data_dir: Path,
    config: Path,
) -> RestoreReport:
    new_config: list[Path] = []

    def target_for(archived_config: bytes | None) -> Path:
        effective = settings
        if effective is None and archived_config is not None:
            partial = config.with_name(f".{config.name}.restore-{os.urandom(4).hex()}")
            partial.write_bytes(archived_config)
            new_config.append(partial)
            effective = _load(args, partial)
            if effective.node_id != archive.manifest.node_id:
                raise BackupError("node_id der Konfiguration passt nicht / config node_id differs")
        if effective is None:
            target = data_dir / "openseats.db"
        else:
            found = sqlite_file(effective.database)
            if found is None:
                raise BackupError(
                    "database_url zeigt auf PostgreSQL; dort pg_restore verwenden / "
                    "database_url points to PostgreSQL; use pg_restore there"
                )
            target = found
        if target.exists() and not args.force:
            raise BackupError(
                f"Datenbank {target} gibt es schon; mit --force ersetzen / database already "
                "exists; use --force to replace it"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    unpacked = None
    try:
        unpacked = unpack_database(archive, target_for)
        migrated_from = await bring_to_head(unpacked.database, check_copy(unpacked.database))
        put_in_place(unpacked.database, unpacked.target)
        report = RestoreReport(unpacked.target, archive.manifest, migrated_from)
        if new_config:
            os.replace(new_config.pop(), config)
            report.config_written = config
    finally:
        for leftover in new_config:
            with suppress(FileNotFoundError):
                leftover.unlink()
        if unpacked is not None:
            remove_copy(unpacked.database)  # gone already if it was put in place
    keys_dir = settings.keys_dir if settings is not None else data_dir / "keys"
    report.missing_keys = [
        key_id
        for key_id in current_key_ids(report.target)
        if not (keys_dir / key_file_name(key_id)).is_file()
    ]
    return report


def _print_report(report: RestoreReport) -> None:
    manifest = report.manifest
    print(
        f"Wiederhergestellt / restored: {report.target} (Knoten / node {manifest.node_id}, "
        f"Sicherung vom / backup of {manifest.created_at}, Schema {manifest.schema_revision})"
    )
    if report.migrated_from is not None:
        print(f"Schema {report.migrated_from} → {revisions.head()} migriert / migrated")
    if report.config_written is not None:
        print(f"Konfiguration geschrieben / configuration written: {report.config_written}")
    for key_id in report.missing_keys:
        print(
            f"Achtung: Schlüssel {key_id} fehlt; mit 'openseats restore SCHLÜSSEL-DATEI' "
            f"zurückspielen / warning: key {key_id} is missing; restore it with "
            "'openseats restore KEYS-FILE'",
            file=sys.stderr,
        )
