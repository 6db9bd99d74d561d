"""A native-protocol connection: the asyncio side of :mod:`xmlchat.protocol.native`.

The front end translates at its edge, both ways, between native stanzas and
the XMPP form the hub carries (``docs/native-protocol.md`` § "Mapping to
XMPP"): a login is a bound session plus initial presence, a ``<message>`` a
``<message type='chat'>``, a contact request an internal iq of the contacts
module (history: of the archive module). Once logged in it is the transport of a
:class:`~xmlchat.routing.session.Session`.
"""

from __future__ import annotations

import contextlib
import weakref
from datetime import UTC, datetime
from functools import partial

from lxml import etree

from xmlchat.errors import LoginRefused, StanzaCondition, StanzaError, StreamCondition, StreamError
from xmlchat.jid import JID, InvalidJID, bare_str
from xmlchat.metrics import native_kind
from xmlchat.modules import blocking
from xmlchat.modules.roster import contacts
from xmlchat.protocol import native
from xmlchat.routing.session import NATIVE_CLIENT, Session
from xmlchat.server.connection import Connection
from xmlchat.server.native_history import history_page
from xmlchat.server.native_messages import Recipients
from xmlchat.server.native_receipts import Receipts, resume_resource, resume_token
from xmlchat.server.native_rooms import NativeRooms
from xmlchat.stanza import BODY, assigned_id, body_text, kind, make, new_id
from xmlchat.xml.stream import StreamLimits

# What a native <message> becomes inside the server (docs/native-protocol.md, "Mapping to XMPP").
_CHAT_MESSAGE = make("message", {"type": "chat"})
etree.SubElement(_CHAT_MESSAGE, BODY)
_WRONG = "wrong user name or password"


class NativeConnection(Connection[native.Event]):
    __slots__ = ("_answering_blocklist", "_bare", "_blocklist", "_blocklist_shown", "_failed_logins",
                 "_full", "_jid", "_receipts", "_recipients", "_rooms", "_visible")
    protocol = "native"
    core: native.NativeServerStream

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        limits = self.config.limits
        self.core = native.NativeServerStream(
            self.config.domain,
            StreamLimits(limits.max_stanza_bytes, limits.max_depth),
            limits.max_unauthenticated_stanza_bytes,
            standalone=self.transport.messages,
        )
        self.session: Session | None = None
        self._jid: JID | None = None
        self._bare = ""  # str(jid.bare), written on every message delivered
        self._full = ""  # str(jid), stamped on every message sent
        self._failed_logins = 0
        # The blocklist as this client was last shown it (pushes update it), and
        # whether it gets pushes: after any blocking request (the spec).
        self._blocklist: list[str] = []
        self._blocklist_shown = False
        self._answering_blocklist = False
        # Resources of each contact whose available presence reached us.
        self._visible: dict[JID, set[str]] = {}
        # Set at login when the client acknowledges messages (<receipts/>).
        self._receipts: Receipts | None = None
        self._recipients = Recipients(self.config.domain)
        service = f"{self.config.muc.subdomain}.{self.config.domain}"
        session = partial(getattr, weakref.proxy(self), "session")  # weakly: no cycle to collect
        self._rooms = NativeRooms(self.core, self.ctx.hub, service, session, self.config.muc.enabled)

    # ---- SessionTransport

    @property
    def jid(self) -> JID:
        assert self._jid is not None
        return self._jid

    @property
    def authenticated(self) -> bool:
        return self._jid is not None

    @property
    def account(self) -> JID | None:
        return self._jid.bare if self._jid is not None else None

    def write(self, stanza: etree._Element, stamp: datetime, delayed: bool = False) -> None:
        name = kind(stanza)
        self.metrics.stanza_out(self.protocol, name)
        self.log_stanza("out", stanza)
        self._write(name, stanza, stamp)
        self.flush()

    def _write(self, name: str, stanza: etree._Element, stamp: datetime) -> None:
        match name:
            case "message":
                if not self._rooms.write_message(stanza, stamp):  # a groupchat message
                    self._write_message(stanza.get("type"), stanza, stamp)
            case "presence":
                if not self._rooms.write_presence(stanza):
                    self._write_presence(stanza)
            case "iq":
                self._write_blocklist_push(stanza)
            # Other iqs have no native form: the hub answers those to sessions without full XMPP.

    def _write_message(self, type_: str | None, stanza: etree._Element, stamp: datetime) -> None:
        body = body_text(stanza)
        if body is None or type_ == "error":
            return  # chat states, receipts and errors have no native form
        sender = stanza.get("from", "")
        if not (self._rooms.nicks and self._rooms.is_occupant(sender)):  # keeps its nick (XEP-0045 §7.5)
            with contextlib.suppress(InvalidJID):
                sender = bare_str(sender)
        seq = self._receipts.next_seq() if self._receipts is not None else None
        self.core.send_message(stanza.get("id") or assigned_id(), sender, self._bare, stamp, body, seq)

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

    @property
    def acknowledges(self) -> bool:
        return self._receipts is not None

    async def drained(self) -> bool:
        """For a receipts session: also wait until the client confirmed every
        message written so far, so stored messages leave the store only once
        the client has them (the messages module bounds the wait with
        ``limits.stuck_timeout``); False when the connection is gone first."""
        receipts = self._receipts
        if receipts is None:
            return await super().drained()
        written = receipts.sent  # later messages are the next call's business
        if receipts.confirmed >= written:
            return True  # the client has them all, even if the connection is gone since
        return await super().drained() and await receipts.until_confirmed(written)

    def send_keepalive(self) -> None:
        self.core.send_ping()
        self.flush()

    # ---- input

    async def handle(self, event: native.Event) -> list[native.Event]:
        """Perform one event; return the events its answer released."""
        self.metrics.stanza_in(self.protocol, native_kind(event))
        self.log_stanza("in", event)
        match event:
            case native.MessageReceived():
                await self._message(event)
            case native.ReceiptReceived(seq):
                if self._receipts is not None:  # the core only reports it for such a session
                    self._receipts.received(seq)
            case native.PingReceived(id_):
                self.core.send_pong(id_)
            case native.LoginRequested():
                return await self._login(event)
            case native.ContactsRequested():
                await self._contacts("get", contacts.request(contacts.LIST))
            case native.ContactAddRequested(jid):
                await self._contacts("set", contacts.request(contacts.ADD, jid))
            case native.ContactRemoveRequested(jid):
                await self._contacts("set", contacts.request(contacts.REMOVE, jid))
            case native.BlocklistRequested(id_):
                await self._blocking(None, (), id_)
            case native.BlockRequested(jids, id_):
                await self._blocking(blocking.BLOCK, jids, id_)
            case native.UnblockRequested(jids, id_):
                await self._blocking(blocking.UNBLOCK, jids, id_)
            case native.HistoryRequested():
                await self._history(event)
            case (
                native.JoinRequested()
                | native.LeaveRequested()
                | native.WhoRequested()
                | native.RoomMessageReceived()
            ):
                try:
                    await self._rooms.handle(event)  # native_rooms.py
                except StanzaError as e:
                    self._refused(e, event.id)
            case native.Closed():
                self.flush()
                self.close_after_flush()
            case native.Failed(error):
                self.log.info("protocol error: %s", error)
                self.metrics.error(self.protocol, error)
                self.flush()
                self.close_after_flush()
        return []

    async def _login(self, event: native.LoginRequested) -> list[native.Event]:
        config = self.config
        if not self.tls and not config.native.allow_plaintext_login:
            return self.core.login_failed(StanzaCondition.NOT_ALLOWED, "log in over TLS")
        try:
            user = JID.user(event.user, config.domain)
        except InvalidJID:
            user = None
        account = str(user) if user is not None else event.user
        guard = self.ctx.login_guard
        try:
            if guard is not None:
                guard.check(self.ip, account)
        except LoginRefused as e:
            self.metrics.limit_hit("login_backoff")
            return self._login_failed(event.user, StanzaCondition.POLICY_VIOLATION, e.text)
        if (
            user is None
            or user.domain not in config.hosts
            or not await self.ctx.accounts.check_password(user, event.password)
        ):
            self.guard_failed(account)
            return self._login_failed(event.user)
        if guard is not None:
            guard.succeeded(self.ip, account)
        resumed = resume_resource(self.ctx.scram_secret, user, event.resume) if event.receipts else None
        resource = resumed or event.resource or f"native-{new_id()[:8]}"
        self._jid = user.with_resource(resource)
        self._bare = str(user)
        self._full = str(self._jid)
        token = resume_token(self.ctx.scram_secret, self._jid) if event.receipts else None
        released = self.core.logged_in(str(self._jid), token)
        if event.receipts:
            self._receipts = Receipts()
        self.flush()
        self.log.info("logged in as %s", self._jid)
        self.metrics.login(self.protocol, True)
        self.login_done()
        self.session = Session(self._jid, NATIVE_CLIENT, self)
        await self.ctx.hub.open_session(self.session)
        # A native login is initial presence (RFC 6121 §4.2) with no show or
        # status: stored messages and subscription requests follow it (the
        # replay runs beside this reading loop, which must read <received>).
        await self.ctx.hub.receive(self.session, make("presence", {"from": str(self._jid)}), None)
        return released

    def _login_failed(
        self, user: str, condition: StanzaCondition = StanzaCondition.NOT_AUTHORIZED, text: str = _WRONG
    ) -> list[native.Event]:
        self._failed_logins += 1
        self.log.info("login failed for %r (%d): %s", user, self._failed_logins, text)
        self.metrics.login(self.protocol, False)
        released = self.core.login_failed(condition, text)
        if self._failed_logins >= self.config.limits.max_login_attempts:
            self.metrics.limit_hit("login_attempts")
            self.close(StreamError(StreamCondition.POLICY_VIOLATION, "too many failed logins"))
            return []
        return released

    async def _message(self, event: native.MessageReceived) -> None:
        assert self.session is not None
        stamp, refuse = datetime.now(UTC), partial(self._refused, ref=event.id)
        try:
            stanza, to = self._to_xmpp(event)
            await self.ctx.hub.receive(self.session, stanza, to, stamp)
        except StanzaError as e:  # answered after the messages before it, too
            return self.pipeline.answer(None, refuse, e)
        self.pipeline.answer(partial(self.core.send_ack, stanza.get("id", ""), stamp), refuse)

    def _to_xmpp(self, event: native.MessageReceived) -> tuple[etree._Element, JID]:
        """Native <message> to XMPP <message type='chat'> (the server stamps from)."""
        domain = self.config.domain
        if event.sender is not None:
            try:
                claimed = JID.user(event.sender, domain)
            except InvalidJID:
                claimed = None
            if claimed is None or claimed.bare != self.jid.bare:
                raise StanzaError(StanzaCondition.FORBIDDEN, "<from> must be your own address")
        to, to_text = self._recipients.parse(event.to)
        # A template's deep copy (__copy__: the stubs omit it) is twice as fast as building it.
        stanza: etree._Element = _CHAT_MESSAGE.__copy__()  # type: ignore[attr-defined]
        stanza.set("id", event.id or assigned_id())
        stanza.set("from", self._full)
        stanza.set("to", to_text)
        stanza[0].text = event.body
        return stanza, to

    # ---- contacts, blocking and history: iqs of the contacts, blocking and archive modules

    async def _call(self, type_: str, payload: etree._Element) -> etree._Element | None:
        assert self.session is not None
        iq = make("iq", {"type": type_, "from": str(self.session.jid)})
        iq.append(payload)
        return await self.ctx.hub.call_iq(self.session, iq)

    def _refused(self, error: StanzaError, ref: str | None = None) -> None:
        self.metrics.error(self.protocol, error)
        self.core.send_error(error, ref)

    async def _contacts(self, type_: str, payload: etree._Element) -> None:
        try:
            result = await self._call(type_, payload)
        except StanzaError as e:
            self._refused(e)
            return
        assert result is not None
        self.core.send_contacts(
            (item.get("jid", ""), item.get("online") == "true") for item in result.iter(contacts.CONTACT)
        )

    async def _blocking(self, tag: str | None, jids: tuple[str, ...], ref: str | None) -> None:
        """A change (``tag``: block or unblock, XEP-0191) then the whole list,
        as the answer to request ``ref``; pushes our own change makes are not
        shown, the answer is."""
        self._answering_blocklist = True
        try:
            if tag == blocking.UNBLOCK:
                self._blocklist = await self._blocklist_now()  # to know the entries' forms
            if tag is not None:
                change = etree.Element(tag, nsmap={None: blocking.NS})
                for jid in self._blocking_items(jids):
                    etree.SubElement(change, blocking.ITEM, jid=jid)
                await self._call("set", change)
            self._blocklist = await self._blocklist_now()
        except StanzaError as e:
            self._refused(e, ref)
            return
        finally:
            self._answering_blocklist = False
        self._blocklist_shown = True
        self.core.send_blocklist(self._blocklist, ref)

    async def _blocklist_now(self) -> list[str]:
        result = await self._call("get", etree.Element(blocking.BLOCKLIST, nsmap={None: blocking.NS}))
        assert result is not None
        return [item.get("jid", "") for item in result.iter(blocking.ITEM)]

    def _blocking_items(self, jids: tuple[str, ...]) -> list[str]:
        """Native addresses (``bob``: the server's domain), or an entry exactly
        as the list showed it; one malformed address fails the request."""
        items = []
        for text in dict.fromkeys(jids):
            if text in self._blocklist:
                items.append(text)
                continue
            try:
                items.append(str(JID.user(text, self.config.domain)))
            except InvalidJID:
                raise StanzaError(StanzaCondition.JID_MALFORMED, f"bad address {text!r}") from None
        return items

    def _write_blocklist_push(self, iq: etree._Element) -> None:
        """A XEP-0191 push from a change made elsewhere: the new whole list."""
        change = next(iter(iq), None)
        if change is None or change.tag not in (blocking.BLOCK, blocking.UNBLOCK):
            return
        if self._answering_blocklist or not self._blocklist_shown:
            return
        jids = [item.get("jid", "") for item in change.iter(blocking.ITEM)]
        if change.tag == blocking.BLOCK:
            self._blocklist = sorted({*self._blocklist, *jids})
        else:
            self._blocklist = [j for j in self._blocklist if jids and j not in jids]
        self.core.send_blocklist(self._blocklist)

    # ---- history: the archive module's internal iq

    async def _history(self, event: native.HistoryRequested) -> None:
        try:
            if not self.config.archive.enabled:
                raise StanzaError(StanzaCondition.FEATURE_NOT_IMPLEMENTED, "this server keeps no archive")
            budget = self.config.limits.max_stanza_bytes
            messages, complete = await history_page(self._call, event, self.config.domain, budget)
        except StanzaError as e:
            self._refused(e, event.id)
            return
        self.core.send_history(messages, complete, event.id)

    # ---- end

    async def finish(self) -> None:
        if self._receipts is not None:
            self._receipts.gone()  # a replay waiting for <received> stops now
        if self.session is not None:
            await self.ctx.hub.close_session(self.session)
