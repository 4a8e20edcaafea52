"""Admin accounts: the rules for usernames and passwords, and creating users.

Used by ``openseats admin create-user`` and ``openseats demo`` alike.  A
rule that fails raises :class:`AccountError` with a catalogue key, so the
CLI prints it in German and English (:meth:`Catalogues.both`) and a web
form can show it as a field error in the visitor's language.

Passwords need at least :data:`MIN_PASSWORD_LENGTH` characters, five
different ones, must not contain the username and must not be one of a
few notorious ones; length matters more than character classes (NIST
SP 800-63B), so there is no "one digit, one symbol" rule.
"""

from __future__ import annotations

import re
from datetime import datetime

from node.db import Database
from node.db import admins as admin_repo
from node.ui.i18n import Message
from node.ui.passwords import hash_password_async

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{1,63}")
_NOTORIOUS = frozenset(
    {
        "password1234",
        "passwort1234",
        "123456789012",
        "1234567890ab",
        "qwertzuiop12",
        "qwertyuiop12",
        "hallo1234567",
        "admin1234567",
        "administrator",
        "openseats123",
        "changeme1234",
        "sommer2024!!",
        "winter2024!!",
    }
)


class AccountError(Exception):
    """A username or password breaks a rule; ``message`` says which."""

    def __init__(self, field: str, key: str, **params: object) -> None:
        super().__init__(key)
        self.field = field
        self.message = Message(key, params)


def normalise_username(raw: str) -> str:
    """What a login form's username is looked up (and rate-limited) as."""
    return raw.strip().lower()[:64]


def check_username(raw: str) -> str:
    username = raw.strip().lower()
    if not username:
        raise AccountError("username", "form.required")
    if not _USERNAME.fullmatch(username):
        raise AccountError("username", "account.username_invalid")
    return username


def check_password(password: str, username: str) -> None:
    if not password:
        raise AccountError("password", "form.required")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError("password", "account.password_short", min=MIN_PASSWORD_LENGTH)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError("password", "account.password_long", max=MAX_PASSWORD_LENGTH)
    if len(set(password)) < 5 or password.lower() in _NOTORIOUS:
        raise AccountError("password", "account.password_weak")
    if len(username) >= 3 and username in password.lower():
        raise AccountError("password", "account.password_has_username")


async def create_admin(db: Database, raw_username: str, password: str, now: datetime) -> str:
    """Check the rules, hash the password and store the user; return the username."""
    username = check_username(raw_username)
    check_password(password, username)
    password_hash = await hash_password_async(password)
    async with db.write() as conn:
        try:
            await admin_repo.create_user(conn, username, password_hash, now)
        except admin_repo.UsernameTaken:
            raise AccountError("username", "account.username_taken", username=username) from None
    return username


async def reset_password(db: Database, username: str, password: str) -> bool:
    """Give an existing user a new password (ending their sessions); False if unknown."""
    check_password(password, username)
    password_hash = await hash_password_async(password)
    async with db.write() as conn:
        user = await admin_repo.find_user(conn, username)
        if user is None:
            return False
        await admin_repo.set_password(conn, user.id, password_hash)
    return True
