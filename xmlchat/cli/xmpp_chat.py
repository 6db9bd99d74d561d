"""``xmpp-chat`` and ``xmpp-send``: the standard XMPP client (slixmpp) from the command line.

$ xmlchat xmpp-chat alice@localhost
bob: hello            send "hello" to bob@localhost (a full JID works too)
/roster               list contacts, their subscription, who is online
/add bob              ask to see bob's presence (subscribe, RFC 6121 §3.1)
/remove bob           drop bob from the roster
/quit                 leave

TLS is always on and verified: by default against the data directory's
generated ``tls/cert.pem`` (pinning), else ``--cafile`` or the system store;
``--insecure`` skips verification. slixmpp is imported only when used.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from typing import TYPE_CHECKING, Any

from xmlchat.cli.common import (
    add_client_commands,
    client_tls,
    connect_failure,
    read_password,
    run_async,
    user_jid,
)
from xmlchat.config import Config
from xmlchat.jid import JID, InvalidJID

if TYPE_CHECKING:
    from xmlchat.client.xmpp import ChatMessage, PresenceUpdate, StanzaFailed, XmppClient

HELP = "type 'bob: hello', /roster, /add NAME, /remove NAME or /quit"


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--direct-tls", action="store_true", help="TLS from the first byte (XEP-0368)")
        parser.add_argument("--resource", help="default: chosen by the server")

    add_client_commands(sub, common, ("xmpp-chat", "xmpp-send"), "xmpp", (_chat, _send), options)


def _address(text: str, config: Config) -> str:
    """``bob`` -> ``bob@<domain>``; full JIDs are kept."""
    try:
        return str(JID.user(text.strip(), config.domain))
    except InvalidJID as e:
        raise ValueError(str(e)) from None


class _Connection:
    def __init__(self, args: argparse.Namespace, config: Config) -> None:
        self.config = config
        listener = config.listeners.xmpp_tls if args.direct_tls else config.listeners.xmpp
        self.host, self.port = listener.address, listener.port
        if args.server:
            host, _, port = args.server.rpartition(":")
            self.host, self.port = host.strip("[]"), int(port)
        if self.host in ("0.0.0.0", "::", ""):
            self.host = "127.0.0.1"
        self.tls = "direct" if args.direct_tls else "starttls"
        self.ssl = client_tls(args, config, self.host, self.port, direct=self.tls == "direct")
        jid = user_jid(args.jid, config)
        self.jid = f"{jid}/{args.resource}" if args.resource else str(jid)
        self.password = read_password(args, confirm=False)

    def client(self, **kwargs: Any) -> XmppClient:
        from xmlchat.client.xmpp import XmppClient

        return XmppClient(self.jid, self.password, ssl_context=self.ssl, **kwargs)

    async def start(self, client: XmppClient) -> bool:
        from xmlchat.client.xmpp import LoginFailed

        try:
            await client.start(self.host, self.port, tls="direct" if self.tls == "direct" else "starttls")
        except LoginFailed as e:
            print(f"xmlchat: login failed: {e}", file=sys.stderr)
            return False
        except (OSError, TimeoutError) as e:
            print(connect_failure(e, self.host, self.port, self.config), file=sys.stderr)
            return False
        return True


def _send(args: argparse.Namespace, config: Config) -> int:
    connection = _Connection(args, config)

    async def run() -> int:
        client = connection.client(send_presence=False)
        if not await connection.start(client):
            return 1
        try:
            to = _address(args.to, config)
            sent = client.send_chat(to, args.text)
            await client.sync()  # the server has handled the message once the pong is back
            while not client.errors.empty():
                error = client.errors.get_nowait()
                if error.ref == sent:
                    print(f"xmlchat: not delivered: {error}", file=sys.stderr)
                    return 1
        except ValueError as e:
            print(f"xmlchat: {e}", file=sys.stderr)
            return 1
        finally:
            await client.stop()
        print(f"sent (id {sent})")
        return 0

    return run_async(run())


def _print_message(msg: ChatMessage) -> None:
    sender = msg.sender.partition("/")[0]
    note = " (sent while you were away)" if msg.delayed else ""
    print(f"[{msg.time.astimezone():%H:%M:%S}] {sender}: {msg.body}{note}", flush=True)


def _print_presence(update: PresenceUpdate) -> None:
    state = "online" if update.online else "offline"
    extra = f" ({update.show or update.status})" if update.online and (update.show or update.status) else ""
    print(f"* {update.jid} is {state}{extra}", flush=True)


def _print_error(error: StanzaFailed) -> None:
    print(f"! {error}", flush=True)


def _stdin_lines(loop: asyncio.AbstractEventLoop) -> asyncio.Queue[str | None]:
    """Lines of stdin from a daemon thread (None at EOF), so a dropped
    connection can end the program without waiting for a keypress."""
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=read, name="stdin", daemon=True).start()
    return lines


def _chat(args: argparse.Namespace, config: Config) -> int:
    connection = _Connection(args, config)

    async def run() -> int:
        client = connection.client(
            on_message=_print_message, on_presence=_print_presence, on_error=_print_error
        )
        if not await connection.start(client):
            return 1
        print(f"logged in as {client.boundjid}; {HELP}", flush=True)
        lines = _stdin_lines(asyncio.get_running_loop())
        closed = asyncio.ensure_future(client.closed.wait())
        try:
            while True:
                next_line = asyncio.ensure_future(lines.get())
                await asyncio.wait({next_line, closed}, return_when=asyncio.FIRST_COMPLETED)
                if not next_line.done():
                    next_line.cancel()
                    reason = client.stream_errors[-1] if client.stream_errors else "connection closed"
                    print(f"~ disconnected: {reason}", flush=True)
                    return 1
                line = next_line.result()
                if line is None or line.strip() == "/quit":
                    return 0
                await _command(client, line.strip(), config)
        finally:
            closed.cancel()
            await client.stop()

    return run_async(run())


async def _command(client: XmppClient, line: str, config: Config) -> None:
    from slixmpp.exceptions import IqError, IqTimeout

    try:
        if line == "/roster":
            entries = client.roster_entries()
            for entry in entries:
                state = "online" if entry.online else "offline"
                pending = ", request pending" if entry.pending else ""
                print(f"  {entry.jid} {state} (subscription {entry.subscription}{pending})")
            if not entries:
                print("  (empty roster: /add NAME)")
        elif line.startswith("/add "):
            jid = _address(line[5:], config)
            client.subscribe(jid)
            print(f"  subscription request sent to {jid}")
        elif line.startswith("/remove "):
            jid = _address(line[8:], config)
            await client.remove(jid)
            print(f"  removed {jid}")
        elif ":" in line and not line.startswith("/"):
            to, _, text = line.partition(":")
            client.send_chat(_address(to, config), text.strip())
        elif line:
            print(f"  {HELP}")
    except ValueError as e:
        print(f"! {e}", flush=True)
    except IqError as e:
        print(f"! {e.condition}: {e.text}" if e.text else f"! {e.condition}", flush=True)
    except IqTimeout:
        print("! no answer from the server", flush=True)
