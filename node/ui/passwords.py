"""Password hashes: scrypt from ``cryptography``, stored as one self-describing string.

The stored form is ``scrypt$n=32768,r=8,p=1$<salt>$<hash>`` (URL-safe
base64 without padding), so the parameters can be raised later without
breaking existing hashes: :func:`verify_password` always uses the ones
stored with the hash.  Comparison is constant-time (``Scrypt.verify``).
Hashing costs about 32 MiB and tens of milliseconds on purpose; callers on
the event loop run it in a thread (:func:`hash_password_async`,
:func:`verify_password_async`).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

log = logging.getLogger(__name__)

SCHEME = "scrypt"
N, R, P = 2**15, 8, 1
SALT_BYTES = 16
KEY_BYTES = 32
_STORED = re.compile(
    r"scrypt\$n=(?P<n>[0-9]{1,8}),r=(?P<r>[0-9]{1,2}),p=(?P<p>[0-9]{1,2})"
    r"\$(?P<salt>[A-Za-z0-9_-]{16,64})\$(?P<key>[A-Za-z0-9_-]{32,128})"
)
# Verifying a hash made with another node's (or a future) policy has bounds:
# a corrupted row must not make one login cost gigabytes.
_MAX_N, _MAX_R, _MAX_P = 2**20, 32, 16


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    salt = os.urandom(SALT_BYTES)
    key = Scrypt(salt=salt, length=KEY_BYTES, n=N, r=R, p=P).derive(password.encode("utf-8"))
    return f"{SCHEME}$n={N},r={R},p={P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str | None) -> bool:
    """True if *password* matches *stored*; ``None`` (no such user) costs the same."""
    # An unknown user is checked against a made-up hash of the same cost.
    match = _STORED.fullmatch(stored or f"{SCHEME}$n={N},r={R},p={P}${'A' * 22}${'A' * 43}")
    if match is None:
        log.error("admin password hash in an unknown format; login refused")
        return False
    n, r, p = int(match["n"]), int(match["r"]), int(match["p"])
    if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        log.error("admin password hash with out-of-range scrypt parameters; login refused")
        return False
    expected = _unb64(match["key"])
    kdf = Scrypt(salt=_unb64(match["salt"]), length=len(expected), n=n, r=r, p=p)
    try:
        kdf.verify(password.encode("utf-8"), expected)
    except InvalidKey:
        return False
    return stored is not None


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password: str, stored: str | None) -> bool:
    return await asyncio.to_thread(verify_password, password, stored)
