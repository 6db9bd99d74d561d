"""An XMPP client connection: the asyncio side of :mod:`xmlchat.protocol.xmpp`.

Performs what the sans-IO core asks and, once bound, is the transport of a
:class:`~xmlchat.routing.session.Session` whose stanzas go to the hub
(:meth:`xmlchat.routing.hub.Hub.receive`). A :class:`~xmlchat.errors.StanzaError`
the hub raises becomes an error stanza here (RFC 6120 §8.3), the one place XMPP
maps stanza errors to the wire.

The class is built in three layers, each a file:

* ``xmpp_login.py``: negotiation up to the bound session (STARTTLS, SASL, bind);
* ``xmpp_sm.py``: XEP-0198 stream management (acknowledgements, the in-order
  worker, resumption);
* here: the bound session, both ways, and the end of the stream.
"""

from __future__ import annotations

from copy import deepcopy
from datetime import datetime
from functools import partial

from lxml import etree

from xmlchat.errors import StanzaError, StreamCondition
from xmlchat.protocol import xmpp
from xmlchat.server.xmpp_sm import XmppStreamManagement
from xmlchat.stanza import DELAY_NS, kind, make, new_id

PING_NS = "urn:xmpp:ping"


class XmppConnection(XmppStreamManagement):
    __slots__ = ()

    # ---- SessionTransport

    def write(self, stanza: etree._Element, stamp: datetime, delayed: bool = False) -> None:
        if self.observed:  # else not even a call: this runs for every stanza delivered
            self.metrics.stanza_out(self.protocol, kind(stanza))
            self.log_stanza("out", stanza)
        if delayed and self.session is not None:
            # XEP-0203: say when the server first accepted it.
            stanza = deepcopy(stanza)
            etree.SubElement(
                stanza,
                f"{{{DELAY_NS}}}delay",
                nsmap={None: DELAY_NS},
                stamp=stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                attrib={"from": self.session.jid.domain},
            )
        self._send(stanza)

    def reply_error(self, stanza: etree._Element, error: StanzaError) -> None:
        self.metrics.error(self.protocol, error)
        self.core.stanza_error_reply(stanza, error)
        self.flush()

    def send_keepalive(self) -> None:
        if self.session is not None:
            # XEP-0199 §4.1: server-to-client ping; any answer (even an error) is life.
            jid = self.session.jid
            iq = make("iq", {"type": "get", "id": f"ping-{new_id()}", "to": str(jid)})
            iq.set("from", jid.domain)
            etree.SubElement(iq, f"{{{PING_NS}}}ping", nsmap={None: PING_NS})
            self.core.send_stanza(iq)
        else:
            self.transport.keepalive()
        self.flush()

    # ---- input

    async def handle(self, event: xmpp.Event) -> list[xmpp.Event]:
        match event:
            case xmpp.StreamManagementEnabled(resume_id):
                self._enabled(resume_id)
            case xmpp.Acknowledged(_):
                self._acknowledged()
            case xmpp.StanzaIn() | xmpp.ClientStateChanged() if self._inbox is not None:
                self._inbox.put_nowait(event)  # to the in-order worker (xmpp_sm.py)
            case _:
                return await self._perform(event)
        return []

    async def _perform(self, event: xmpp.Event) -> list[xmpp.Event]:
        match event:
            case xmpp.StanzaIn(element, to):
                if self.observed:
                    self.metrics.stanza_in(self.protocol, kind(element))
                    self.log_stanza("in", element)
                assert self.session is not None
                try:
                    await self.ctx.hub.receive(self.session, element, to)
                except StanzaError as e:  # answered after the messages before it
                    self.pipeline.answer(None, partial(self.reply_error, element), e)
                else:
                    self.pipeline.answer(None, partial(self.reply_error, element))
            case xmpp.ClientStateChanged(active):
                assert self.session is not None
                await self.ctx.hub.client_state(self.session, active)
            case xmpp.ResumeRequested(previd, h):
                return self._resume(previd, h)
            case xmpp.Closed(peer_error):
                self._ended_on_purpose = True
                self.log.info("stream closed by peer%s", f" ({peer_error})" if peer_error else "")
                self.flush()
                self.close_after_flush()
            case xmpp.StreamFailed(error):
                self._ended_on_purpose = True
                if error.condition is StreamCondition.POLICY_VIOLATION and self._auth_failures:
                    self.metrics.limit_hit("login_attempts")  # the core's limit on SASL failures
                self.metrics.error(self.protocol, error)
                self.log.info("stream error: %s", error)
                self.flush()
                self.close_after_flush()
            case _:
                return await self._negotiate(event)  # xmpp_login.py
        return []

    # ---- end

    async def finish(self) -> None:
        await self._stop_worker()
        if self.session is None or self._taken_over or self._detach():
            return
        await self.ctx.hub.close_session(self.session)
