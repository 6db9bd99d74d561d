"""Where a stanza from a bound XMPP client goes (RFC 6120 §10, RFC 6121 §8).

Messages go to :mod:`xmlchat.modules.messages`, presence to
:mod:`xmlchat.modules.presence`; an iq is answered by the handler a module
registered for its payload, or routed to the full JID it names. Unhandled
get/set iqs get ``service-unavailable``; results and errors are never
answered (that would loop).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID
from xmlchat.server.session import XmppSession
from xmlchat.stanza import kind, make

if TYPE_CHECKING:
    from xmlchat.server.app import Server

log = logging.getLogger(__name__)


class Dispatch:
    def __init__(self, server: Server) -> None:
        self.server = server

    async def stanza(self, session: XmppSession, element: etree._Element, to: JID | None) -> None:
        try:
            match kind(element):
                case "message":
                    await self._message(session, element, to)
                case "presence":
                    await self.server.presence.handle(session, element, to)
                case _:
                    await self._iq(session, element, to)
        except StanzaError as e:
            session.reply_error(element, e)

    async def _message(self, session: XmppSession, message: etree._Element, to: JID | None) -> None:
        if to is None:
            # RFC 6120 §10.3.1: no 'to' means the sender's own bare JID.
            message.set("to", str(session.jid.bare))
        await self.server.messages.route(message)

    async def _iq(self, session: XmppSession, iq: etree._Element, to: JID | None) -> None:
        type_ = iq.get("type")
        if to is not None and to.resource is not None and to != session.jid:
            self._to_full_jid(iq, to)
            return
        if type_ in ("result", "error"):
            return  # answers to our pings; never answered (RFC 6120 §8.3.1)
        payload = next(iter(iq), None)
        if payload is None:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "an iq get/set needs one payload")
        handler = self.server.registry.iq_handlers.get((type_ or "", str(payload.tag)))
        if handler is None:
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        if to is not None and to.domain not in self.server.config.hosts:
            raise StanzaError(StanzaCondition.REMOTE_SERVER_NOT_FOUND)
        if to is not None and to.local is not None and to.bare != session.jid.bare:
            # RFC 6121 §8.5.2.1.3: another account's bare JID is answered on its
            # behalf only where a module can (disco); §8.5.1: and if it exists.
            key = (type_ or "", str(payload.tag))
            if key not in self.server.registry.account_iqs or not await self.server.storage.user_exists(to):
                raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        result = await handler(session, iq)
        reply = make("iq", {"type": "result", "to": str(session.jid)})
        if iq.get("id") is not None:
            reply.set("id", iq.get("id", ""))
        if to is not None:
            # Answer from where it was sent; a request with no 'to' was handled
            # on behalf of the account and is answered without 'from' (RFC 6120 §8.1.2.1).
            reply.set("from", str(to))
        if result is not None:
            reply.append(result)
        session.deliver(reply, datetime.now(UTC))

    def _to_full_jid(self, iq: etree._Element, to: JID) -> None:
        """RFC 6120 §10.5.3: an iq to a connected resource goes there; else
        service-unavailable. Native sessions cannot answer iqs."""
        target = self.server.router.get(to)
        if target is None or target.protocol != "xmpp":
            if iq.get("type") in ("get", "set"):
                raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
            return
        target.deliver(iq, datetime.now(UTC))
