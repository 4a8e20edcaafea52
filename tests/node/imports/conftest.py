from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"

# A Monday morning; every test uses this clock, never the wall clock.
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def read_data(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.fixture
def now() -> datetime:
    return NOW
