"""``adduser``, ``passwd``, ``deluser``, ``users``: accounts, as prosodyctl manages them."""

from __future__ import annotations

import argparse
from typing import Any

from xmlchat.cli.common import ask_password, run_async, user_jid
from xmlchat.config import Config
from xmlchat.storage import NoSuchUser, Storage, UserExists
from xmlchat.storage.opening import open_storage


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    add = sub.add_parser("adduser", parents=[common], help="create an account")
    add.add_argument("jid", help="user@host, or a bare name on the first host")
    add.add_argument("--password", help="for scripts; prompted for when absent")
    add.set_defaults(run=_adduser)
    passwd = sub.add_parser("passwd", parents=[common], help="change a password")
    passwd.add_argument("jid")
    passwd.add_argument("--password")
    passwd.set_defaults(run=_passwd)
    delete = sub.add_parser("deluser", parents=[common], help="delete an account and its data")
    delete.add_argument("jid")
    delete.set_defaults(run=_deluser)
    users = sub.add_parser("users", parents=[common], help="list accounts")
    users.add_argument("--host", help="only this virtual host")
    users.set_defaults(run=_users)


async def _open(config: Config) -> Storage:
    config.data_path.mkdir(parents=True, exist_ok=True)
    return await open_storage(config)


def _adduser(args: argparse.Namespace, config: Config) -> int:
    jid = user_jid(args.jid, config)
    if jid.domain not in config.hosts:
        raise SystemExit(f"xmlchat: {jid.domain} is not one of the hosts ({', '.join(config.hosts)})")
    password = args.password if args.password is not None else ask_password()
    if not password:
        raise SystemExit("xmlchat: empty password")

    async def run() -> int:
        storage = await _open(config)
        try:
            await storage.create_user(jid, password)
        except UserExists:
            print(f"xmlchat: {jid} already exists")
            return 1
        except ValueError as e:
            print(f"xmlchat: {e}")
            return 1
        finally:
            await storage.close()
        print(f"created {jid}")
        return 0

    return run_async(run())


def _passwd(args: argparse.Namespace, config: Config) -> int:
    jid = user_jid(args.jid, config)
    password = args.password if args.password is not None else ask_password("New password: ")

    async def run() -> int:
        storage = await _open(config)
        try:
            await storage.set_password(jid, password)
        except NoSuchUser:
            print(f"xmlchat: no such user {jid}")
            return 1
        finally:
            await storage.close()
        print(f"password changed for {jid}")
        return 0

    return run_async(run())


def _deluser(args: argparse.Namespace, config: Config) -> int:
    jid = user_jid(args.jid, config)

    async def run() -> int:
        storage = await _open(config)
        try:
            existed = await storage.delete_user(jid)
        finally:
            await storage.close()
        print(f"deleted {jid}" if existed else f"xmlchat: no such user {jid}")
        return 0 if existed else 1

    return run_async(run())


def _users(args: argparse.Namespace, config: Config) -> int:
    async def run() -> int:
        storage = await _open(config)
        try:
            for jid in await storage.list_users(args.host):
                print(jid)
        finally:
            await storage.close()
        return 0

    return run_async(run())
