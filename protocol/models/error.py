"""The error body every node endpoint answers with on failure."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from protocol.models.common import WireModel


class ErrorBody(WireModel):
    code: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    ] = Field(description="Stable, machine-readable; see SPEC.md §10.")
    message: Annotated[str, StringConstraints(min_length=1, max_length=1000)] = Field(
        description="For people; wording may change."
    )
    field: Annotated[str, StringConstraints(max_length=200)] | None = None
