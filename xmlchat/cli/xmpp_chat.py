"""``xmpp-chat`` and ``xmpp-send``: the standard XMPP client (slixmpp) from the command line.

$ xmlchat xmpp-chat alice@localhost
/to bob               then every line goes to bob@localhost, as typed
/msg bob hello        one message (a full JID works too)
/join lobby           enter lobby@conference.<host> (XEP-0045); then lines go to the room
/who, /history, /leave, /allow, /deny, /help, /quit: chat_shell.HELP

XMPP also has /roster (with subscription states), /add NAME (ask to see
bob's presence, RFC 6121 §3.1) and /remove NAME. A request to see yours is
shown and waits for /allow or /deny.

TLS is always on and verified: by default against the data directory's
generated ``tls/cert.pem`` (pinning), else ``--cafile`` or the system store;
``--insecure`` skips verification. slixmpp is imported only when used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from xmlchat.cli.chat_rooms import Reentry
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
from xmlchat.client.backoff import backoff_delay
from xmlchat.client.native_receipts import RecentMessages
from xmlchat.config import Config
from xmlchat.jid import JID, InvalidJID

if TYPE_CHECKING:
    from xmlchat.client.xmpp import ChatMessage, PresenceUpdate, StanzaFailed, XmppClient

T = TypeVar("T")
MIN_BACKOFF, MAX_BACKOFF = 0.5, 30.0  # seconds, as the native client's defaults


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
        self.host, self.port = server_address(args.server, listener)
        self.tls = "direct" if args.direct_tls else "starttls"
        self.ssl = client_tls(args, config, self.host, self.port, direct=self.tls == "direct")
        jid = user_jid(args.jid, config)
        self.jid = f"{jid}/{args.resource}" if args.resource else str(jid)
        self.password = read_password(args, confirm=False)

    def client(self, **kwargs: Any) -> XmppClient:
        from xmlchat.client.xmpp import XmppClient

        return XmppClient(self.jid, self.password, ssl_context=self.ssl, **kwargs)

    async def login(self, client: XmppClient) -> None:
        """Raises CommandFailed when refused, OSError when unreachable."""
        from xmlchat.client.xmpp import LoginFailed

        try:
            await client.start(self.host, self.port, tls="direct" if self.tls == "direct" else "starttls")
        except LoginFailed as e:
            raise CommandFailed(f"login failed: {e}") from None
        except (OSError, TimeoutError) as e:  # connect_failure explains a certificate it cannot verify
            failure = connect_failure(e, self.host, self.port, self.config)
            raise OSError(failure.removeprefix("xmlchat: ")) from None


def _send(args: argparse.Namespace, config: Config) -> int:
    connection = _Connection(args, config)

    async def run() -> int:
        client = connection.client(send_presence=False)
        try:
            await connection.login(client)
        except (CommandFailed, OSError, TimeoutError) as e:
            print(f"xmlchat: {e}", file=sys.stderr)
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


def _chat(args: argparse.Namespace, config: Config) -> int:
    return chat_command(args, lambda terminal: XmppChat(args, config, terminal))


class XmppChat:
    """XMPP behind the shared chat commands. slixmpp's own reconnection is off
    (XmppClient cancels it); a lost stream gets a fresh client after a back-off."""

    protocol = "xmpp"

    def __init__(self, args: argparse.Namespace, config: Config, terminal: Terminal) -> None:
        self.config, self.terminal = config, terminal
        self.stanza_limit = config.limits.max_stanza_bytes
        self.connection = _Connection(args, config)
        # One across reconnections: what the server re-delivers is not shown twice.
        self._recent = RecentMessages()
        self.client = self._new_client()
        self._closing = False
        self._keeper: asyncio.Task[None] | None = None
        self._rooms: dict[str, tuple[str, str]] = {}  # the name typed -> (room JID, our nick)
        self._reentry = Reentry(
            lambda: self._rooms,
            self.terminal.show,
            self._enter,
            (CommandFailed, TimeoutError, ConnectionError),
        )

    def _new_client(self) -> XmppClient:
        from xmlchat.client.xmpp import DEFAULT_PLUGINS

        client = self.connection.client(
            plugins=(*DEFAULT_PLUGINS, "xep_0313", "xep_0045"),  # /history, rooms
            recent=self._recent,
            on_message=self._message,
            on_presence=self._presence,
            on_error=self._error,
            on_subscribe=self._subscription_request,
        )
        client.add_event_handler("groupchat_presence", self._room_presence)
        return client

    def _room_presence(self, presence: Any) -> None:
        """XEP-0045 status 332 on our own presence: the room's server (a
        cluster's node serving it) went away; the room lives on elsewhere, so
        enter it again, as after a reconnection."""
        codes = set(presence["muc"]["status_codes"])
        if presence["type"] != "unavailable" or not {110, 332} <= codes:
            return
        self._reentry.moved(str(presence["from"].bare))

    async def start(self) -> str:
        await self.connection.login(self.client)
        self._keeper = asyncio.create_task(self._keep_connected())
        return str(self.client.boundjid)

    async def close(self) -> None:
        self._closing = True
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        await self.client.stop()

    async def _keep_connected(self) -> None:
        while not self._closing:
            await self.client.closed.wait()
            errors = self.client.stream_errors
            why = errors[-1] if errors else "connection closed"
            attempt = 0
            while not self._closing:
                delay = backoff_delay(attempt, MIN_BACKOFF, MAX_BACKOFF)
                attempt += 1
                self.terminal.show(f"~ disconnected: {why}; reconnecting in {delay:.1f}s")
                await asyncio.sleep(delay)
                self.client = self._new_client()
                try:
                    await self.connection.login(self.client)
                except CommandFailed as e:
                    self.terminal.end(1, f"cannot log in again: {e}")
                    return
                except (OSError, TimeoutError) as e:
                    why = str(e)
                    continue
                self.terminal.show(f"~ reconnected as {self.client.boundjid}")
                await self._rejoin()
                break

    async def _rejoin(self) -> None:
        """A new stream is a new occupant nowhere (XEP-0045 §7.2): enter the rooms again."""
        for name, (room, nick) in list(self._rooms.items()):
            try:
                await self._enter(room, nick)
            except (CommandFailed, TimeoutError) as e:
                del self._rooms[name]
                self.terminal.show(f"! could not enter {room} again: {e}")

    def _online(self) -> XmppClient:
        if self.client.closed.is_set():
            raise ConnectionError("offline, reconnecting")
        return self.client

    # ---- what arrives

    def _message(self, msg: ChatMessage) -> None:
        if msg.type == "groupchat":
            room, _, nick = msg.sender.partition("/")
            if nick:  # a subject change or a room notice has no nick
                earlier = " (earlier)" if msg.delayed else ""
                self.terminal.show(f"[{msg.time.astimezone():%H:%M:%S}] #{room} {nick}: {msg.body}{earlier}")
            return
        sender = msg.sender.partition("/")[0]
        note = " (sent while you were away)" if msg.delayed else ""
        self.terminal.show(f"[{msg.time.astimezone():%H:%M:%S}] {sender}: {msg.body}{note}")

    def _presence(self, update: PresenceUpdate) -> None:
        state = "online" if update.online else "offline"
        detail = update.show or update.status
        extra = f" ({detail})" if update.online and detail else ""
        self.terminal.show(f"* {update.jid} is {state}{extra}")

    def _error(self, error: StanzaFailed) -> None:
        self.terminal.show(f"! {error}")

    def _subscription_request(self, jid: str) -> None:
        name = jid.partition("@")[0] if jid.endswith(f"@{self.config.domain}") else jid
        self.terminal.show(f"? {jid} asks to see your presence: /allow {name} or /deny {name}")

    # ---- the shared commands

    async def send(self, to: str, body: str) -> None:
        if to in self._rooms:
            self._online().send_message(mto=_slixmpp_jid(self._rooms[to][0]), mbody=body, mtype="groupchat")
        else:
            self._online().send_chat(_address(to, self.config), body)

    async def join(self, room: str, nick: str | None) -> str:
        address = room if "@" in room else f"{room}@{self.config.muc.subdomain}.{self.config.domain}"
        nick = nick or self.client.boundjid.user
        await self._enter(address, nick)
        self._rooms[room] = (address, nick)
        return f"you are in {address} as {nick}"

    async def _enter(self, room: str, nick: str) -> None:
        from slixmpp.exceptions import PresenceError

        muc = self._online().plugin["xep_0045"]
        try:
            await muc.join_muc_wait(_slixmpp_jid(room), nick, maxstanzas=20, timeout=10)
        except PresenceError as e:
            raise CommandFailed(f"{e.condition}: {e.text}" if e.text else str(e.condition)) from None
        except TimeoutError:
            raise TimeoutError(f"no answer from {room}") from None

    async def leave(self, room: str) -> None:
        if room not in self._rooms:
            raise Unavailable(f"you are not in {room}")
        address, nick = self._rooms.pop(room)
        self._online().plugin["xep_0045"].leave_muc(_slixmpp_jid(address), nick)

    async def room_who(self, room: str) -> list[str]:
        if room not in self._rooms:
            raise Unavailable(f"/join {room} first")
        return sorted(self._online().plugin["xep_0045"].get_roster(_slixmpp_jid(self._rooms[room][0])))

    async def who(self) -> list[str]:
        return [
            f"{entry.jid} {'online' if entry.online else 'offline'}"
            for entry in self._online().roster_entries()
        ]

    async def history(self, with_: str | None, count: int) -> list[str]:
        found = await _ask(self._online().history(_address(with_, self.config) if with_ else None, count))
        return [
            history_line(m.time, m.sender.partition("/")[0], m.to.partition("/")[0], m.body) for m in found
        ]

    async def allow(self, jid: str) -> None:
        address = _address(jid, self.config)
        self._online().approve(address)
        self.terminal.show(f"  {address} may see your presence now")

    async def deny(self, jid: str) -> None:
        address = _address(jid, self.config)
        self._online().refuse(address)
        self.terminal.show(f"  refused {address}")

    # ---- XMPP only

    def extras(self) -> dict[str, Extra]:
        return {
            "roster": Extra("/roster", self._roster),
            "add": Extra("/add NAME", self._add),
            "remove": Extra("/remove NAME", self._remove),
        }

    async def _roster(self, _: str) -> None:
        entries = self._online().roster_entries()
        for entry in entries:
            state = "online" if entry.online else "offline"
            pending = ", request pending" if entry.pending else ""
            self.terminal.show(f"  {entry.jid} {state} (subscription {entry.subscription}{pending})")
        if not entries:
            self.terminal.show("  (empty roster: /add NAME)")

    async def _add(self, name: str) -> None:
        jid = _address(name, self.config)
        self._online().subscribe(jid)
        self.terminal.show(f"  subscription request sent to {jid}")

    async def _remove(self, name: str) -> None:
        jid = _address(name, self.config)
        await _ask(self._online().remove(jid))
        self.terminal.show(f"  removed {jid}")


def _slixmpp_jid(address: str) -> Any:
    import slixmpp

    return slixmpp.JID(address)


async def _ask(request: Awaitable[T]) -> T:
    """An iq's answer; its error as CommandFailed (RFC 6120 §8.3), no answer as TimeoutError."""
    from slixmpp.exceptions import IqError, IqTimeout

    try:
        return await request
    except IqError as e:
        raise CommandFailed(f"{e.condition}: {e.text}" if e.text else str(e.condition)) from None
    except IqTimeout:
        raise TimeoutError("no answer from the server") from None
