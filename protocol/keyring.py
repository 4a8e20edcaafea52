"""Pinned keys of one peer, and the descriptor rules that change them.

A node pins a partner's keys the first time an admin peers with it, after
comparing the fingerprint out of band.  From then on the partner's keys
change only through descriptors that satisfy the **rotation rule**:

1. the descriptor is well formed, names the same node, is not expired and
   is not older than the one already pinned;
2. every current key it lists has signed it (proof of possession); and
3. at least one signature comes from a key that is pinned *now* (current,
   not revoked).  A descriptor signed only by unpinned keys is rejected.

Revocations are sticky: a key once revoked stays revoked even if a later
descriptor forgets it.  Old keys verify objects issued before their
``expires_at``; revoked keys verify nothing.

:class:`PinnedKeys` is also the :class:`~protocol.signing.KeyResolver` for
objects and requests of that peer.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocol.errors import (
    DescriptorRejected,
    ExpiredKey,
    MissingSignature,
    RevokedKey,
    UnknownKey,
)
from protocol.keys import SigningKey, fingerprint_for
from protocol.models import NodeDescriptor, NodeDescriptorBody, parse, seal
from protocol.signing import verify_object


@dataclass(frozen=True)
class PinnedKeys:
    """The keys of *node_id* that this node trusts, and since which descriptor."""

    node_id: str
    current: dict[str, Ed25519PublicKey]
    old: dict[str, tuple[Ed25519PublicKey, datetime]] = field(default_factory=dict)
    revoked: dict[str, datetime] = field(default_factory=dict)
    descriptor_issued_at: datetime | None = None

    @classmethod
    def from_descriptor(
        cls, descriptor: NodeDescriptor, *, previous: PinnedKeys | None = None
    ) -> PinnedKeys:
        revoked = dict(previous.revoked) if previous else {}
        revoked.update({key.key_id: key.revoked_at for key in descriptor.revoked_keys})
        current = {k.key_id: k.public() for k in descriptor.keys if k.key_id not in revoked}
        old = {
            k.key_id: (k.public(), k.expires_at)
            for k in descriptor.old_keys
            if k.key_id not in revoked
        }
        return cls(descriptor.node_id, current, old, revoked, descriptor.issued_at)

    def resolve(self, signer: str, key_id: str, at: datetime) -> Ed25519PublicKey:
        if signer != self.node_id:
            raise UnknownKey(f"no keys are pinned for {signer!r}")
        if key_id in self.revoked:
            raise RevokedKey(f"key {key_id} of {signer} is revoked")
        if key_id in self.current:
            return self.current[key_id]
        if key_id in self.old:
            key, expires_at = self.old[key_id]
            if at < expires_at:
                return key
            raise ExpiredKey(f"key {key_id} of {signer} expired at {expires_at.isoformat()}")
        raise UnknownKey(f"key {key_id} is not pinned for {signer}")

    def fingerprints(self) -> list[str]:
        return [fingerprint_for(key) for key in self.current.values()]


class _SelfKeys:
    """Resolves the keys a descriptor lists itself: current ones, and old ones
    that had not expired when it was issued (a node keeps signing with its
    previous key for a while, so peers that pinned only that key follow)."""

    def __init__(self, descriptor: NodeDescriptor) -> None:
        self._node_id = descriptor.node_id
        self._keys = {key.key_id: key.public() for key in descriptor.keys}
        self._keys.update(
            {
                key.key_id: key.public()
                for key in descriptor.old_keys
                if key.expires_at > descriptor.issued_at
            }
        )

    def resolve(self, signer: str, key_id: str, at: datetime) -> Ed25519PublicKey:
        if signer == self._node_id and key_id in self._keys:
            return self._keys[key_id]
        raise UnknownKey(f"key {key_id} is not a key of the descriptor")


class _RotationKeys(_SelfKeys):
    """The descriptor's own current keys plus the keys pinned now."""

    def __init__(self, descriptor: NodeDescriptor, pinned: PinnedKeys) -> None:
        super().__init__(descriptor)
        self._pinned = pinned

    def resolve(self, signer: str, key_id: str, at: datetime) -> Ed25519PublicKey:
        if key_id in self._pinned.revoked:
            raise RevokedKey(f"key {key_id} of {signer} is revoked")
        if signer == self._pinned.node_id and key_id in self._pinned.current:
            return self._pinned.current[key_id]
        return super().resolve(signer, key_id, at)


MAX_CLOCK_SKEW = timedelta(seconds=30)


def _check_window(descriptor: NodeDescriptor, now: datetime) -> None:
    if descriptor.valid_until <= now:
        raise DescriptorRejected(f"descriptor expired at {descriptor.valid_until.isoformat()}")
    if descriptor.issued_at > now + MAX_CLOCK_SKEW:
        # Pinning a future-dated descriptor would make every honest later
        # one look "older" and block the node's rotations.
        raise DescriptorRejected("descriptor issued in the future")


def _signed_key_ids(raw: dict[str, Any], node_id: str) -> set[str]:
    signatures = raw.get("signatures")
    if not isinstance(signatures, dict):
        return set()
    by_key = signatures.get(node_id)
    return set(by_key) if isinstance(by_key, dict) else set()


def verify_new_descriptor(raw: dict[str, Any], *, now: datetime) -> NodeDescriptor:
    """Verify a descriptor seen for the first time (before pinning).

    Only self-consistency can be checked here: every current key signed it.
    The caller must then compare the fingerprint an admin typed.
    """
    descriptor = parse(NodeDescriptor, raw)
    _check_window(descriptor, now)
    _require_all_current_keys(descriptor, raw)
    verify_object(
        raw, signers={descriptor.node_id}, resolver=_SelfKeys(descriptor), at=descriptor.issued_at
    )
    return descriptor


def _require_all_current_keys(descriptor: NodeDescriptor, raw: dict[str, Any]) -> None:
    missing = {k.key_id for k in descriptor.keys} - _signed_key_ids(raw, descriptor.node_id)
    if missing:
        raise MissingSignature(
            f"descriptor lacks signatures by its current keys {sorted(missing)}",
            field="signatures",
        )


def verify_rotation(raw: dict[str, Any], pinned: PinnedKeys, *, now: datetime) -> PinnedKeys:
    """Apply the rotation rule; return the new pinned keys or raise."""
    descriptor = parse(NodeDescriptor, raw)
    if descriptor.node_id != pinned.node_id:
        raise DescriptorRejected(
            f"descriptor is for {descriptor.node_id!r}, expected {pinned.node_id!r}"
        )
    _check_window(descriptor, now)
    if pinned.descriptor_issued_at and descriptor.issued_at < pinned.descriptor_issued_at:
        raise DescriptorRejected("descriptor is older than the one already pinned")
    _require_all_current_keys(descriptor, raw)
    signed_by = _signed_key_ids(raw, descriptor.node_id)
    if not signed_by & set(pinned.current):
        raise UnknownKey(
            "descriptor is signed only by keys that are not pinned for "
            f"{descriptor.node_id}; the partner must be peered again",
            field="signatures",
        )
    verify_object(
        raw,
        signers={descriptor.node_id},
        resolver=_RotationKeys(descriptor, pinned),
        at=descriptor.issued_at,
    )
    return PinnedKeys.from_descriptor(descriptor, previous=pinned)


def sign_descriptor(body: NodeDescriptorBody, keys: Collection[SigningKey]) -> NodeDescriptor:
    """Sign a descriptor with every key given: its current keys, plus the
    previous key during a rotation."""
    return seal(body, NodeDescriptor, body.node_id, keys)
