"""Resource binding (RFC 6120 §7) and the legacy session (RFC 3921 §3): :class:`Binding`.

Both are iqs addressed to the server. They are negotiation while the stream
is UNBOUND, and are still answered once BOUND (a second bind is refused, a
session is a no-op), so both stages use this one object.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID, InvalidJID
from xmlchat.protocol.xmpp.events import BindRequest, Event, LocalProtocolError
from xmlchat.protocol.xmpp.link import Link
from xmlchat.protocol.xmpp.state import State, _Input
from xmlchat.protocol.xmpp.wire import bind_result, iq_result
from xmlchat.xml.writer import NS_BIND, NS_SESSION, error_reply

BIND: Final = f"{{{NS_BIND}}}bind"
SESSION: Final = f"{{{NS_SESSION}}}session"


class Binding:
    """Bind and session requests of one connection, and the server's answers to them."""

    def __init__(self, link: Link) -> None:
        self._link = link

    def features(self) -> list[etree._Element]:
        """What an authenticated, unbound stream offers (§7.2)."""
        bind = etree.Element(BIND, nsmap={None: NS_BIND})
        session = etree.Element(SESSION, nsmap={None: NS_SESSION})
        # draft-cridland-xmpp-session: advertised as optional; xmpppy still sends it.
        etree.SubElement(session, f"{{{NS_SESSION}}}optional")
        return [bind, session]

    def addressed_to_server(self, iq: etree._Element) -> bool:
        """No 'to', or 'to' names the host the client opened the stream to."""
        to = iq.get("to")
        if to is None:
            return True
        try:
            return JID.parse(to) == JID(None, self._link.host or "")
        except InvalidJID:
            return False

    def on_bind(self, iq: etree._Element, bind: etree._Element) -> list[Event]:
        """A bind request: ask the server for the resource (§7.5–7.7)."""
        link = self._link
        if iq.get("type") != "set" or iq.get("id") is None:
            return link.reply(iq, StanzaError(StanzaCondition.BAD_REQUEST, "bind needs an iq set with an id"))
        if link.state is State.BOUND:
            # RFC 6120 §7.1: one resource per stream.
            return link.reply(iq, StanzaError(StanzaCondition.NOT_ALLOWED, "a resource is already bound"))
        user = link.user
        assert user is not None
        resource: str | None = None
        for child in bind:
            if child.tag == f"{{{NS_BIND}}}resource" and child.text:
                try:
                    resource = user.with_resource(child.text).resource
                except InvalidJID:
                    # §7.7.2.1: a resourcepart that cannot be processed.
                    return link.reply(iq, StanzaError(StanzaCondition.BAD_REQUEST, "invalid resource"))
        link.outstanding.bind_iq = iq
        link.transition(_Input.BIND_REQUESTED)
        return [BindRequest(iq.get("id", ""), resource)]

    def on_session(self, iq: etree._Element) -> list[Event]:
        # RFC 3921 §3 session establishment is a no-op today (draft-cridland-xmpp-session).
        link = self._link
        if iq.get("type") != "set" or iq.get("id") is None:
            return link.reply(iq, StanzaError(StanzaCondition.BAD_REQUEST))
        link.queue_stanza(iq_result(iq.get("id", ""), link.jid))
        return []

    # -- the server's answers -----------------------------------------------------------

    def bound(self, full_jid: JID) -> None:
        link = self._link
        bind_iq = self._pending("bound")
        if full_jid.resource is None or full_jid.bare != link.user:
            raise LocalProtocolError(f"bound() with {full_jid}, not a full JID of {link.user}")
        link.queue_stanza(bind_result(bind_iq.get("id"), full_jid))
        link.jid = full_jid
        link.outstanding.bind_iq = None
        link.transition(_Input.BIND_SUCCEEDED)

    def bind_failed(self, error: StanzaError) -> None:
        link = self._link
        bind_iq = self._pending("bind_failed")
        link.queue_stanza(error_reply(bind_iq, error, link.settings.lang))
        link.outstanding.bind_iq = None
        link.transition(_Input.BIND_FAILED)

    def _pending(self, method: str) -> etree._Element:
        link = self._link
        if link.state is not State.BINDING or link.outstanding.bind_iq is None:
            raise LocalProtocolError(f"{method}() in state {link.state.name}")
        return link.outstanding.bind_iq
