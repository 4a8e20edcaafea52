"""RPDE feed pages (OpenActive Realtime Paged Data Exchange, change-number form).

A page is ``{"items": [...], "next": URL, "license": URL}``.  Items are
ordered by ``modified``, a per-node change number; a client asks for the
items strictly after the last one it holds with ``?afterChangeNumber=N``.
The last page has no items and a ``next`` equal to its own URL.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from protocol.models.announcement import Announcement
from protocol.models.common import ChangeNumber, Url, WireModel

ITEM_KIND = "OpenSeatsSession"
FeedItemId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class UpdatedItem(WireModel):
    state: Literal["updated"]
    kind: Literal["OpenSeatsSession"]
    id: FeedItemId = Field(description="The session id; equals data.id (checked).")
    modified: ChangeNumber
    data: Announcement

    @model_validator(mode="after")
    def _id_matches_data(self) -> Self:
        if self.id != self.data.id:
            raise ValueError("item id must equal data.id")
        return self


class DeletedItem(WireModel):
    """A tombstone: the session is gone for this reader, kept at least 7 days."""

    state: Literal["deleted"]
    kind: Literal["OpenSeatsSession"]
    id: FeedItemId
    modified: ChangeNumber


FeedItem = Annotated[UpdatedItem | DeletedItem, Field(discriminator="state")]


class FeedPage(WireModel):
    items: list[FeedItem] = Field(max_length=1000)
    next: Url
    license: Url | None = None
