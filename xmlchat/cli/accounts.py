"""``adduser``, ``passwd``, ``deluser``, ``users``: accounts, as prosodyctl manages them.

While a server runs on the data directory, each goes through its admin
channel, so the change takes effect at once: ``deluser`` and ``passwd`` end
the account's sessions (``passwd --keep-sessions`` leaves them). With no
server running they open the database directly. Each names the data
directory it works on, on stderr (a different directory is the usual reason
for "no such user").
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from xmlchat.cli.common import add_password_options, read_password, run_async, user_jid
from xmlchat.client import admin
from xmlchat.config import Config
from xmlchat.jid import JID
from xmlchat.storage import NoSuchUser, SqliteStorage, UserExists


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    add = sub.add_parser("adduser", parents=[common], help="create an account")
    add.add_argument("jid", help="user@host, or a bare name on the first host")
    add_password_options(add)
    add.set_defaults(run=_adduser)
    passwd = sub.add_parser("passwd", parents=[common], help="change a password (ends the sessions)")
    passwd.add_argument("jid")
    add_password_options(passwd)
    passwd.add_argument("--keep-sessions", action="store_true", help="leave the account's sessions logged in")
    passwd.set_defaults(run=_passwd)
    delete = sub.add_parser("deluser", parents=[common], help="delete an account and its data")
    delete.add_argument("jid")
    delete.set_defaults(run=_deluser)
    users = sub.add_parser("users", parents=[common], help="list accounts")
    users.add_argument("--host", help="only this virtual host")
    users.set_defaults(run=_users)


def _through_server(config: Config, command: str, **args: Any) -> Any:
    """The running server's answer, or :class:`admin.ServerNotRunning`."""
    result = admin.request(config.data_path, command, **args)
    print(f"data directory: {config.data_path} (through the running server)", file=sys.stderr)
    return result


def _direct(config: Config, work: Callable[[SqliteStorage], Coroutine[Any, Any, int]]) -> int:
    print(f"data directory: {config.data_path} (no server running)", file=sys.stderr)

    async def run() -> int:
        config.data_path.mkdir(parents=True, exist_ok=True)
        storage = await SqliteStorage.open(config.database_path, config.storage.scram_iterations)
        try:
            return await work(storage)
        finally:
            await storage.close()

    return run_async(run())


def _account(args: argparse.Namespace, config: Config) -> JID:
    jid = user_jid(args.jid, config)
    if jid.domain not in config.hosts:
        raise SystemExit(f"xmlchat: {jid.domain} is not one of the hosts ({', '.join(config.hosts)})")
    return jid


def _refused(e: Exception) -> int:
    print(f"xmlchat: {e}", file=sys.stderr)
    return 1


def _adduser(args: argparse.Namespace, config: Config) -> int:
    jid = _account(args, config)
    password = read_password(args)
    if not password:
        raise SystemExit("xmlchat: empty password")
    try:
        _through_server(config, "adduser", jid=str(jid), password=password)
    except admin.AdminError as e:
        return _refused(e)
    except admin.ServerNotRunning:

        async def create(storage: SqliteStorage) -> int:
            try:
                await storage.create_user(jid, password)
            except UserExists:
                return _refused(Exception(f"{jid} already exists"))
            except ValueError as e:
                return _refused(e)
            return 0

        if status := _direct(config, create):
            return status
    print(f"created {jid}")
    return 0


def _passwd(args: argparse.Namespace, config: Config) -> int:
    jid = _account(args, config)
    password = read_password(args, "New password: ")
    if not password:
        raise SystemExit("xmlchat: empty password")
    try:
        answer = _through_server(
            config, "passwd", jid=str(jid), password=password, keep_sessions=args.keep_sessions
        )
        closed = answer["sessions_closed"]
    except admin.AdminError as e:
        return _refused(e)
    except admin.ServerNotRunning:

        async def change(storage: SqliteStorage) -> int:
            try:
                await storage.set_password(jid, password)
            except NoSuchUser:
                return _refused(Exception(f"no such user {jid}"))
            return 0

        if status := _direct(config, change):
            return status
        closed = 0
    print(f"password changed for {jid}" + (f"; {closed} session(s) ended" if closed else ""))
    return 0


def _deluser(args: argparse.Namespace, config: Config) -> int:
    jid = _account(args, config)
    try:
        closed = _through_server(config, "deluser", jid=str(jid))["sessions_closed"]
    except admin.AdminError as e:
        return _refused(e)
    except admin.ServerNotRunning:

        async def delete(storage: SqliteStorage) -> int:
            return 0 if await storage.delete_user(jid) else _refused(Exception(f"no such user {jid}"))

        if status := _direct(config, delete):
            return status
        closed = 0
    print(f"deleted {jid}" + (f"; {closed} session(s) ended" if closed else ""))
    return 0


def _users(args: argparse.Namespace, config: Config) -> int:
    try:
        names = _through_server(config, "users", host=args.host)
    except admin.AdminError as e:
        return _refused(e)
    except admin.ServerNotRunning:

        async def listing(storage: SqliteStorage) -> int:
            names.extend(str(jid) for jid in await storage.list_users(args.host))
            return 0

        names = []
        _direct(config, listing)
    for name in names:
        print(name)
    return 0
