"""A native-protocol connection: the asyncio side of :mod:`xmlchat.protocol.native`.

The front end translates at its edge, both ways, between native stanzas and
the XMPP form the hub carries (``docs/native-protocol.md`` § "Mapping to
XMPP"): a login is a bound session plus initial presence, a ``<message>`` a
``<message type='chat'>``, a contact request an internal iq of the contacts
module (history: of the archive module). Once logged in it is the transport of a
:class:`~xmlchat.routing.session.Session`.

The parts, each a file: ``native_login.py`` (the core, ``<login>``); here the
logged-in session, both ways; beside it, what the session's requests become:
``native_rooms.py`` (rooms), ``native_blocking.py`` (the blocklist),
``native_history.py`` (the archive), ``native_receipts.py`` (``<received>``),
``native_messages.py`` (a message's recipients).
"""

from __future__ import annotations

import contextlib
import weakref
from datetime import UTC, datetime
from functools import partial

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID, InvalidJID, bare_str
from xmlchat.metrics import native_kind
from xmlchat.modules import blocking
from xmlchat.modules.roster import contacts
from xmlchat.protocol import native
from xmlchat.server.native_blocking import NativeBlocklist
from xmlchat.server.native_history import history_page
from xmlchat.server.native_login import NativeLogin
from xmlchat.server.native_messages import Recipients
from xmlchat.server.native_rooms import NativeRooms
from xmlchat.stanza import BODY, assigned_id, body_text, kind, make

# What a native <message> becomes inside the server (docs/native-protocol.md, "Mapping to XMPP").
_CHAT_MESSAGE = make("message", {"type": "chat"})
etree.SubElement(_CHAT_MESSAGE, BODY)


class NativeConnection(NativeLogin):
    __slots__ = ("_blocklist", "_recipients", "_rooms", "_visible")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # Made at the first blocking request: only then does the client get pushes.
        self._blocklist: NativeBlocklist | None = None
        # Resources of each contact whose available presence reached us.
        self._visible: dict[JID, set[str]] = {}
        self._recipients = Recipients(self.config.domain)
        service = f"{self.config.muc.subdomain}.{self.config.domain}"
        session = partial(getattr, weakref.proxy(self), "session")  # weakly: no cycle to collect
        self._rooms = NativeRooms(self.core, self.ctx.hub, service, session, self.config.muc.enabled)

    # ---- SessionTransport

    def write(self, stanza: etree._Element, stamp: datetime, delayed: bool = False) -> None:
        name = kind(stanza)
        if self.observed:  # else not even a call: this runs for every stanza delivered
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
            case "iq":  # a XEP-0191 push: the new whole list
                if self._blocklist is not None and (entries := self._blocklist.pushed(stanza)) is not None:
                    self.core.send_blocklist(entries)
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
        if self.observed:
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
        """A change (``tag``: block or unblock), then the whole list, as the
        answer to request ``ref`` (native_blocking.py)."""
        if self._blocklist is None:
            self._blocklist = NativeBlocklist()
        try:
            entries = await self._blocklist.request(self._call, self.config.domain, tag, jids)
        except StanzaError as e:
            self._refused(e, ref)
            return
        self.core.send_blocklist(entries, ref)

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
