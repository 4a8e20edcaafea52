"""Descriptors, pinning, rotation and revocation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from protocol.errors import (
    BadSignature,
    DescriptorRejected,
    ExpiredKey,
    MissingSignature,
    RevokedKey,
    SchemaViolation,
    UnknownKey,
)
from protocol.keyring import PinnedKeys, sign_descriptor, verify_new_descriptor, verify_rotation
from protocol.keys import SigningKey
from protocol.models import (
    CurrentKey,
    Endpoints,
    NodeDescriptorBody,
    OldKey,
)
from protocol.models import (
    RevokedKey as RevokedKeyEntry,
)
from protocol.signing import sign_object
from tests.protocol.conftest import NOW, ORIGIN

BASE = "https://openseats.lex.example.org"


def _body(
    keys: list[SigningKey],
    *,
    issued_at: datetime = NOW,
    old: Sequence[tuple[SigningKey, datetime]] = (),
    revoked: Sequence[SigningKey] = (),
    **changes: Any,
) -> NodeDescriptorBody:
    fields: dict[str, Any] = {
        "type": "node_descriptor",
        "protocol": "openseats/1",
        "node_id": ORIGIN,
        "display_name": "LEX",
        "base_url": BASE,
        "endpoints": Endpoints(
            feed=f"{BASE}/protocol/v1/feed",
            inbox=f"{BASE}/protocol/v1/inbox",
            peering=f"{BASE}/protocol/v1/peering",
            reservations=f"{BASE}/protocol/v1/reservations",
        ),
        "keys": [CurrentKey(key_id=k.key_id, public_key=k.public_key_b64) for k in keys],
        "old_keys": [
            OldKey(key_id=k.key_id, public_key=k.public_key_b64, expires_at=at) for k, at in old
        ],
        "revoked_keys": [RevokedKeyEntry(key_id=k.key_id, revoked_at=issued_at) for k in revoked],
        "issued_at": issued_at,
        "valid_until": issued_at + timedelta(days=7),
    }
    fields.update(changes)
    return NodeDescriptorBody(**fields)


def _signed(body: NodeDescriptorBody, signers: list[SigningKey]) -> dict[str, Any]:
    return sign_descriptor(body, signers).to_json_dict()


@pytest.fixture
def new_key() -> SigningKey:
    return SigningKey.from_seed(bytes(range(2, 34)))


@pytest.fixture
def pinned(key: SigningKey) -> PinnedKeys:
    return PinnedKeys.from_descriptor(verify_new_descriptor(_signed(_body([key]), [key]), now=NOW))


def test_first_contact_pins_the_self_signed_keys(key: SigningKey, pinned: PinnedKeys) -> None:
    assert pinned.fingerprints() == [key.fingerprint]
    assert pinned.resolve(ORIGIN, key.key_id, NOW) is not None


def test_first_contact_needs_every_current_key(key: SigningKey, new_key: SigningKey) -> None:
    raw = _signed(_body([key, new_key]), [key])
    with pytest.raises(MissingSignature):
        verify_new_descriptor(raw, now=NOW)


def test_expired_descriptor(key: SigningKey) -> None:
    raw = _signed(_body([key]), [key])
    with pytest.raises(DescriptorRejected):
        verify_new_descriptor(raw, now=NOW + timedelta(days=8))


def test_validity_longer_than_seven_days(key: SigningKey) -> None:
    with pytest.raises(ValueError, match="7 days"):
        _body([key], valid_until=NOW + timedelta(days=7, seconds=1))


def test_key_id_must_match_public_key(key: SigningKey, new_key: SigningKey) -> None:
    raw = _signed(_body([key]), [key])
    raw["keys"][0]["key_id"] = new_key.key_id
    with pytest.raises(SchemaViolation):
        verify_new_descriptor(raw, now=NOW)


def test_tampered_descriptor(key: SigningKey) -> None:
    raw = _signed(_body([key]), [key])
    raw["base_url"] = "https://evil.example.net"
    with pytest.raises(BadSignature):
        verify_new_descriptor(raw, now=NOW)


def test_rotation_signed_by_old_and_new_key(
    key: SigningKey, new_key: SigningKey, pinned: PinnedKeys
) -> None:
    later = NOW + timedelta(days=1)
    body = _body([new_key], issued_at=later, old=[(key, later + timedelta(days=30))])
    rotated = verify_rotation(_signed(body, [key, new_key]), pinned, now=later)
    assert set(rotated.current) == {new_key.key_id}
    assert rotated.resolve(ORIGIN, key.key_id, later) is not None  # old key, before expiry
    with pytest.raises(ExpiredKey):
        rotated.resolve(ORIGIN, key.key_id, later + timedelta(days=31))


def test_descriptor_signed_only_by_an_unpinned_key(new_key: SigningKey, pinned: PinnedKeys) -> None:
    later = NOW + timedelta(days=1)
    raw = _signed(_body([new_key], issued_at=later), [new_key])
    with pytest.raises(UnknownKey):
        verify_rotation(raw, pinned, now=later)


def test_rotation_without_the_new_keys_signature(
    key: SigningKey, new_key: SigningKey, pinned: PinnedKeys
) -> None:
    later = NOW + timedelta(days=1)
    raw = _signed(_body([new_key], issued_at=later), [key])
    with pytest.raises(MissingSignature):
        verify_rotation(raw, pinned, now=later)


def test_rotation_with_a_forged_old_signature(
    key: SigningKey, new_key: SigningKey, pinned: PinnedKeys
) -> None:
    later = NOW + timedelta(days=1)
    raw = _signed(_body([new_key], issued_at=later), [new_key])
    raw["signatures"][ORIGIN][key.key_id] = raw["signatures"][ORIGIN][new_key.key_id]
    with pytest.raises(BadSignature):
        verify_rotation(raw, pinned, now=later)


def test_older_descriptor_is_rejected(key: SigningKey, pinned: PinnedKeys) -> None:
    raw = _signed(_body([key], issued_at=NOW - timedelta(hours=1)), [key])
    with pytest.raises(DescriptorRejected):
        verify_rotation(raw, pinned, now=NOW)


def test_descriptor_for_another_node(key: SigningKey, pinned: PinnedKeys) -> None:
    body = _body([key], node_id="kiwi.example.de")
    raw = sign_object(body.to_json_dict(), "kiwi.example.de", [key])
    with pytest.raises(DescriptorRejected):
        verify_rotation(raw, pinned, now=NOW)


def test_revocation_is_sticky(key: SigningKey, new_key: SigningKey, pinned: PinnedKeys) -> None:
    later = NOW + timedelta(days=1)
    body = _body([new_key], issued_at=later, revoked=[key])
    rotated = verify_rotation(_signed(body, [key, new_key]), pinned, now=later)
    with pytest.raises(RevokedKey):
        rotated.resolve(ORIGIN, key.key_id, NOW - timedelta(days=100))
    # A later descriptor that forgets the revocation cannot bring the key back.
    even_later = later + timedelta(days=1)
    body = _body([new_key], issued_at=even_later, old=[(key, even_later + timedelta(days=9))])
    again = verify_rotation(_signed(body, [new_key]), rotated, now=even_later)
    with pytest.raises(RevokedKey):
        again.resolve(ORIGIN, key.key_id, even_later)


def test_a_revoked_key_cannot_sign_a_rotation(
    key: SigningKey, new_key: SigningKey, pinned: PinnedKeys
) -> None:
    later = NOW + timedelta(days=1)
    revoked = PinnedKeys(ORIGIN, {}, {}, {key.key_id: later}, pinned.descriptor_issued_at)
    raw = _signed(_body([new_key], issued_at=later), [key, new_key])
    with pytest.raises(UnknownKey):
        verify_rotation(raw, revoked, now=later)


def test_resolver_refuses_other_signers(key: SigningKey, pinned: PinnedKeys) -> None:
    with pytest.raises(UnknownKey):
        pinned.resolve("kiwi.example.de", key.key_id, NOW)


def test_peer_that_already_rotated_accepts_the_next_double_signed_descriptor(
    key: SigningKey, new_key: SigningKey, pinned: PinnedKeys
) -> None:
    later = NOW + timedelta(days=1)
    body = _body([new_key], issued_at=later, old=[(key, later + timedelta(days=30))])
    rotated = verify_rotation(_signed(body, [key, new_key]), pinned, now=later)
    # The node keeps signing with both keys during the grace period.
    again = later + timedelta(days=1)
    body = _body([new_key], issued_at=again, old=[(key, later + timedelta(days=30))])
    verify_rotation(_signed(body, [key, new_key]), rotated, now=again)
    # A newcomer sees the same descriptor for the first time.
    verify_new_descriptor(_signed(body, [key, new_key]), now=again)


def test_expired_old_key_cannot_sign_a_descriptor(
    key: SigningKey, new_key: SigningKey, pinned: PinnedKeys
) -> None:
    later = NOW + timedelta(days=1)
    body = _body([new_key], issued_at=later, old=[(key, later - timedelta(seconds=1))])
    with pytest.raises(UnknownKey):
        verify_new_descriptor(_signed(body, [key, new_key]), now=later)


def test_future_dated_descriptor_is_rejected(key: SigningKey, pinned: PinnedKeys) -> None:
    raw = _signed(_body([key], issued_at=NOW + timedelta(hours=1)), [key])
    with pytest.raises(DescriptorRejected):
        verify_new_descriptor(raw, now=NOW)
    with pytest.raises(DescriptorRejected):
        verify_rotation(raw, pinned, now=NOW)
