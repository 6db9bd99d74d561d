"""A native-protocol connection: the asyncio side of :mod:`xmlchat.protocol.native`.

Translates between native stanzas and the XMPP form the router carries
(``docs/native-protocol.md`` § "Mapping to XMPP"), and is a
:class:`~xmlchat.server.session.Session` once logged in.
"""

from __future__ import annotations

import contextlib
from copy import copy
from datetime import UTC, datetime

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError, StreamCondition, StreamError
from xmlchat.jid import JID, InvalidJID, bare_str
from xmlchat.metrics import native_kind
from xmlchat.protocol import native
from xmlchat.server.connection import Connection
from xmlchat.stanza import BODY, body_text, kind, make, new_id
from xmlchat.xml.stream import StreamLimits

_SEES_CONTACT = frozenset({"to", "both"})


# What a native <message> becomes inside the server (docs/native-protocol.md, "Mapping to XMPP").
_CHAT_MESSAGE = make("message", {"type": "chat"})
etree.SubElement(_CHAT_MESSAGE, BODY)


class NativeConnection(Connection[native.Event]):
    protocol = "native"
    core: native.NativeServerStream

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        limits = self.server.config.limits
        self.core = native.NativeServerStream(
            self.server.config.domain,
            StreamLimits(limits.max_stanza_bytes, limits.max_depth),
            limits.max_unauthenticated_stanza_bytes,
        )
        self._jid: JID | None = None
        self._bare = ""  # str(jid.bare), written on every message delivered
        self._failed_logins = 0
        # Resources of each contact whose available presence reached us.
        self._visible: dict[JID, set[str]] = {}

    # ---- Session

    @property
    def jid(self) -> JID:
        assert self._jid is not None
        return self._jid

    @property
    def available(self) -> bool:
        return self._jid is not None  # a native login is available presence

    @property
    def priority(self) -> int:
        return 0

    @property
    def interested(self) -> bool:
        return False

    @property
    def last_presence(self) -> etree._Element | None:
        return None

    @property
    def authenticated(self) -> bool:
        return self._jid is not None

    def deliver(self, stanza: etree._Element, stamp: datetime, delayed: bool = False) -> None:
        self.server.metrics.stanza_out(self.protocol, kind(stanza))
        self.log_stanza("out", stanza)
        self._write(stanza, stamp)
        self.flush()

    def _write(self, stanza: etree._Element, stamp: datetime) -> None:
        match kind(stanza):
            case "message":
                self._write_message(stanza, stamp)
            case "presence":
                self._write_presence(stanza)
            # iq and anything else has no native form; the XMPP side answers
            # iqs addressed to native sessions itself.

    def _write_message(self, stanza: etree._Element, stamp: datetime) -> None:
        body = body_text(stanza)
        if body is None or stanza.get("type") == "error":
            return  # chat states, receipts and errors have no native form
        sender = stanza.get("from", "")
        with contextlib.suppress(InvalidJID):
            sender = bare_str(sender)
        self.core.send_message(stanza.get("id") or new_id(), sender, self._bare, stamp, body)

    def _write_presence(self, stanza: etree._Element) -> None:
        type_ = stanza.get("type")
        if type_ not in (None, "unavailable"):
            return  # subscription management is XMPP-only; see the spec
        try:
            full = JID.parse(stanza.get("from", ""))
        except InvalidJID:
            return
        # Native presence is per user: online while any resource we were told
        # about is available, offline when the last one went (or stopped being
        # visible to us, e.g. after an unsubscription).
        seen = self._visible.setdefault(full.bare, set())
        was_online = bool(seen)
        if type_ is None:
            seen.add(full.resource or "")
        else:
            seen.discard(full.resource or "")
        if bool(seen) != was_online or type_ is None:
            self.core.send_presence(str(full.bare), bool(seen))
        if not seen:
            del self._visible[full.bare]

    def send_keepalive(self) -> None:
        self.core.send_ping()
        self.flush()

    # ---- input

    async def handle(self, event: native.Event) -> list[native.Event]:
        """Perform one event; return the events its answer released."""
        self.server.metrics.stanza_in(self.protocol, native_kind(event))
        self.log_stanza("in", event)
        match event:
            case native.MessageReceived():
                await self._message(event)
            case native.PingReceived(id_):
                self.core.send_pong(id_)
            case native.LoginRequested():
                return await self._login(event)
            case native.ContactsRequested():
                await self._send_contacts()
            case native.ContactAddRequested(jid):
                await self._contact_add(jid)
            case native.ContactRemoveRequested(jid):
                await self._contact_remove(jid)
            case native.Closed():
                self.flush()
                self.close_after_flush()
            case native.Failed(error):
                self.log.info("protocol error: %s", error)
                self.server.metrics.error(self.protocol, error)
                self.flush()
                self.close_after_flush()
        return []

    async def _login(self, event: native.LoginRequested) -> list[native.Event]:
        config = self.server.config
        if not self.tls and not config.native.allow_plaintext_login:
            return self.core.login_failed(StanzaCondition.NOT_ALLOWED, "log in over TLS")
        try:
            user = JID.user(event.user, config.domain)
        except InvalidJID:
            user = None
        storage = self.server.storage
        if (
            user is None
            or user.domain not in config.hosts
            or not await storage.check_password(user, event.password)
        ):
            return self._login_failed(event.user)
        resource = event.resource or f"native-{new_id()[:8]}"
        self._jid = user.with_resource(resource)
        self._bare = str(user)
        released = self.core.logged_in(str(self._jid))
        self.flush()
        self.log.info("logged in as %s", self._jid)
        self.server.metrics.login(self.protocol, True)
        messages = self.server.messages
        messages.hold(self)  # no live message overtakes a stored one
        try:
            await self.server.session_started(self)
            await self.server.presence.broadcast_available(self)
        finally:
            await messages.deliver_offline(self)
        return released

    def _login_failed(self, user: str) -> list[native.Event]:
        self._failed_logins += 1
        self.log.info("login failed for %r (%d)", user, self._failed_logins)
        self.server.metrics.login(self.protocol, False)
        released = self.core.login_failed(StanzaCondition.NOT_AUTHORIZED, "wrong user name or password")
        if self._failed_logins >= self.server.config.limits.max_login_attempts:
            self.close(StreamError(StreamCondition.POLICY_VIOLATION, "too many failed logins"))
            return []
        return released

    async def _message(self, event: native.MessageReceived) -> None:
        try:
            stanza = self._to_xmpp(event)
            stamp = datetime.now(UTC)
            await self.server.messages.route(stanza, stamp)
        except StanzaError as e:
            self.server.metrics.error(self.protocol, e)
            self.core.send_error(e, event.id)
            return
        self.core.send_ack(stanza.get("id", ""), stamp)

    def _to_xmpp(self, event: native.MessageReceived) -> etree._Element:
        """Native <message> to XMPP <message type='chat'> (the server stamps from)."""
        domain = self.server.config.domain
        if event.sender is not None:
            try:
                claimed = JID.user(event.sender, domain)
            except InvalidJID:
                claimed = None
            if claimed is None or claimed.bare != self.jid.bare:
                raise StanzaError(StanzaCondition.FORBIDDEN, "<from> must be your own address")
        try:
            to = JID.user(event.to, domain)
        except InvalidJID:
            raise StanzaError(StanzaCondition.JID_MALFORMED, f"bad address {event.to!r}") from None
        # Copying a template is about twice as fast as building the element.
        stanza = copy(_CHAT_MESSAGE)  # lxml copies are deep
        stanza.set("id", event.id or new_id())
        stanza.set("from", str(self.jid))
        stanza.set("to", str(to))
        stanza[0].text = event.body
        return stanza

    # ---- contacts: the roster, with mutual subscriptions (see the spec)

    async def _send_contacts(self) -> None:
        items, _ = await self.server.storage.get_roster(self.jid.bare)
        router = self.server.router
        self.core.send_contacts(
            (str(item.jid), item.subscription in _SEES_CONTACT and router.is_online(item.jid))
            for item in items
        )

    async def _contact_add(self, address: str) -> None:
        storage = self.server.storage
        try:
            contact = JID.user(address, self.server.config.domain)
        except InvalidJID:
            self.core.send_error(StanzaError(StanzaCondition.JID_MALFORMED, f"bad address {address!r}"))
            return
        if contact == self.jid.bare or not await storage.user_exists(contact):
            self.core.send_error(StanzaError(StanzaCondition.ITEM_NOT_FOUND, f"no user {contact}"))
            return
        await self.server.roster.make_mutual(self.jid.bare, contact)
        await self._send_contacts()

    async def _contact_remove(self, address: str) -> None:
        try:
            contact = JID.user(address, self.server.config.domain)
        except InvalidJID:
            self.core.send_error(StanzaError(StanzaCondition.JID_MALFORMED, f"bad address {address!r}"))
            return
        await self.server.roster.remove_mutual(self.jid.bare, contact)
        await self._send_contacts()

    # ---- end

    async def finish(self) -> None:
        if self._jid is not None:
            await self.server.session_ended(self)
