"""Fixtures shared by the protocol tests: a fixed clock, keys, signed objects."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocol.errors import UnknownKey
from protocol.keys import SigningKey
from protocol.models import Announcement, AnnouncementBody, Host, Seats, seal

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ORIGIN = "lex.example.org"


class StaticResolver:
    """A KeyResolver over a fixed {(signer, key id): key} map."""

    def __init__(self, keys: dict[tuple[str, str], Ed25519PublicKey]) -> None:
        self.keys = keys

    def resolve(self, signer: str, key_id: str, at: datetime) -> Ed25519PublicKey:
        try:
            return self.keys[(signer, key_id)]
        except KeyError:
            raise UnknownKey(f"{key_id} unknown for {signer}") from None


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.from_seed(bytes(range(32)))


@pytest.fixture
def other_key() -> SigningKey:
    return SigningKey.from_seed(bytes(range(1, 33)))


@pytest.fixture
def resolver(key: SigningKey) -> StaticResolver:
    return StaticResolver({(ORIGIN, key.key_id): key.public_key})


def announcement_body(**changes: Any) -> AnnouncementBody:
    fields: dict[str, Any] = {
        "type": "session_announcement",
        "origin": ORIGIN,
        "id": "lex-2026-0815",
        "version": 1,
        "issued_at": NOW,
        "title": "KI-Prompting für Einsteiger",
        "description": "Ein Impuls mit Beispielen aus dem Alltag.",
        "format": "impulse",
        "languages": ["de"],
        "start": NOW + timedelta(days=10),
        "timezone": "Europe/Berlin",
        "duration_minutes": 60,
        "host": Host(display_name="Anna Schröder"),
        "tags": ["KI", "Prompting"],
        "seats": Seats(
            open=10, remaining=10, registration_mode="auto", waitlist=True, email_required=False
        ),
        "status": "scheduled",
    }
    fields.update(changes)
    return AnnouncementBody(**fields)


@pytest.fixture
def make_signed(key: SigningKey) -> Callable[..., dict[str, Any]]:
    def build(**changes: Any) -> dict[str, Any]:
        return seal(announcement_body(**changes), Announcement, ORIGIN, [key]).to_json_dict()

    return build
