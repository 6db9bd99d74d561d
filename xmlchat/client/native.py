"""The native-protocol client library (spec: docs/native-protocol.md).

    client = NativeClient("alice@localhost", "secret", port=5290, ssl=ctx)
    await client.start()                 # connects, logs in, keeps reconnecting
    ack = await client.send("bob", "hi")
    message = await client.incoming.get()
    await client.block("eve")            # -> the whole blocklist; unblock() empties it
    page = await client.history("bob")   # the last 50 archived messages with bob
    await client.close()

It never treats one ``recv()`` as one message: bytes go through the same
incremental parser as the server's. While idle it sends ``<ping/>``; when the connection
drops it reconnects (exponential backoff, full jitter) and sends again what was not
acknowledged. Types: native_types.py; pending requests: native_requests.py."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import secrets
import ssl as ssl_mod
from collections.abc import Callable

from lxml import etree

from xmlchat.client.native_receipts import Inbox, RecentMessages, text
from xmlchat.client.native_requests import PendingRequests
from xmlchat.client.native_rooms import ROOM_STANZAS, Rooms
from xmlchat.client.native_types import (
    Ack,
    ArchivedMessage,
    ConnectionLost,
    HistoryPage,
    IncomingMessage,
    LoginFailed,
    PresenceUpdate,
    ServerError,
    State,
)
from xmlchat.protocol.native import MAX_BLOCK_JIDS, MAX_HISTORY, NS, VERSION, element_xml
from xmlchat.xml.stream import StanzaReceived, StanzaStream, StreamClosed, StreamLimits, StreamOpened

# The types live in native_types; they stay importable from here.
__all__ = [
    "Ack",
    "ArchivedMessage",
    "ConnectionLost",
    "HistoryPage",
    "IncomingMessage",
    "LoginFailed",
    "NativeClient",
    "PresenceUpdate",
    "RecentMessages",
    "ServerError",
    "State",
]

log = logging.getLogger(__name__)


class NativeClient:
    def __init__(
        self,
        user: str,
        password: str,
        *,
        host: str = "127.0.0.1",
        port: int = 5290,
        ssl: ssl_mod.SSLContext | None = None,
        resource: str | None = None,
        heartbeat: float = 30.0,
        timeout: float = 10.0,
        reconnect: bool = True,
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
        on_message: Callable[[IncomingMessage], None] | None = None,
        on_presence: Callable[[PresenceUpdate], None] | None = None,
        on_state: Callable[[State, str], None] | None = None,
        on_blocklist: Callable[[list[str]], None] | None = None,
        recent: RecentMessages | None = None,
    ) -> None:
        self.user, self._password, self.resource = user, password, resource
        self.host, self.port, self.ssl = host, port, ssl
        self.heartbeat, self.timeout = heartbeat, timeout
        self.reconnect = reconnect
        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        self.on_message, self.on_presence, self.on_state = on_message, on_presence, on_state
        self.on_blocklist = on_blocklist  # the whole list: pushes, and after each login
        self.state: State = "disconnected"
        self.address: str | None = None
        self.resume_token: str | None = None  # from the last <login-ok>; sent at the next login
        self.incoming: asyncio.Queue[IncomingMessage] = asyncio.Queue()
        # Receipts: confirms what it shows, drops repeats (native_receipts.py).
        self._inbox = Inbox(recent)
        self.connects = 0  # successful logins so far (reconnects = connects - 1)
        self._writer: asyncio.StreamWriter | None = None
        self._online = asyncio.Event()
        self._requests = PendingRequests()
        self._ids = (f"c{n}" for n in itertools.count(1))
        # Message ids are unique per user, across clients and reconnects: the
        # server takes a second message with a known id as a re-send.
        self._message_ids = (f"m{secrets.token_hex(6)}-{n}" for n in itertools.count(1))
        self._runner: asyncio.Task[None] | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._last_heard = 0.0
        self._closing = False
        self.rooms = Rooms(self._write, self._until_online, self._requests, self._ids, timeout)

    # ---- lifecycle

    async def start(self) -> None:
        """Connect and log in; then keep the session up in the background."""
        await self._connect_once()
        self._runner = asyncio.create_task(self._keep_alive())

    async def close(self) -> None:
        self._closing = True
        for task in (self._runner, self._reader_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._writer is not None and not self._writer.is_closing():
            with contextlib.suppress(Exception):
                self._confirm()  # what it showed since its last <received>: not sent again
                self._writer.write(b"</session>")
                await asyncio.wait_for(self._writer.drain(), 1)
            self._writer.close()
        self._set_state("closed", "closed by user")

    def _set_state(self, state: State, why: str) -> None:
        if state != self.state:
            self.state = state
            log.info("%s: %s (%s)", self.user, state, why)
            if self.on_state is not None:
                self.on_state(state, why)

    # ---- one connection

    async def _connect_once(self) -> None:
        self._set_state("connecting", f"{self.host}:{self.port}")
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                self.host, self.port, ssl=self.ssl, server_hostname=self.host if self.ssl else None
            ),
            self.timeout,
        )
        stream = StanzaStream(StreamLimits(max_stanza_bytes=16 * 1024 * 1024))
        fields = [("user", self.user), ("password", self._password), ("resource", self.resource)]
        # The last login's token: the server gives this login the same session back.
        login = element_xml("login", [*fields, ("resume", self.resume_token)]).replace(
            b"</login>", b"<receipts/></login>"
        )
        self._inbox.connected()
        # The root and the login go in one write: one round trip to log in.
        writer.write(f"<session xmlns='{NS}' version='{VERSION}'>".encode() + login)
        try:
            early = await asyncio.wait_for(self._await_login(reader, stream), self.timeout)
        except BaseException:
            writer.close()
            raise
        self._writer = writer
        self.connects += 1
        self._online.set()
        self._set_state("online", self.address or "")
        for el in early:
            self._dispatch(el)
        self._confirm()
        if self.on_blocklist is not None:
            # Pushes go only to sessions that asked (as XEP-0191); no id: to the callback.
            self._write(b"<blocklist-get/>")
        self._reader_task = asyncio.create_task(self._read(reader, stream))

    async def _await_login(self, reader: asyncio.StreamReader, stream: StanzaStream) -> list[etree._Element]:
        """Read until ``<login-ok>``; return the stanzas that came in the same
        read after it (offline messages often do), to dispatch once online."""
        while True:
            data = await reader.read(65536)
            if not data:
                raise ConnectionLost("server closed the connection during login")
            stanzas = [e.element for e in stream.feed(data) if isinstance(e, StanzaReceived)]
            for index, el in enumerate(stanzas):
                name = etree.QName(el).localname
                if name == "login-ok":
                    self.address = text(el, "address")
                    self.resume_token = text(el, "resume") or None
                    return stanzas[index + 1 :]
                if name in ("login-failed", "error"):
                    raise LoginFailed(text(el, "condition"), text(el, "text"))

    async def _read(self, reader: asyncio.StreamReader, stream: StanzaStream) -> None:
        loop = asyncio.get_running_loop()
        self._last_heard = loop.time()
        while True:
            data = await reader.read(65536)
            if not data:
                raise ConnectionLost("server closed the connection")
            self._last_heard = loop.time()
            for event in stream.feed(data):
                if isinstance(event, StanzaReceived):
                    self._dispatch(event.element)
                elif isinstance(event, StreamClosed):
                    raise ConnectionLost("server ended the session")
                elif isinstance(event, StreamOpened):
                    pass
            self._confirm()  # after each read: what it held is shown now

    def _confirm(self) -> None:
        receipt = self._inbox.receipt()
        if receipt is not None and self._writer is not None and not self._writer.is_closing():
            self._writer.write(receipt)

    def _dispatch(self, el: etree._Element) -> None:
        name = etree.QName(el).localname
        if name == "message":
            msg = self._inbox.message(el)
            if msg is None:
                return  # a repeat after a reconnect: shown already
            self.incoming.put_nowait(msg)
            if self.on_message is not None:
                self.on_message(msg)
        elif name == "presence" and self.on_presence is not None:
            self.on_presence(PresenceUpdate(text(el, "from"), text(el, "status") == "online"))
        elif name == "ack":
            self._requests.ack(text(el, "id"), text(el, "time"))
        elif name == "error":
            error = ServerError(text(el, "condition"), text(el, "text"), text(el, "id") or None)
            if not self._requests.fail(error) and not self.rooms.fail(error):
                log.warning("%s: server error %s", self.user, error)
        elif name == "ping":
            self._write(element_xml("pong", [("id", text(el, "id") or None)]))
        elif name == "blocklist":
            self._blocklist(el)
        elif name == "history-result":
            self._requests.history(el)
        elif name == "contacts":
            self._requests.contacts([(text(c, "jid"), text(c, "status") == "online") for c in el])
        elif name in ROOM_STANZAS:
            self.rooms.dispatch(el)

    def _blocklist(self, el: etree._Element) -> None:
        jids = [child.text or "" for child in el if etree.QName(child).localname == "jid"]
        if not self._requests.blocklist(text(el, "id"), jids) and self.on_blocklist is not None:
            self.on_blocklist(jids)  # a push, or the answer to the get after login

    # ---- keeping the session up

    async def _keep_alive(self) -> None:
        attempt = 0
        while not self._closing:
            assert self._reader_task is not None
            why = await self._watch(self._reader_task)
            self._connection_lost(why)
            if not self.reconnect:
                self._set_state("closed", why)
                return
            while not self._closing:
                # Exponential backoff with full jitter (AWS architecture blog's
                # "full jitter"): a restarted server is not stampeded.
                delay = random.uniform(0, min(self.max_backoff, self.min_backoff * 2**attempt))
                attempt += 1
                self._set_state("waiting", f"{why}; reconnecting in {delay:.1f}s")
                await asyncio.sleep(delay)
                try:
                    await self._connect_once()
                except LoginFailed as e:
                    self._set_state("closed", f"login refused: {e}")
                    return
                except (OSError, TimeoutError, ConnectionLost, ssl_mod.SSLError) as e:
                    why = f"{type(e).__name__}: {e}"
                    continue
                attempt = 0
                break

    async def _watch(self, reader_task: asyncio.Task[None]) -> str:
        """Wait until the connection is lost; heartbeat while it is idle."""
        loop = asyncio.get_running_loop()
        pinged_at: float | None = None
        while True:
            done, _ = await asyncio.wait({reader_task}, timeout=min(self.heartbeat, self.timeout) / 2)
            if done:
                exc = reader_task.exception()
                return f"{type(exc).__name__}: {exc}" if exc else "connection closed"
            idle = loop.time() - self._last_heard
            if (
                pinged_at is not None
                and self._last_heard < pinged_at
                and loop.time() - pinged_at > self.timeout
            ):
                reader_task.cancel()
                return "no answer to heartbeat"
            if idle >= self.heartbeat and (pinged_at is None or self._last_heard >= pinged_at):
                pinged_at = loop.time()
                self._write(b"<ping/>")

    def _connection_lost(self, why: str) -> None:
        self._online.clear()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._requests.connection_lost(why)
        self.rooms.connection_lost(why)
        self._set_state("disconnected", why)

    # ---- requests

    def _write(self, data: bytes) -> None:
        if self._writer is None or self._writer.is_closing():
            raise ConnectionLost("not connected")
        self._writer.write(data)

    async def wait_online(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._online.wait(), timeout)

    async def _until_online(self) -> None:
        """Wait for a session, up to ``timeout``; a closed client has none coming.

        After close(), a refused login, or a lost connection with reconnect=False,
        waiting would only end in TimeoutError, so ConnectionLost is raised at once.
        """
        if self.state == "closed":
            raise ConnectionLost("the client is closed")
        await self.wait_online(self.timeout)

    async def send(self, to: str, body: str, id: str | None = None) -> Ack:
        """Send a message; return when the server has stored it (its ack). A connection
        lost first: sent again under the same id once back (the server acknowledges
        a repeat without delivering it twice). Raises ConnectionLost when closed or
        not reconnecting; TimeoutError if no session or ack within ``timeout``."""
        id = id or next(self._message_ids)
        while True:
            await self._until_online()
            future = self._requests.expect_ack(id)
            self._write(element_xml("message", [("id", id), ("to", to), ("body", body)]))
            try:
                return await asyncio.wait_for(future, self.timeout)
            except ConnectionLost:
                if not self.reconnect or self._closing:
                    raise

    async def contacts(self) -> list[tuple[str, bool]]:
        return await self._contacts_request(b"<contacts-get/>")

    async def add_contact(self, jid: str) -> list[tuple[str, bool]]:
        return await self._contacts_request(element_xml("contact-add", [("jid", jid)]))

    async def remove_contact(self, jid: str) -> list[tuple[str, bool]]:
        return await self._contacts_request(element_xml("contact-remove", [("jid", jid)]))

    async def _contacts_request(self, data: bytes) -> list[tuple[str, bool]]:
        await self._until_online()
        future = self._requests.expect_contacts()
        self._write(data)
        return await asyncio.wait_for(future, self.timeout)

    # Blocking (docs/native-protocol.md, "Blocking"): each returns the whole new list.

    async def blocklist(self) -> list[str]:
        return await self._blocklist_request("blocklist-get", ())

    async def block(self, *jids: str) -> list[str]:
        if not jids:
            raise ValueError("block() needs at least one address")
        return await self._blocklist_request("block", jids)

    async def unblock(self, *jids: str) -> list[str]:
        """Unblock ``jids``; with none, unblock everyone."""
        return await self._blocklist_request("unblock", jids)

    async def _blocklist_request(self, tag: str, jids: tuple[str, ...]) -> list[str]:
        if len(jids) > MAX_BLOCK_JIDS:
            raise ValueError(f"at most {MAX_BLOCK_JIDS} addresses per request")
        await self.wait_online(self.timeout)
        id_ = next(self._ids)
        future = self._requests.expect_blocklist(id_)
        try:
            self._write(element_xml(tag, [("id", id_), *(("jid", jid) for jid in jids)]))
            return await asyncio.wait_for(future, self.timeout)
        finally:
            self._requests.forget_blocklist(id_)

    async def history(
        self, with_: str | None = None, max: int = 50, before: str | None = None
    ) -> HistoryPage:
        """A page of the archive (docs/native-protocol.md, "History"): up to ``max``
        messages before archive id ``before`` (None: the newest), with ``with_`` only."""
        if not 1 <= max <= MAX_HISTORY:
            raise ValueError(f"max must be 1 to {MAX_HISTORY}")
        await self._until_online()
        id_ = next(self._ids)
        future = self._requests.expect_history(id_)
        fields = [("id", id_), ("with", with_), ("max", str(max)), ("before", before)]
        try:
            self._write(element_xml("history", fields))
            return await asyncio.wait_for(future, self.timeout)
        finally:
            self._requests.forget_history(id_)
