"""Driving ``xmlchat chat`` / ``xmlchat xmpp-chat`` as a user does: the real
command in a pseudo-terminal (pexpect), against a real server process."""

from __future__ import annotations

import asyncio
import os
import sys

import pexpect
from conftest import ServerProcess

from xmlchat.client.native import NativeClient

CHAT_COMMANDS = ("chat", "xmpp-chat")  # native, XMPP
LISTENER = {"chat": "native", "xmpp-chat": "xmpp"}
# Bracketed paste (xterm): how a terminal hands over a paste when the program asked for it.
PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"


def chat_argv(server: ServerProcess, command: str, user: str) -> list[str]:
    """The command line of the chat command logged in as ``user`` (password ``<user>pw``)."""
    address = f"127.0.0.1:{server.ports[LISTENER[command]]}"
    return ["-m", "xmlchat", command, user, "--password", f"{user}pw", "--server", address,
            "--config", str(server.config_path)]  # fmt: skip


def chat_env(server: ServerProcess) -> dict[str, str]:
    return {
        **os.environ,
        "XMLCHAT_DATA_DIR": str(server.data_dir),
        "TERM": "xterm",
        # pexpect is no terminal emulator: it cannot answer a cursor position request.
        "PROMPT_TOOLKIT_NO_CPR": "1",
    }


def spawn_chat(server: ServerProcess, command: str, user: str, timeout: float = 20) -> pexpect.spawn:
    """The chat command in a 50x200 pseudo-terminal, once it has logged in."""
    child = pexpect.spawn(
        sys.executable,
        chat_argv(server, command, user),
        env=chat_env(server),
        encoding="utf-8",
        timeout=timeout,
        dimensions=(50, 200),
    )
    child.expect("logged in as ")
    return child


def paste(child: pexpect.spawn, text: str) -> None:
    child.send(PASTE_START + text + PASTE_END + "\r")


def quit_chat(child: pexpect.spawn, key: str = "c") -> int:
    """Press Ctrl-<key>; the exit status once the command has ended (within its timeout)."""
    child.sendcontrol(key)
    child.expect(pexpect.EOF)
    child.close()
    assert "Traceback" not in (child.before or "")
    status: int = child.exitstatus if child.exitstatus is not None else -(child.signalstatus or 0)
    return status


def received(server: ServerProcess, user: str, count: int, timeout: float = 15) -> list[str]:
    """The bodies of the next ``count`` messages for ``user``, read through the
    client library (offline ones arrive at login)."""

    async def read() -> list[str]:
        client = NativeClient(user, f"{user}pw", port=server.ports["native"], ssl=server.client_ssl())
        await client.start()
        try:
            return [(await asyncio.wait_for(client.incoming.get(), timeout)).body for _ in range(count)]
        finally:
            await client.close()

    return asyncio.run(read())
