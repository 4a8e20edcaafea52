"""The node's identity: node id, keys on disk, and the signed descriptor.

Private keys live in ``<data>/keys/<key id>.pem`` (mode 0600); the database
records each key's state (current, old with an expiry, revoked).  During a
rotation the new key becomes current and the previous one becomes old for
``old_key_grace_days``; descriptors are signed by every current key and by
every old key still in its grace period, which is what lets peers that only
know the old key accept the new one (SPEC.md §5).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from node.db import Database
from node.db import keys as key_repo
from node.settings import Settings
from protocol.keyring import sign_descriptor
from protocol.keys import SigningKey
from protocol.models import CurrentKey, Endpoints, NodeDescriptor, NodeDescriptorBody, OldKey
from protocol.models.descriptor import RevokedKey

#: A descriptor lists at most this many old keys (NodeDescriptorBody, SPEC.md §5).
MAX_OLD_KEYS = 16


class IdentityError(Exception):
    """The node's keys are missing or inconsistent."""


class RotationRefused(IdentityError):
    """Another rotation would push the descriptor past ``MAX_OLD_KEYS`` old keys."""


@dataclass(frozen=True)
class KeySet:
    current: list[SigningKey]
    old: list[tuple[SigningKey, datetime]]
    revoked: list[tuple[str, datetime]]

    @property
    def primary(self) -> SigningKey:
        return self.current[-1]


class NodeIdentity:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._keys: KeySet | None = None

    @property
    def node_id(self) -> str:
        return self.settings.node_id

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    def key_path(self, key_id: str) -> Path:
        return self.settings.keys_dir / f"{key_id.replace(':', '_')}.pem"

    async def load(self) -> KeySet:
        """Read key states from the database and the private keys from disk."""
        async with self.db.read() as conn:
            rows = await key_repo.all_keys(conn)
        current, old, revoked = [], [], []
        for row in rows:
            if row.state == "revoked":
                revoked.append((row.key_id, row.revoked_at or row.created_at))
                continue
            path = self.key_path(row.key_id)
            if not path.exists():
                if row.state == "current":
                    raise IdentityError(f"Schlüsseldatei fehlt / key file missing: {path}")
                continue
            key = SigningKey.load(path)
            if key.key_id != row.key_id:
                raise IdentityError(f"{path} enthält einen anderen Schlüssel / holds another key")
            if row.state == "current":
                current.append(key)
            elif row.expires_at is not None:
                old.append((key, row.expires_at))
        if not current:
            raise IdentityError("Kein aktueller Schlüssel / no current key: run 'openseats init'")
        self._keys = KeySet(current, old, revoked)
        return self._keys

    @property
    def keys(self) -> KeySet:
        if self._keys is None:
            raise IdentityError("keys not loaded")
        return self._keys

    @property
    def signing_key(self) -> SigningKey:
        return self.keys.primary

    @property
    def fingerprint(self) -> str:
        return self.keys.primary.fingerprint

    async def create_first_key(self, now: datetime) -> SigningKey:
        key = SigningKey.generate()
        self.settings.keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        key.save(self.key_path(key.key_id))
        async with self.db.write() as conn:
            await key_repo.add_current(conn, key.key_id, key.public_key_b64, now)
        await self.load()
        return key

    async def rotate(self, now: datetime) -> SigningKey:
        """Make a new key current; the previous one stays valid for the grace period.

        Refused (:class:`RotationRefused`) while ``MAX_OLD_KEYS`` old keys are
        still in their grace period: one more would make the descriptor
        invalid for every partner.
        """
        keys = await self.load()
        if sum(1 for _, expires in keys.old if expires > now) >= MAX_OLD_KEYS:
            raise RotationRefused(
                f"Schon {MAX_OLD_KEYS} alte Schlüssel in der Übergangsfrist; bitte warten, bis "
                f"einer abläuft / {MAX_OLD_KEYS} old keys are still in their grace period; "
                "wait until one expires"
            )
        key = SigningKey.generate()
        key.save(self.key_path(key.key_id))
        grace = timedelta(days=self.settings.old_key_grace_days)
        async with self.db.write() as conn:
            await key_repo.retire_current(conn, now + grace)
            await key_repo.add_current(conn, key.key_id, key.public_key_b64, now)
        await self.load()
        return key

    def endpoints(self) -> Endpoints:
        base = self.base_url
        return Endpoints(
            feed=f"{base}/protocol/v1/feed",
            inbox=f"{base}/protocol/v1/inbox",
            peering=f"{base}/protocol/v1/peering",
            reservations=f"{base}/protocol/v1/reservations",
        )

    def descriptor(self, now: datetime) -> NodeDescriptor:
        keys = self.keys
        live_old = [(key, expires) for key, expires in keys.old if expires > now]
        body = NodeDescriptorBody(
            type="node_descriptor",
            protocol="openseats/1",
            node_id=self.node_id,
            display_name=self.settings.display_name,
            base_url=self.base_url,
            endpoints=self.endpoints(),
            keys=[CurrentKey(key_id=k.key_id, public_key=k.public_key_b64) for k in keys.current],
            old_keys=[
                OldKey(key_id=k.key_id, public_key=k.public_key_b64, expires_at=expires)
                for k, expires in live_old
            ],
            revoked_keys=[RevokedKey(key_id=kid, revoked_at=at) for kid, at in keys.revoked],
            issued_at=now,
            valid_until=now + timedelta(days=self.settings.descriptor_validity_days),
        )
        return sign_descriptor(body, [*keys.current, *(key for key, _ in live_old)])
