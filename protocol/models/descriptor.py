"""The node descriptor served at ``GET /.well-known/openseats``."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import Field, model_validator

from protocol.errors import MalformedError
from protocol.keys import key_id_for, public_key_from_b64
from protocol.models.common import (
    DisplayName,
    KeyId,
    NodeId,
    PublicKeyB64,
    SignedModel,
    Timestamp,
    Url,
    WireModel,
)

MAX_DESCRIPTOR_VALIDITY = timedelta(days=7)


class Endpoints(WireModel):
    """Absolute URLs of the node's protocol endpoints."""

    feed: Url
    inbox: Url
    peering: Url
    reservations: Url = Field(description="Base URL; a reservation lives at {reservations}/{uuid}.")


class CurrentKey(WireModel):
    key_id: KeyId = Field(description="Derived from public_key (SPEC.md §2); checked.")
    algorithm: Literal["ed25519"] = "ed25519"
    public_key: PublicKeyB64

    @model_validator(mode="after")
    def _check_key_id(self) -> Self:
        try:
            derived = key_id_for(public_key_from_b64(self.public_key))
        except (MalformedError, ValueError):
            raise ValueError("public_key is not an Ed25519 public key") from None
        if derived != self.key_id:
            raise ValueError(f"key_id does not match public_key (expected {derived})")
        return self

    def public(self) -> Ed25519PublicKey:
        return public_key_from_b64(self.public_key)


class OldKey(CurrentKey):
    """A retired key: it verifies objects issued before ``expires_at``."""

    expires_at: Timestamp


class RevokedKey(WireModel):
    """A revoked key: nothing it signed is accepted, whenever it was issued."""

    key_id: KeyId
    revoked_at: Timestamp


class NodeDescriptorBody(WireModel):
    type: Literal["node_descriptor"]
    protocol: Literal["openseats/1"]
    node_id: NodeId
    display_name: DisplayName = Field(description="The organisation's name, for people.")
    base_url: Url
    endpoints: Endpoints
    keys: list[CurrentKey] = Field(min_length=1, max_length=4)
    old_keys: list[OldKey] = Field(default_factory=list, max_length=16)
    revoked_keys: list[RevokedKey] = Field(default_factory=list, max_length=64)
    issued_at: Timestamp
    valid_until: Timestamp = Field(
        description="At most 7 days after issued_at (checked by implementations)."
    )

    @model_validator(mode="after")
    def _check_validity(self) -> Self:
        if self.valid_until <= self.issued_at:
            raise ValueError("valid_until must lie after issued_at")
        if self.valid_until - self.issued_at > MAX_DESCRIPTOR_VALIDITY:
            raise ValueError("valid_until may lie at most 7 days after issued_at")
        current = {key.key_id for key in self.keys}
        old = {key.key_id for key in self.old_keys}
        revoked = {key.key_id for key in self.revoked_keys}
        if len(current) != len(self.keys) or current & old or current & revoked or old & revoked:
            raise ValueError("a key id appears twice among keys, old_keys and revoked_keys")
        return self


class NodeDescriptor(SignedModel, NodeDescriptorBody):
    """Signed by the node itself; on rotation by the old and the new key."""
