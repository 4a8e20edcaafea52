"""Our own test vectors in ``schemas/vectors/``: reproduced and independently checked."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocol import vectorgen
from protocol.errors import UnknownKey
from protocol.httpsig import MemoryNonceStore, verify_request
from protocol.ingest import verify_announcement
from protocol.keyring import PinnedKeys, verify_new_descriptor
from protocol.keys import SigningKey, b64url_decode, public_key_from_b64
from protocol.signing import SIGNING_PREFIX

VECTORS = Path(__file__).resolve().parents[2] / "schemas" / "vectors"


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def test_vectors_are_up_to_date() -> None:
    for name, text in vectorgen.render_all().items():
        assert (VECTORS / name).read_text(encoding="utf-8") == text, name
    subprocess.run([sys.executable, "-m", "protocol.vectorgen", "--check"], check=True)


def test_key_vector_derivations() -> None:
    data = _load("key.json")
    key = SigningKey.from_seed(bytes.fromhex(data["seed_hex"]))
    assert key.public_key_b64 == data["public_key"]
    assert key.key_id == data["key_id"]
    assert key.fingerprint == data["fingerprint"]


@pytest.mark.parametrize("index", [0, 1])
def test_announcement_vector_bytes(index: int) -> None:
    vector = _load("announcements.json")[index]
    key_data = _load("key.json")
    canonical = vector["canonical"].encode("utf-8")
    assert bytes.fromhex(vector["signing_input_hex"]) == SIGNING_PREFIX + canonical
    # Independent check of the canonical form: sorted keys, no whitespace.
    assert canonical == json.dumps(
        vector["object"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    public = public_key_from_b64(key_data["public_key"])
    public.verify(b64url_decode(vector["signature"], length=64), SIGNING_PREFIX + canonical)


@pytest.mark.parametrize("index", [0, 1])
def test_announcement_vector_passes_ingest(index: int) -> None:
    vector = _load("announcements.json")[index]
    key_data = _load("key.json")
    descriptor = verify_new_descriptor(
        _load("descriptor.json"), now=datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    )
    assert descriptor.keys[0].key_id == key_data["key_id"]
    pinned = PinnedKeys.from_descriptor(descriptor)
    verify_announcement(
        vector["signed_object"], resolver=pinned, expected_origin=key_data["node_id"]
    )


@pytest.mark.parametrize("index", [0, 1])
def test_request_vectors_verify(index: int) -> None:
    vector = _load("requests.json")[index]
    key_data = _load("key.json")
    public = public_key_from_b64(key_data["public_key"])

    def resolve(key_id: str) -> Ed25519PublicKey:
        if key_id != key_data["key_id"]:
            raise UnknownKey(key_id)
        return public

    verify_request(
        method=vector["method"],
        url=vector["url"],
        headers=[tuple(pair) for pair in vector["headers"]],
        body=vector["body"].encode("utf-8"),
        resolve_key=resolve,
        check_replay=MemoryNonceStore(),
        now=datetime.fromtimestamp(vector["created"], UTC),
    )
    signature_header = dict(vector["headers"])["Signature"]
    raw = base64.b64decode(signature_header.split(":")[1])
    public.verify(raw, vector["signature_base"].encode("ascii"))
