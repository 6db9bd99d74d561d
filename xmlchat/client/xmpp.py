"""The standard XMPP client: slixmpp, set up for xmlchat (RFC 6120/6121).

    client = XmppClient("alice@localhost", "secret", ssl_context=client_context(cafile))
    await client.start("127.0.0.1", 5222)        # STARTTLS, SASL, bind, presence, roster
    msg_id = client.send_chat("bob@localhost", "hi")
    message = await client.incoming.get()
    await client.stop()

slixmpp does the protocol; this class turns its events into typed records,
awaitable queues and exceptions, so the CLI and the tests need no slixmpp
vocabulary. TLS is on and verified: pass a context that trusts the server's
certificate (pinning the generated ``cert.pem``) or an insecure one explicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

from xmlchat.client.native_receipts import RecentMessages

TlsMode = Literal["starttls", "direct", "none"]
ROSTER_NS = "jabber:iq:roster"

DEFAULT_PLUGINS = (
    "xep_0030",  # service discovery
    "xep_0092",  # software version
    "xep_0199",  # ping: answers the server's keepalive pings
    "xep_0202",  # entity time
    "xep_0203",  # delayed delivery: the stamp of offline messages
)


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A message with a body. ``time`` is the XEP-0203 stamp of a stored
    message (``delayed``), else when it arrived."""

    id: str
    sender: str  # full JID
    to: str
    body: str
    time: datetime
    delayed: bool
    type: str = "chat"


@dataclass(frozen=True, slots=True)
class PresenceUpdate:
    jid: str  # full JID
    online: bool
    show: str = ""
    status: str = ""


@dataclass(frozen=True, slots=True)
class RosterEntry:
    jid: str
    name: str
    subscription: str
    pending: bool  # our subscription request awaits an answer (ask='subscribe')
    online: bool


class LoginFailed(Exception):
    """The server refused the login; ``condition`` is the SASL or stream error."""

    def __init__(self, condition: str, text: str = "") -> None:
        super().__init__(f"{condition}: {text}" if text else condition)
        self.condition, self.text = condition, text


class StanzaFailed(Exception):
    """An error stanza answered one of ours (RFC 6120 §8.3)."""

    def __init__(self, condition: str, text: str = "", ref: str = "") -> None:
        super().__init__(f"{condition}: {text}" if text else condition)
        self.condition, self.text, self.ref = condition, text, ref


# slixmpp ships partial types: stanzas and plugins are looked up by string, so
# their values are Any here and are converted to str/datetime at once.
class XmppClient(slixmpp.ClientXMPP):
    def __init__(
        self,
        jid: str,
        password: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        sasl_mech: str | None = None,
        on_message: Callable[[ChatMessage], None] | None = None,
        on_presence: Callable[[PresenceUpdate], None] | None = None,
        on_error: Callable[[StanzaFailed], None] | None = None,
        plugins: tuple[str, ...] = DEFAULT_PLUGINS,
        send_presence: bool = True,
        recent: RecentMessages | None = None,
    ) -> None:
        super().__init__(jid, password, sasl_mech=sasl_mech, ssl_context=ssl_context)
        for plugin in plugins:
            self.register_plugin(plugin)
        self.incoming: asyncio.Queue[ChatMessage] = asyncio.Queue()
        self.presences: asyncio.Queue[PresenceUpdate] = asyncio.Queue()
        self.errors: asyncio.Queue[StanzaFailed] = asyncio.Queue()
        self.stream_errors: list[str] = []  # conditions of <stream:error/>s received
        self.closed = asyncio.Event()
        self._on_message, self._on_presence, self._on_error = on_message, on_presence, on_error
        self._send_presence = send_presence
        # With it, a message seen before (same sender, id and body) is not shown
        # again: the server re-delivers what a lost connection had not
        # acknowledged. Share one across the clients of a user's logins.
        self._recent = recent
        self._login: asyncio.Future[None] | None = None
        # The roster as the server sent it (RFC 6121 §2.1.4, pushes §2.1.6): jid -> entry;
        # slixmpp's own client_roster also lists ourselves and anyone who sent presence.
        self._roster: dict[str, RosterEntry] = {}
        self._online: dict[str, set[str]] = {}  # bare JID -> available resources
        for event, handler in (
            ("session_start", self._session_start),
            ("failed_auth", self._failed_auth),
            ("connection_failed", self._connection_failed),
            ("stream_error", self._stream_error),
            ("disconnected", self._disconnected),
            ("message", self._message),
            ("message_error", self._message_error),
            ("presence_available", self._presence),
            ("presence_unavailable", self._presence),
            ("roster_update", self._roster_update),
        ):
            self.add_event_handler(event, handler)

    # ---- connecting

    async def start(
        self, host: str = "127.0.0.1", port: int = 5222, *, tls: TlsMode = "starttls", timeout: float = 15.0
    ) -> None:
        """Connect, log in, bind, then send initial presence and fetch the roster
        (RFC 6121 §4.2.1, §2.1.3). ``tls``: ``"starttls"`` (RFC 6120 §5), ``"direct"``
        (XEP-0368), or ``"none"`` — only for a server configured without TLS
        (``xmpp.require_encryption = false``); PLAIN is then refused by both sides.
        Raises :class:`LoginFailed` or :class:`OSError`."""
        self.enable_direct_tls = tls == "direct"
        self.enable_starttls = tls == "starttls"
        self.enable_plaintext = tls == "none"
        if tls == "none":
            plugins: Any = self.plugin  # a PluginManager, though annotated as PluginsDict
            if "feature_starttls" in plugins:
                plugins.disable("feature_starttls")
            plugins["feature_mechanisms"].unencrypted_scram = True  # PLAIN stays refused
        self._login = asyncio.get_running_loop().create_future()
        self.closed.clear()
        self.connect(host, port)
        try:
            await asyncio.wait_for(asyncio.shield(self._login), timeout)
        except BaseException:
            if not self._login.done():
                self._login.cancel()  # nobody waits for it any more
            self.cancel_connection_attempt()
            await self.stop(wait=0)
            raise

    async def stop(self, wait: float = 2.0) -> None:
        """Close the stream politely (``</stream:stream>``) and wait for the socket to close."""
        self.cancel_connection_attempt()
        if self.transport is not None:
            await self.disconnect(wait=wait)
        self.closed.set()

    def _finish_login(self, error: BaseException | None) -> None:
        if self._login is not None and not self._login.done():
            if error is None:
                self._login.set_result(None)
            else:
                self._login.set_exception(error)

    async def _session_start(self, _: Any) -> None:
        try:
            if self._send_presence:
                self.send_presence()
            await self.get_roster()
        except (IqError, IqTimeout) as e:
            self._finish_login(LoginFailed("roster", str(e)))
            return
        self._finish_login(None)

    def _failed_auth(self, failure: Any) -> None:
        self._finish_login(LoginFailed(str(failure["condition"]), str(failure["text"])))

    def _connection_failed(self, error: Any) -> None:
        self.cancel_connection_attempt()  # slixmpp would retry forever
        self._finish_login(OSError(f"cannot connect: {error}"))

    def _stream_error(self, error: Any) -> None:
        condition = str(error["condition"])
        self.stream_errors.append(condition)
        self._finish_login(LoginFailed(condition, str(error["text"])))

    def _disconnected(self, reason: Any) -> None:
        self._finish_login(ConnectionError(f"disconnected: {reason or 'connection closed'}"))
        self.closed.set()

    # ---- messages

    def send_chat(self, to: str, body: str, id: str | None = None) -> str:
        """Send a chat message; returns its id. XMPP has no delivery receipt from
        the server: an error comes back as an error stanza (see :meth:`sync`)."""
        message = self.make_message(mto=to, mbody=body, mtype="chat")
        if id is not None:
            message["id"] = id
        elif not message["id"]:
            message["id"] = self.new_id()
        message.send()
        return str(message["id"])

    async def sync(self, timeout: float = 10.0) -> None:
        """Ping the server and wait for the pong. The server handles one stream
        in order, so any error for what we sent before has arrived by then."""
        await self.plugin["xep_0199"].ping(jid=slixmpp.JID(self.boundjid.domain), timeout=timeout)

    def _message(self, msg: Any) -> None:
        if msg["type"] not in ("chat", "normal", "groupchat", "headline") or not msg["body"]:
            return
        stamp = msg["delay"]["stamp"] if msg.get_plugin("delay", check=True) is not None else None
        delayed = isinstance(stamp, datetime)
        message = ChatMessage(
            id=str(msg["id"]),
            sender=str(msg["from"]),
            to=str(msg["to"]),
            body=str(msg["body"]),
            time=stamp.astimezone(UTC) if isinstance(stamp, datetime) else datetime.now(UTC),
            delayed=delayed,
            type=str(msg["type"]),
        )
        if self._recent is not None and message.id:
            bare = message.sender.partition("/")[0]
            if not self._recent.first_time((bare, message.id, message.body)):
                return  # a repeat after a reconnect: shown already
        self.incoming.put_nowait(message)
        if self._on_message is not None:
            self._on_message(message)

    def _message_error(self, msg: Any) -> None:
        error = StanzaFailed(str(msg["error"]["condition"]), str(msg["error"]["text"]), str(msg["id"]))
        self.errors.put_nowait(error)
        if self._on_error is not None:
            self._on_error(error)

    # ---- presence and roster

    def _presence(self, presence: Any) -> None:
        update = PresenceUpdate(
            jid=str(presence["from"]),
            online=presence["type"] != "unavailable",
            show=str(presence["show"] or ""),
            status=str(presence["status"] or ""),
        )
        if update.jid == str(self.boundjid):
            return  # our own presence, reflected (RFC 6121 §4.2.2)
        bare, _, resource = update.jid.partition("/")
        resources = self._online.setdefault(bare, set())
        if update.online:
            resources.add(resource)
        else:
            resources.discard(resource)
        self.presences.put_nowait(update)
        if self._on_presence is not None:
            self._on_presence(update)

    def subscribe(self, jid: str) -> None:
        """Ask to see ``jid``'s presence (RFC 6121 §3.1.1); slixmpp approves the
        contact's own request and subscribes back automatically."""
        self.send_presence_subscription(pto=jid)

    async def remove(self, jid: str) -> None:
        """Remove ``jid`` from the roster, cancelling subscriptions (RFC 6121 §2.5)."""
        update = self.client_roster.update(jid, subscription="remove")
        if update is not None:
            await update

    def roster_entries(self) -> list[RosterEntry]:
        """The roster, sorted by JID, with who is online now."""
        return [
            dataclasses.replace(entry, online=bool(self._online.get(jid)))
            for jid, entry in sorted(self._roster.items())
        ]

    def _roster_update(self, iq: Any) -> None:
        query = iq.xml.find(f"{{{ROSTER_NS}}}query")
        if query is None:
            return  # "no change" answer to a versioned roster get (RFC 6121 §2.6.3)
        if iq["type"] == "result":
            self._roster.clear()
        for item in query.iterfind(f"{{{ROSTER_NS}}}item"):
            jid, subscription = str(item.get("jid", "")), str(item.get("subscription", "none"))
            if subscription == "remove":
                self._roster.pop(jid, None)
            else:
                name, pending = str(item.get("name", "")), item.get("ask") == "subscribe"
                self._roster[jid] = RosterEntry(jid, name, subscription, pending, online=False)


async def wait_closed(client: XmppClient, timeout: float = 10.0) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(client.closed.wait(), timeout)
