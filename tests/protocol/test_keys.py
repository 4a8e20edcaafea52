"""Keys, key ids, fingerprints and PEM files."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from protocol.errors import MalformedError
from protocol.keys import (
    FINGERPRINT_PATTERN,
    KEY_ID_PATTERN,
    SigningKey,
    b64url_decode,
    normalise_fingerprint,
    public_key_from_b64,
)


def test_key_id_and_fingerprint_share_the_hash(key: SigningKey) -> None:
    import re

    assert re.match(KEY_ID_PATTERN, key.key_id)
    assert re.match(FINGERPRINT_PATTERN, key.fingerprint)
    assert key.fingerprint.replace("-", "")[:16] == key.key_id.split(":")[1].upper()


def test_distinct_keys_have_distinct_names(key: SigningKey, other_key: SigningKey) -> None:
    assert key.key_id != other_key.key_id
    assert key.fingerprint != other_key.fingerprint


def test_fingerprint_input_is_forgiving(key: SigningKey) -> None:
    spoken = key.fingerprint.lower().replace("-", " ")
    assert normalise_fingerprint(spoken) == key.fingerprint
    assert normalise_fingerprint(key.fingerprint.replace("-", "")) == key.fingerprint


@pytest.mark.parametrize("text", ["", "ABCD", "0000-" * 7 + "0000", "ÄBCD" * 8])
def test_fingerprint_input_rejects_nonsense(text: str) -> None:
    with pytest.raises(MalformedError):
        normalise_fingerprint(text)


def test_pem_round_trip_with_mode_0600(tmp_path: Path, key: SigningKey) -> None:
    path = tmp_path / "node.key"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SigningKey.load(path).key_id == key.key_id
    with pytest.raises(FileExistsError):
        key.save(path)


def test_loading_garbage_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(MalformedError):
        SigningKey.load(path)


def test_public_key_encoding_round_trip(key: SigningKey) -> None:
    public = public_key_from_b64(key.public_key_b64)
    assert SigningKey(key.private_key).public_key_b64 == key.public_key_b64
    assert public.public_bytes_raw() == key.public_key.public_bytes_raw()


@pytest.mark.parametrize("text", ["", "A" * 42, "A" * 44, "A" * 42 + "=", "+" * 43])
def test_bad_public_key_encodings(text: str) -> None:
    with pytest.raises(MalformedError):
        b64url_decode(text, length=32)
