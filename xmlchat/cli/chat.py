"""``chat`` and ``send``: the native-protocol client from the command line.

$ xmlchat chat alice@localhost
/to bob               then every line goes to bob, as typed
/msg bob hello        one message to bob
/join lobby           enter lobby@conference.<host>; then lines go to the room
/who, /history, /leave, /allow, /deny, /help, /quit: chat_shell.HELP

The native protocol also has /add NAME, /remove NAME (mutual contacts),
/block NAME, /unblock [NAME] and /blocked.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

from xmlchat.cli.chat_rooms import Reentry, describe
from xmlchat.cli.chat_shell import (
    CommandFailed,
    Extra,
    Unavailable,
    chat_command,
    history_line,
    server_address,
)
from xmlchat.cli.chat_terminal import Terminal
from xmlchat.cli.common import (
    add_client_commands,
    client_tls,
    connect_failure,
    read_password,
    run_async,
    user_jid,
)
from xmlchat.client.native import (
    ArchivedMessage,
    IncomingMessage,
    LoginFailed,
    NativeClient,
    PresenceUpdate,
    ServerError,
    State,
)
from xmlchat.client.native_rooms import RoomLeft
from xmlchat.config import Config
from xmlchat.protocol.native import MAX_HISTORY

T = TypeVar("T")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--plain", action="store_true", help="use the plaintext native listener")

    add_client_commands(sub, common, ("chat", "send"), "native", (_chat, _send), options)


def make_client(args: argparse.Namespace, config: Config, **kwargs: Any) -> NativeClient:
    listener = config.listeners.native_plain if args.plain else config.listeners.native
    host, port = server_address(args.server, listener)
    jid = user_jid(args.jid, config)
    password = read_password(args, confirm=False)
    ssl = None if args.plain else client_tls(args, config, host, port, direct=True)
    return NativeClient(str(jid), password, host=host, port=port, ssl=ssl, **kwargs)


def _send(args: argparse.Namespace, config: Config) -> int:
    client = make_client(args, config, reconnect=False)

    async def run() -> int:
        try:
            await client.start()
            ack = await client.send(args.to, args.text)
        except (LoginFailed, ServerError) as e:
            print(f"xmlchat: {e}", file=sys.stderr)
            return 1
        except OSError as e:
            print(connect_failure(e, client.host, client.port, config), file=sys.stderr)
            return 1
        finally:
            await client.close()
        print(f"sent (id {ack.id}, accepted {ack.time.isoformat()})")
        return 0

    return run_async(run())


def _chat(args: argparse.Namespace, config: Config) -> int:
    return chat_command(args, lambda terminal: NativeChat(make_client(args, config), terminal, config))


class NativeChat:
    """The native protocol behind the shared chat commands. The client library
    reconnects by itself; this shows its state changes."""

    protocol = "native"

    def __init__(self, client: NativeClient, terminal: Terminal, config: Config) -> None:
        self.client, self.terminal, self.config = client, terminal, config
        self.stanza_limit = config.limits.max_stanza_bytes
        client.on_message, client.on_presence = self._message, self._presence
        client.on_state, client.on_blocklist = self._state, self._blocklist_pushed
        self._shown_blocklist: list[str] = []  # as last shown: each login sends the list again
        self._rooms: dict[str, tuple[str, str]] = {}  # the name typed -> (room's address, our nick)
        self._room_events: asyncio.Task[None] | None = None
        self._reentry = Reentry(
            lambda: self._rooms,
            self.terminal.show,
            lambda room, nick: self.client.rooms.join(room, nick),
            (ServerError, TimeoutError, ConnectionError),
        )

    async def start(self) -> str:
        try:
            await self.client.start()
        except LoginFailed as e:
            raise CommandFailed(f"login failed: {e}") from None
        except OSError as e:  # connect_failure explains a certificate it cannot verify
            failure = connect_failure(e, self.client.host, self.client.port, self.config)
            raise CommandFailed(failure.removeprefix("xmlchat: ")) from None
        self._room_events = asyncio.create_task(self._show_room_events())
        return self.client.address or self.client.user

    async def close(self) -> None:
        if self._room_events is not None:
            self._room_events.cancel()
        await self.client.close()

    async def _show_room_events(self) -> None:
        while True:
            event = await self.client.rooms.incoming.get()
            if isinstance(event, RoomLeft) and event.reason == "shutdown":
                self._reentry.moved(event.room)
                continue
            if isinstance(event, RoomLeft):  # kicked, banned, destroyed: lines no longer go there
                self._rooms = {name: room for name, room in self._rooms.items() if room[0] != event.room}
            self.terminal.show(describe(event))

    # ---- what arrives

    def _message(self, msg: IncomingMessage) -> None:
        self.terminal.show(f"[{msg.time.astimezone():%H:%M:%S}] {msg.sender}: {msg.body}")

    def _presence(self, update: PresenceUpdate) -> None:
        self.terminal.show(f"* {update.user} is {'online' if update.online else 'offline'}")

    def _blocklist_pushed(self, jids: list[str]) -> None:
        if jids != self._shown_blocklist:
            self._shown_blocklist = jids
            self.terminal.show(f"* blocked: {', '.join(jids) or 'nobody'}")

    def _state(self, state: State, why: str) -> None:
        if state == "waiting":
            self.terminal.show(f"~ disconnected: {why}")
        elif state == "online" and self.client.connects > 1:
            self.terminal.show(f"~ reconnected as {why}")
        elif state == "closed" and why.startswith("login refused"):
            self.terminal.end(1, f"cannot log in again: {why}")

    # ---- the shared commands

    async def send(self, to: str, body: str) -> None:
        try:
            if to in self._rooms:
                await self.client.rooms.say(to, body)
            else:
                await self.client.send(to, body)
        except ServerError as e:
            raise CommandFailed(f"not sent: {e}") from None

    async def who(self) -> list[str]:
        contacts = await self._ask(self.client.contacts())
        return [f"{jid} {'online' if online else 'offline'}" for jid, online in contacts]

    async def history(self, with_: str | None, count: int) -> list[str]:
        if not 1 <= count <= MAX_HISTORY:
            raise Unavailable(f"type /history [NAME] [N], N from 1 to {MAX_HISTORY}")
        page = await self._ask(self.client.history(with_, count))
        lines = [_archived(message) for message in page.messages]
        if lines and not page.complete:
            lines.append("(older messages not shown)")
        return lines

    async def join(self, room: str, nick: str | None) -> str:
        joined = await self._ask(self.client.rooms.join(room, nick))
        self._rooms[room] = (joined.room, joined.nick)
        return f"you are in {joined.room} as {joined.nick}"

    async def leave(self, room: str) -> None:
        await self._ask(self.client.rooms.leave(room))
        self._rooms.pop(room, None)

    async def room_who(self, room: str) -> list[str]:
        return sorted(await self._ask(self.client.rooms.who(room)))

    async def allow(self, jid: str) -> None:
        raise Unavailable("native contacts are mutual: /add NAME; the server answers XMPP users' requests")

    async def deny(self, jid: str) -> None:
        raise Unavailable("native contacts are mutual: /remove NAME or /block NAME")

    # ---- native only

    def extras(self) -> dict[str, Extra]:
        return {
            "add": Extra("/add NAME", self._add),
            "remove": Extra("/remove NAME", self._remove),
            "contacts": Extra("/contacts", self._contacts),
            "block": Extra("/block NAME", self._block),
            "unblock": Extra("/unblock [NAME]", self._unblock),
            "blocked": Extra("/blocked", self._blocked),
        }

    async def _add(self, name: str) -> None:
        await self._ask(self.client.add_contact(_name(name, "/add NAME")))
        self.terminal.show(f"  ok: add {name}")

    async def _remove(self, name: str) -> None:
        await self._ask(self.client.remove_contact(_name(name, "/remove NAME")))
        self.terminal.show(f"  ok: remove {name}")

    async def _contacts(self, _: str) -> None:
        for line in await self.who() or ["(no contacts: /add NAME)"]:
            self.terminal.show(f"  {line}")

    async def _block(self, name: str) -> None:
        self._show_blocked(await self._ask(self.client.block(_name(name, "/block NAME"))))

    async def _unblock(self, name: str) -> None:
        name = name.strip()
        self._show_blocked(await self._ask(self.client.unblock(name) if name else self.client.unblock()))

    async def _blocked(self, _: str) -> None:
        self._show_blocked(await self._ask(self.client.blocklist()))

    def _show_blocked(self, jids: list[str]) -> None:
        for jid in jids:
            self.terminal.show(f"  {jid} blocked")
        if not jids:
            self.terminal.show("  (nobody blocked: /block NAME)")

    async def _ask(self, request: Awaitable[T]) -> T:
        try:
            return await request
        except ServerError as e:
            raise CommandFailed(str(e)) from None


def _name(text: str, usage: str) -> str:
    name = text.strip()
    if not name or " " in name:
        raise Unavailable(f"type {usage}")
    return name


def _archived(message: ArchivedMessage) -> str:
    return history_line(message.time, message.sender, message.to, message.body)
