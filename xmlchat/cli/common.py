"""Helpers shared by the command modules."""

from __future__ import annotations

import argparse
import asyncio
import getpass
from collections.abc import Callable, Coroutine
from typing import Any

from xmlchat.config import Config
from xmlchat.jid import JID, InvalidJID


def run_async(coro: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(coro)


def user_jid(text: str, config: Config) -> JID:
    try:
        jid = JID.user(text, config.domain)
    except InvalidJID as e:
        raise SystemExit(f"xmlchat: {e}") from None
    return jid.bare


def ask_password(prompt: str = "Password: ", confirm: bool = True) -> str:
    password = getpass.getpass(prompt)
    if confirm and getpass.getpass("Again: ") != password:
        raise SystemExit("xmlchat: passwords do not match")
    return password


Command = Callable[[argparse.Namespace, Config], int]


def add_client_commands(
    sub: Any,
    common: argparse.ArgumentParser,
    names: tuple[str, str],
    protocol: str,
    commands: tuple[Command, Command],
    options: Callable[[argparse.ArgumentParser], None],
) -> None:
    """The ``chat``/``send`` pair of a protocol's client, with the connection
    options both share plus the protocol's own (added by ``options``)."""
    connect = argparse.ArgumentParser(add_help=False, parents=[common])
    options(connect)
    connect.add_argument("--server", metavar="HOST:PORT", help=f"default: the configured {protocol} listener")
    connect.add_argument("--cafile", help="trust this certificate (default: the data directory's)")
    connect.add_argument("--insecure", action="store_true", help="do not verify the certificate")
    connect.add_argument("--password", help="for scripts; prompted for when absent")
    chat = sub.add_parser(names[0], parents=[connect], help=f"interactive {protocol} chat")
    chat.add_argument("jid")
    chat.set_defaults(run=commands[0])
    send = sub.add_parser(names[1], parents=[connect], help=f"send one message over {protocol}")
    send.add_argument("jid", help="sender")
    send.add_argument("to", help="recipient")
    send.add_argument("text")
    send.set_defaults(run=commands[1])
