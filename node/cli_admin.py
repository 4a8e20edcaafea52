"""``openseats admin``: the users of the admin web UI (``/admin/``).

- ``admin create-user USERNAME`` asks for the password twice (without
  echo), or reads one line from standard input with ``--password-stdin``
  (for scripts: ``printf '%s\\n' "$PW" | openseats admin create-user anna
  --password-stdin``).  Weak or empty passwords are refused with one line
  naming the rule (:mod:`node.ui.accounts`).
- ``admin list-users`` shows name, creation and last login.
- ``admin delete-user USERNAME`` removes the user and ends their sessions.

Passwords never appear in arguments, so they stay out of shell history and
``ps``.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from node.cli_commands import CliError, _with_node, command
from node.db import admins as admin_repo
from node.runtime import NodeServices
from node.ui.accounts import AccountError, create_admin, normalise_username
from node.ui.i18n import Catalogues
from protocol.models import format_timestamp


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise CliError(
            "Kein Terminal: Passwort mit --password-stdin übergeben / "
            "no terminal: pass the password with --password-stdin"
        )
    first = getpass.getpass("Passwort / password: ")
    second = getpass.getpass("Noch einmal / again: ")
    if first != second:
        raise CliError("Die Passwörter stimmen nicht überein / the passwords do not match")
    return first


@command("admin", "create-user")
async def create_user(args: argparse.Namespace) -> int:
    password = _read_password(args)

    async def work(node: NodeServices) -> int:
        try:
            username = await create_admin(node.db, args.username, password, node.clock.now())
        except AccountError as exc:
            raise CliError(Catalogues.load().both(exc.message)) from None
        print(
            f"Admin {username} angelegt / created; Anmeldung / log in: "
            f"{node.settings.base_url}/admin/"
        )
        return 0

    return await _with_node(args, work)


@command("admin", "list-users")
async def list_users(args: argparse.Namespace) -> int:
    async def work(node: NodeServices) -> int:
        async with node.db.read() as conn:
            users = await admin_repo.list_users(conn)
        if not users:
            print("Keine Admins / no admin users")
        for user in users:
            last = format_timestamp(user.last_login_at) if user.last_login_at else "-"
            print(f"{user.username}\t{format_timestamp(user.created_at)}\t{last}")
        return 0

    return await _with_node(args, work)


@command("admin", "delete-user")
async def delete_user(args: argparse.Namespace) -> int:
    username = normalise_username(args.username)

    async def work(node: NodeServices) -> int:
        async with node.db.write() as conn:
            if not await admin_repo.delete_user(conn, username):
                raise CliError(f"Admin {username} nicht gefunden / not found")
        print(f"Admin {username} gelöscht / deleted")
        return 0

    return await _with_node(args, work)
