"""The example bot, embedded as an app would, answers over the real server."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from types import ModuleType

from conftest import ServerProcess

from xmlchat.client.native import NativeClient

BOT_PATH = Path(__file__).parents[2] / "examples" / "bot.py"


def load_bot() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_bot", BOT_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_bot_replies_canned_and_echo(server: ServerProcess) -> None:
    bot_module = load_bot()
    bot = NativeClient("carol", "carolpw", port=server.ports["native_plain"])
    alice = NativeClient("alice", "alicepw", port=server.ports["native"], ssl=server.client_ssl())
    await bot.start()
    await alice.start()
    stop = asyncio.Event()
    running = asyncio.create_task(bot_module.run_bot(bot, stop))
    await alice.send("carol", "1")
    await alice.send("carol", "你好")
    replies = [(await asyncio.wait_for(alice.incoming.get(), 5)).body for _ in range(2)]
    assert replies == ["你猜!", "echo: 你好"]
    stop.set()
    await asyncio.wait_for(running, 5)
    await bot.close()
    await alice.close()
