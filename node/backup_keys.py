"""The node's private keys, backed up apart from its database.

Whoever holds these files *is* the node to its partners: they can sign
announcements, peering requests and reservation answers in its name.  So
they never go into the database backup, which is copied around routinely;
``openseats backup --keys`` writes them into an archive of their own (mode
0600, with a warning that it belongs offline, e.g. on an encrypted stick
in a safe), in the same format as a database backup with ``kind: keys``.

Restoring checks each file before writing it: it must hold an Ed25519 key
whose id matches its name.  Existing key files are kept when they are
identical, and never overwritten when they differ unless ``--force``: a
key replaced by mistake would cut the node off from every partner.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from node.backup_archive import (
    Archive,
    BackupError,
    check_target,
    new_manifest,
    scratch_dir,
    write_archive,
)
from protocol.errors import ProtocolError
from protocol.keys import SigningKey

KEYS_PREFIX = "keys/"


def key_file_name(key_id: str) -> str:
    """The file name :class:`node.identity.NodeIdentity` uses for a key."""
    return f"{key_id.replace(':', '_')}.pem"


def export_keys(
    keys_dir: Path, output: Path, *, node_id: str, now: datetime, force: bool
) -> list[str]:
    """Write every key file of *keys_dir* into a 0600 archive at *output*; their ids."""
    check_target(output, force=force)
    files: dict[str, Path | bytes] = {}
    key_ids = []
    for path in sorted(keys_dir.glob("*.pem")) if keys_dir.is_dir() else []:
        data = path.read_bytes()
        key_ids.append(_checked(path.name, data).key_id)
        files[KEYS_PREFIX + path.name] = data
    if not files:
        raise BackupError(f"Keine Schlüssel unter / no keys in {keys_dir}")
    manifest = new_manifest("keys", node_id, now).model_copy(update={"key_ids": key_ids})
    with scratch_dir(output) as scratch:
        write_archive(output, scratch, manifest, files)
    return key_ids


@dataclass
class KeysRestored:
    written: list[str]
    unchanged: list[str]


def restore_keys(archive: Archive, keys_dir: Path, *, force: bool) -> KeysRestored:
    """Check every key in *archive*, then write them into *keys_dir* (0700, files 0600)."""
    keys: dict[str, bytes] = {}
    for member, _ in archive.members():
        if not member.name.startswith(KEYS_PREFIX):
            raise BackupError(f"{archive.path}: unerwarteter Eintrag / unexpected entry")
        name = member.name.removeprefix(KEYS_PREFIX)
        data = archive.small(member, limit=64 * 1024)
        _checked(name, data)
        keys[name] = data
    if not keys:
        raise BackupError(f"{archive.path}: keine Schlüssel darin / holds no keys")
    written, unchanged = [], []
    conflicts = [
        name
        for name, data in keys.items()
        if (keys_dir / name).exists() and (keys_dir / name).read_bytes() != data
    ]
    if conflicts and not force:
        raise BackupError(
            f"{keys_dir} enthält andere Schlüssel unter denselben Namen ({', '.join(conflicts)}); "
            f"mit --force ersetzen / holds different keys under the same names; use --force "
            "to replace them"
        )
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(keys_dir, 0o700)
    for name, data in keys.items():
        target = keys_dir / name
        if target.exists() and target.read_bytes() == data:
            unchanged.append(name)
            continue
        partial = keys_dir / f".{name}.restore"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, target)
        written.append(name)
    return KeysRestored(written, unchanged)


def _checked(name: str, data: bytes) -> SigningKey:
    try:
        key = SigningKey.from_pem(data)
    except ProtocolError:
        raise BackupError(f"{name}: kein Ed25519-Schlüssel / not an Ed25519 key") from None
    if name != key_file_name(key.key_id):
        raise BackupError(
            f"{name}: Dateiname passt nicht zum Schlüssel {key.key_id} / file name does not "
            "match the key"
        )
    return key
