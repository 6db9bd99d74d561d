"""``chat`` and ``send``: the native-protocol client from the command line.

$ xmlchat chat alice@localhost
bob: hello            send "hello" to bob
/contacts             list contacts and who is online
/add bob  /remove bob manage contacts
/block bob            block bob (no messages or presence either way)
/unblock [bob]        unblock bob; without a name, everyone
/blocked              list blocked addresses
/history [bob] [N]    the last N (default 20, at most 100) archived messages,
                      with bob or with everyone (when the server keeps an archive)
/join lobby [nick]    rooms: /join, /leave lobby, /who lobby, '#lobby: hi' (chat_rooms.py)
/quit                 leave
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from xmlchat.cli.chat_rooms import ROOM_COMMANDS, print_room_events, room_command
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
)
from xmlchat.config import Config
from xmlchat.protocol.native import MAX_HISTORY


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--plain", action="store_true", help="use the plaintext native listener")

    add_client_commands(sub, common, ("chat", "send"), "native", (_chat, _send), options)


def make_client(args: argparse.Namespace, config: Config, **kwargs: Any) -> NativeClient:
    listener = config.listeners.native_plain if args.plain else config.listeners.native
    host, port = listener.address, listener.port
    if args.server:
        host, _, port_text = args.server.rpartition(":")
        port = int(port_text)
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
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


def _print_message(msg: IncomingMessage) -> None:
    print(f"[{msg.time.astimezone():%H:%M:%S}] {msg.sender}: {msg.body}", flush=True)


def _print_presence(update: PresenceUpdate) -> None:
    print(f"* {update.user} is {'online' if update.online else 'offline'}", flush=True)


def _print_blocklist(jids: list[str]) -> None:
    print(f"* blocked: {', '.join(jids) or 'nobody'}", flush=True)


def _chat(args: argparse.Namespace, config: Config) -> int:
    client = make_client(
        args,
        config,
        on_message=_print_message,
        on_presence=_print_presence,
        on_state=lambda state, why: print(f"~ {state}: {why}", flush=True),
        on_blocklist=_print_blocklist,
    )

    async def run() -> int:
        try:
            await client.start()
        except LoginFailed as e:
            print(f"xmlchat: {e}", file=sys.stderr)
            return 1
        except OSError as e:
            print(connect_failure(e, client.host, client.port, config), file=sys.stderr)
            return 1
        print(f"logged in as {client.address}; type 'bob: hello', {_COMMANDS}", flush=True)
        loop = asyncio.get_running_loop()
        rooms = asyncio.create_task(print_room_events(client))
        try:
            while True:
                line = await loop.run_in_executor(None, sys.stdin.readline)
                if not line or line.strip() == "/quit":
                    return 0
                await _command(client, line.strip())
        finally:
            rooms.cancel()
            await client.close()

    return run_async(run())


_COMMANDS = (
    "/contacts, /add NAME, /remove NAME, /block NAME, /unblock [NAME], /blocked, /history [NAME] [N], "
    f"{ROOM_COMMANDS} or /quit"
)
HISTORY_LINES = 20  # /history without N: a screenful


async def _command(client: NativeClient, line: str) -> None:
    try:
        if await room_command(client, line):
            return
        if line == "/contacts":
            contacts = await client.contacts()
            for jid, online in contacts:
                print(f"  {jid} {'online' if online else 'offline'}")
            if not contacts:
                print("  (no contacts: /add NAME)")
        elif line.startswith(("/add ", "/remove ")):
            command, _, jid = line.partition(" ")
            change = client.add_contact if command == "/add" else client.remove_contact
            await change(jid.strip())
            print(f"  ok: {command[1:]} {jid.strip()}")
        elif line == "/blocked" or line.startswith(("/block ", "/unblock")):
            await _blocking(client, line)
        elif line == "/history" or line.startswith("/history "):
            await _history(client, line.split()[1:])
        elif ":" in line:
            to, _, text = line.partition(":")
            await client.send(to.strip(), text.strip())
        elif line:
            print(f"  type 'name: message', {_COMMANDS}")
    except ServerError as e:
        print(f"! {e}", flush=True)
    except (ConnectionError, TimeoutError) as e:
        print(f"! not sent: {e}", flush=True)


async def _blocking(client: NativeClient, line: str) -> None:
    command, _, name = line.partition(" ")
    name = name.strip()
    if command == "/blocked":
        jids = await client.blocklist()
    elif command == "/block" and name:
        jids = await client.block(name)
    elif command == "/unblock":
        jids = await client.unblock(name) if name else await client.unblock()
    else:
        print(f"  type {_COMMANDS}")
        return
    for jid in jids:
        print(f"  {jid} blocked")
    if not jids:
        print("  (nobody blocked: /block NAME)")


async def _history(client: NativeClient, words: list[str]) -> None:
    """``/history [NAME] [N]``: a number alone is N, for every conversation."""
    count = int(words.pop()) if words and words[-1].isdigit() else HISTORY_LINES
    if len(words) > 1 or not 1 <= count <= MAX_HISTORY:
        print(f"  type /history [NAME] [N], N from 1 to {MAX_HISTORY}")
        return
    page = await client.history(words[0] if words else None, count)
    for message in page.messages:
        _print_archived(message)
    if not page.messages:
        print("  (no archived messages)")
    elif not page.complete:
        print("  (older messages not shown)")


def _print_archived(message: ArchivedMessage) -> None:
    when = message.time.astimezone()
    print(f"  [{when:%Y-%m-%d %H:%M:%S}] {message.sender} -> {message.to}: {message.body}")
