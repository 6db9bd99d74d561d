"""One chat experience over either protocol: the commands and the input loop
that ``xmlchat chat`` (native) and ``xmlchat xmpp-chat`` share.

A protocol supplies a :class:`ChatBackend`; everything the user types goes
through :func:`run_chat`. Rooms are one backend method each (``join``,
``leave``, ``room_who``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from xmlchat.cli.chat_lines import Command, Text, TooLong, parse, split_body
from xmlchat.cli.chat_terminal import Terminal
from xmlchat.cli.common import run_async
from xmlchat.config import Listener

HISTORY_LINES = 20  # /history without N: a screenful


class Unavailable(Exception):
    """A command this protocol, client or server cannot do (yet); the text says why."""


class CommandFailed(Exception):
    """The server refused or did not answer; the text is shown after ``!``."""


@dataclass(frozen=True, slots=True)
class Extra:
    """A command only one protocol has: ``/name args`` calls ``run(args)``."""

    usage: str
    run: Callable[[str], Awaitable[None]]


class ChatBackend(Protocol):
    protocol: str
    stanza_limit: int  # the server's stanza size limit, in bytes

    async def start(self) -> str:
        """Connect and log in; return the address logged in as. Raises
        CommandFailed (refused) or OSError (unreachable). Afterwards the backend
        reconnects by itself and reports on the Terminal it was given."""
        ...

    async def send(self, to: str, body: str) -> None: ...

    async def who(self) -> list[str]:
        """Contacts, one line each, with who is online."""
        ...

    async def history(self, with_: str | None, count: int) -> list[str]: ...

    async def join(self, room: str, nick: str | None) -> str:
        """Enter ``room`` (as ``nick``, else the backend's default); return what to show."""
        ...

    async def leave(self, room: str) -> None: ...

    async def room_who(self, room: str) -> list[str]:
        """The nicknames in ``room``."""
        ...

    async def allow(self, jid: str) -> None:
        """Approve a subscription request (RFC 6121 §3.1.4)."""
        ...

    async def deny(self, jid: str) -> None: ...

    def extras(self) -> dict[str, Extra]: ...

    async def close(self) -> None: ...


HELP = """\
  text                 send to the current conversation (lines never name a recipient)
  /to NAME             talk to NAME from now on
  /msg NAME TEXT       send one message to NAME
  /who [ROOM]          your contacts and who is online; with ROOM, who is in it
  /history [NAME] [N]  the last N messages (default 20), with NAME or everyone
  /join ROOM [NICK]    enter a room; then lines go to it, /leave [ROOM] leaves
  /allow NAME, /deny NAME     answer a request to see your presence
  /help, /quit         this text; leave (Ctrl-C and Ctrl-D leave too)
  //text               send text that starts with a slash"""


class ChatCommands:
    """Turns parsed lines into backend calls and shows what happened."""

    def __init__(self, backend: ChatBackend, terminal: Terminal) -> None:
        self.backend, self.terminal = backend, terminal
        self.current: str | None = None  # the conversation plain lines go to
        self.room: str | None = None
        self._table: dict[str, Callable[[str], Awaitable[None]]] = {
            "to": self._to,
            "msg": self._msg,
            "who": self._who,
            "history": self._history,
            "join": self._join,
            "leave": self._leave,
            "allow": self._allow,
            "deny": self._deny,
            "help": self._help,
        }

    async def handle(self, line: str) -> bool:
        """Act on one line; False when it was /quit."""
        parsed = parse(line)
        if parsed is None:
            return True
        try:
            if isinstance(parsed, Text):
                await self._text(parsed.body)
            elif parsed.name in ("quit", "exit"):
                return False
            else:
                await self._command(parsed)
        except (Unavailable, CommandFailed, TooLong, ValueError) as e:
            self.terminal.show(f"! {e}")
        except (ConnectionError, TimeoutError) as e:
            self.terminal.show(f"! not done: {e or 'no answer from the server'}")
        return True

    async def _command(self, command: Command) -> None:
        handler = self._table.get(command.name)
        if handler is not None:
            await handler(command.args)
            return
        extra = self.backend.extras().get(command.name)
        if extra is None:
            raise Unavailable(f"unknown command /{command.name}; /help lists them")
        await extra.run(command.args)

    async def _text(self, body: str) -> None:
        if self.current is None:
            raise Unavailable("whom to? /to NAME first, or /msg NAME TEXT")
        await self._send(self.current, body)

    async def _send(self, to: str, body: str) -> None:
        parts = split_body(body, self.backend.stanza_limit)
        if len(parts) > 1:
            self.terminal.show(f"~ long message: sending it as {len(parts)} messages")
        for part in parts:
            await self.backend.send(to, part)

    async def _to(self, args: str) -> None:
        name = _one_word(args, "/to NAME")
        self.current = name
        self.terminal.show(f"~ talking to {name}")

    async def _msg(self, args: str) -> None:
        name, _, body = args.partition(" ")
        if not name or not body.strip():
            raise Unavailable("type /msg NAME TEXT")
        await self._send(name, body)

    async def _who(self, args: str) -> None:
        if args.strip():
            room = _one_word(args, "/who [ROOM]")
            self.terminal.show(f"  in {room}: {', '.join(await self.backend.room_who(room)) or 'nobody'}")
            return
        lines = await self.backend.who()
        for line in lines:
            self.terminal.show(f"  {line}")
        if not lines:
            self.terminal.show("  (no contacts yet)")

    async def _history(self, args: str) -> None:
        words = args.split()
        count = int(words.pop()) if words and words[-1].isdigit() else HISTORY_LINES
        if len(words) > 1:
            raise Unavailable("type /history [NAME] [N]")
        lines = await self.backend.history(words[0] if words else None, count)
        for line in lines:
            self.terminal.show(f"  {line}")
        if not lines:
            self.terminal.show("  (no archived messages)")

    async def _join(self, args: str) -> None:
        words = args.split()
        if len(words) not in (1, 2):
            raise Unavailable("type /join ROOM [NICK]")
        shown = await self.backend.join(words[0], words[1] if len(words) == 2 else None)
        self.room = self.current = words[0]
        self.terminal.show(f"~ {shown}; your lines go to {words[0]} now")

    async def _leave(self, args: str) -> None:
        room = args.strip() or self.room
        if not room:
            raise Unavailable("type /leave ROOM")
        await self.backend.leave(room)
        if self.current == room:
            self.current = None
        self.room = None if self.room == room else self.room
        self.terminal.show(f"~ left {room}")

    async def _allow(self, args: str) -> None:
        await self.backend.allow(_one_word(args, "/allow NAME"))

    async def _deny(self, args: str) -> None:
        await self.backend.deny(_one_word(args, "/deny NAME"))

    async def _help(self, args: str) -> None:
        self.terminal.show(HELP)
        extras = self.backend.extras()
        if extras:
            usages = ", ".join(extra.usage for extra in extras.values())
            self.terminal.show(f"  {self.backend.protocol} only: {usages}")


def history_line(when: datetime, sender: str, to: str, body: str) -> str:
    """One archived message as /history shows it, in local time."""
    return f"[{when.astimezone():%Y-%m-%d %H:%M:%S}] {sender} -> {to}: {body}"


def _one_word(args: str, usage: str) -> str:
    words = args.split()
    if len(words) != 1:
        raise Unavailable(f"type {usage}")
    return words[0]


def server_address(server: str | None, listener: Listener) -> tuple[str, int]:
    """Where a chat command connects: ``--server HOST:PORT`` (an IPv6 HOST in
    brackets, as in a URL), else the configured listener; a wildcard address
    is this machine."""
    host, port = listener.address, listener.port
    if server:
        host, _, port_text = server.rpartition(":")
        host, port = host.strip("[]"), int(port_text)
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return host, port


def chat_command(args: argparse.Namespace, backend: Callable[[Terminal], ChatBackend]) -> int:
    """``chat`` and ``xmpp-chat``: the backend made for a new terminal, in :func:`run_chat`."""

    async def run() -> int:
        terminal = Terminal()
        chat = backend(terminal)
        quiet_libraries(args)
        return await run_chat(chat, terminal)

    return run_async(run())


def quiet_libraries(args: argparse.Namespace) -> None:
    """The client libraries' log lines (a server error nobody asked for, slixmpp's
    "No appropriate login method." after a refused login) would land in the
    middle of the chat; the chat shows what matters itself. ``--log-level``
    brings them back."""
    if args.log_level is None:
        for name in ("xmlchat.client", "slixmpp"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


async def run_chat(backend: ChatBackend, terminal: Terminal) -> int:
    """Log in, then read lines until /quit, Ctrl-C, Ctrl-D, or a refused re-login."""
    with terminal.interruptible():  # from the first moment: Ctrl-C while logging in quits too
        try:
            address = await _until_ended(backend.start(), terminal)
        except (CommandFailed, OSError, TimeoutError) as e:
            terminal.error(f"xmlchat: {e or 'timed out'}")
            await backend.close()
            return 1
        if address is None:
            await backend.close()
            return terminal.exit_code
        terminal.show(f"logged in as {address} ({backend.protocol}); /to NAME, then type; /help for more")
        commands = ChatCommands(backend, terminal)
        try:
            with terminal.reader.session():
                await _read_lines(commands, terminal)
        finally:
            await backend.close()
    if terminal.end_reason:
        terminal.error(f"! {terminal.end_reason}")
    return terminal.exit_code


async def _until_ended(work: Awaitable[str], terminal: Terminal) -> str | None:
    """``work``'s result, or None if the chat is ended first (``work`` is cancelled)."""
    task = asyncio.ensure_future(work)
    ended = asyncio.ensure_future(terminal.ended.wait())
    try:
        await asyncio.wait({task, ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return None
    return task.result()


async def _read_lines(commands: ChatCommands, terminal: Terminal) -> None:
    ended = asyncio.ensure_future(terminal.ended.wait())
    try:
        while True:
            next_line = asyncio.ensure_future(terminal.reader.read())
            await asyncio.wait({next_line, ended}, return_when=asyncio.FIRST_COMPLETED)
            if not next_line.done():
                next_line.cancel()
                return
            line = next_line.result()
            if line is None or not await commands.handle(line):
                return
    finally:
        ended.cancel()
