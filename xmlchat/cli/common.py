"""Helpers shared by the command modules."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable

from xmlchat.config import Config
from xmlchat.jid import JID, InvalidJID


def run_async(coro: Awaitable[int]) -> int:
    async def wrapper() -> int:
        return await coro

    return asyncio.run(wrapper())


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
