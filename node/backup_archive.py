"""The backup archive format: a manifest first, then plain files, written atomically.

Database backups and key backups share one format (:class:`Manifest` says
which ``kind`` an archive is), so ``openseats restore`` takes either and a
damaged or foreign file is recognised before anything is written.  An
archive is a ``.tar.gz`` whose first entry is ``manifest.json``; the other
entries are plain files at the top level or in ``keys/``: no links, no
absolute paths, no ``..``, so reading one can never write outside the
target.  Archives are built in a hidden temporary directory beside the
target, fsynced and renamed into place, with mode 0600 since both kinds
hold sensitive data; a full disk or file size limit ends with a clear
message and nothing at the target.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from protocol.models import format_timestamp

DB_MEMBER = "openseats.db"
MANIFEST_MEMBER = "manifest.json"
CONFIG_MEMBER = "openseats.toml"
_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
# What reading a truncated or corrupted .tar.gz raises, besides tarfile's own errors.
_UNREADABLE = (OSError, tarfile.TarError, EOFError, zlib.error)
CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup or restore cannot be done; the message says why, German first."""


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    format: Literal["openseats-backup"] = "openseats-backup"
    format_version: Literal[1] = 1
    kind: Literal["database", "keys"]
    node_id: str
    created_at: str
    openseats_version: str
    schema_revision: str | None = None
    database_sha256: str | None = None
    database_bytes: int | None = None
    key_ids: list[str] = []


def openseats_version() -> str:
    try:
        return version("openseats")
    except PackageNotFoundError:  # a source tree without install
        return "0+unknown"


def new_manifest(kind: Literal["database", "keys"], node_id: str, now: datetime) -> Manifest:
    return Manifest(
        kind=kind,
        node_id=node_id,
        created_at=format_timestamp(now),
        openseats_version=openseats_version(),
    )


# --- writing archives ----------------------------------------------------------


def write_problem(target: Path, exc: OSError) -> BackupError:
    if exc.errno in _FULL:
        return BackupError(
            f"Kein Platz für die Sicherung unter {target} (Datenträger voll oder "
            f"Dateigrößen-Grenze); nichts geschrieben / no space for the backup at {target} "
            "(disk full or file size limit); nothing was written"
        )
    return BackupError(
        f"Sicherung nach {target} fehlgeschlagen, nichts geschrieben / backup to {target} "
        f"failed, nothing was written: {exc.strerror or exc}"
    )


def check_target(output: Path, *, force: bool) -> None:
    if output.is_dir():
        raise BackupError(f"{output} ist ein Verzeichnis / is a directory")
    if output.exists() and not force:
        raise BackupError(
            f"{output} gibt es schon; mit --force ersetzen / already exists; use --force to "
            "replace it"
        )
    if not output.parent.is_dir():
        raise BackupError(f"Verzeichnis fehlt / no such directory: {output.parent}")


@contextmanager
def scratch_dir(beside: Path) -> Iterator[Path]:
    """A hidden temporary directory on the target's file system, removed afterwards."""
    try:
        path = Path(tempfile.mkdtemp(dir=beside.parent, prefix=".openseats-backup-"))
    except OSError as exc:
        raise write_problem(beside, exc) from None
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_archive(
    output: Path, scratch: Path, manifest: Manifest, files: dict[str, Path | bytes]
) -> None:
    """Write a .tar.gz (mode 0600) with the manifest first, then rename it to *output*."""
    partial = scratch / "archive.tar.gz"
    payload = manifest.model_dump_json(indent=2).encode()
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6) as tar:
                _add(tar, MANIFEST_MEMBER, payload)
                for name, source in files.items():
                    _add(tar, name, source)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, output)
        fsync_dir(output.parent)
    except OSError as exc:
        raise write_problem(output, exc) from None


def _add(tar: tarfile.TarFile, name: str, source: Path | bytes) -> None:
    info = tarfile.TarInfo(name)
    info.mode = 0o600
    info.mtime = int(time.time())
    if isinstance(source, bytes):
        info.size = len(source)
        tar.addfile(info, io.BytesIO(source))
        return
    info.size = source.stat().st_size
    with source.open("rb") as handle:
        tar.addfile(info, handle)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- reading archives ----------------------------------------------------------


class Archive:
    """An opened backup: the manifest is read and checked, the rest streams on demand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._tar = tarfile.open(path, mode="r:gz")  # noqa: SIM115 - closed in close()
        except _UNREADABLE as exc:
            raise self._damaged(exc) from None
        first = self._next()
        if first is None or first.name != MANIFEST_MEMBER:
            self.close()
            raise BackupError(
                f"{path}: keine OpenSeats-Sicherung (manifest.json fehlt) / "
                "not an OpenSeats backup (no manifest.json)"
            )
        try:
            self.manifest = Manifest.model_validate_json(self._read_small(first))
        except ValidationError:
            self.close()
            raise BackupError(
                f"{path}: manifest.json passt nicht zu dieser Version / manifest.json is not "
                "one this version understands"
            ) from None

    def _damaged(self, exc: BaseException) -> BackupError:
        return BackupError(
            f"{self.path}: Sicherung nicht lesbar oder beschädigt / backup unreadable or "
            f"damaged: {exc}"
        )

    def _next(self) -> tarfile.TarInfo | None:
        try:
            member = self._tar.next()
        except _UNREADABLE as exc:
            raise self._damaged(exc) from None
        if member is not None and not _allowed(member):
            raise BackupError(f"{self.path}: unerwarteter Eintrag / unexpected entry")
        return member

    def _read_small(self, member: tarfile.TarInfo, limit: int = 1024 * 1024) -> bytes:
        if member.size > limit:
            raise BackupError(f"{self.path}: {member.name} zu groß / too large")
        handle = self._tar.extractfile(member)
        if handle is None:
            raise BackupError(f"{self.path}: {member.name} nicht lesbar / unreadable")
        try:
            return handle.read()
        except _UNREADABLE as exc:
            raise self._damaged(exc) from None

    def members(self) -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
        """The remaining entries, in order, each with a stream of its bytes."""
        while (member := self._next()) is not None:
            handle = self._tar.extractfile(member)
            if handle is None:
                raise BackupError(f"{self.path}: {member.name} nicht lesbar / unreadable")
            yield member, handle

    def small(self, member: tarfile.TarInfo, limit: int = 1024 * 1024) -> bytes:
        return self._read_small(member, limit)

    def copy_to(self, stream: IO[bytes], target: Path) -> tuple[str, int]:
        """Stream one entry to a new file (mode 0600); its SHA-256 and size."""
        digest = hashlib.sha256()
        size = 0
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                while chunk := self._read(stream):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            if exc.errno in _FULL:
                raise BackupError(
                    f"Kein Platz unter {target.parent} / no space left in {target.parent}"
                ) from None
            raise BackupError(
                f"{target.parent}: Schreiben fehlgeschlagen / cannot write: {exc.strerror or exc}"
            ) from None
        return digest.hexdigest(), size

    def _read(self, stream: IO[bytes]) -> bytes:
        try:
            return stream.read(CHUNK)
        except _UNREADABLE as exc:
            raise self._damaged(exc) from None

    def close(self) -> None:
        self._tar.close()


def _allowed(member: tarfile.TarInfo) -> bool:
    """Plain files at the top or in ``keys/``: nothing that could escape the target."""
    parts = member.name.split("/")
    flat = len(parts) == 1 or (len(parts) == 2 and parts[0] == "keys")
    return member.isfile() and flat and all(part not in ("", ".", "..") for part in parts)
