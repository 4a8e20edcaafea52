"""Peering: a node asks another to become partners; an admin there decides."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import StringConstraints, model_validator

from protocol.models.common import NodeId, Timestamp, WireModel
from protocol.models.descriptor import NodeDescriptor

PeeringState = Literal["pending", "accepted", "declined", "suspended", "removed"]


class PeeringRequest(WireModel):
    """Sent to the target's peering endpoint, signed with the requester's key.

    The embedded descriptor lets the target verify the request signature and
    show the requester's fingerprint to its admin before accepting.
    """

    type: Literal["peering_request"]
    requester: NodeId
    target: NodeId
    descriptor: NodeDescriptor
    message: Annotated[str, StringConstraints(max_length=500)] = ""
    issued_at: Timestamp

    @model_validator(mode="after")
    def _requester_is_the_descriptor(self) -> Self:
        if self.requester != self.descriptor.node_id:
            raise ValueError("requester must equal descriptor.node_id")
        return self


class PeeringAnswer(WireModel):
    """The peering state as the sender sees it.

    Returned synchronously (``pending``) and sent again whenever the state
    changes (``accepted``, ``declined``, ``suspended``, ``removed``).
    """

    type: Literal["peering_answer"]
    sender: NodeId
    recipient: NodeId
    state: PeeringState
    issued_at: Timestamp
