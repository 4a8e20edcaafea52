"""Inbox notices: small messages POSTed to a peer's inbox.

They are authenticated by the request signature (SPEC.md §4), not by object
signatures.  A notice only tells; the receiver acts on its own terms (for
``feed_changed`` it pulls the signed feed).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from protocol.models.common import ChangeNumber, NodeId, Timestamp, Uuid, WireModel
from protocol.models.reservation import ReservationAnswer, SessionRef


class FeedChanged(WireModel):
    type: Literal["feed_changed"]
    sender: NodeId
    issued_at: Timestamp
    change: ChangeNumber = Field(description="The sender's newest change number.")


class ReservationUpdated(WireModel):
    type: Literal["reservation_updated"]
    sender: NodeId
    issued_at: Timestamp
    answer: ReservationAnswer


class SessionCancelled(WireModel):
    type: Literal["session_cancelled"]
    sender: NodeId
    issued_at: Timestamp
    session: SessionRef
    reservations: list[Uuid] = Field(
        max_length=10_000, description="The recipient's reservations for this session."
    )


Notice = Annotated[FeedChanged | ReservationUpdated | SessionCancelled, Field(discriminator="type")]
