"""An XMPP client connection: the asyncio side of :mod:`xmlchat.protocol.xmpp`.

Performs what the sans-IO core asks (STARTTLS, credential look-ups, binding)
and, once bound, is a :class:`~xmlchat.server.session.Session` whose stanzas
go to :mod:`xmlchat.server.dispatch`.
"""

from __future__ import annotations

from copy import deepcopy
from datetime import datetime
from typing import Any

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID, InvalidJID
from xmlchat.protocol import xmpp
from xmlchat.server.connection import Connection
from xmlchat.stanza import DELAY_NS, kind, make, new_id

PING_NS = "urn:xmpp:ping"


class XmppConnection(Connection[xmpp.Event]):
    protocol = "xmpp"
    core: xmpp.C2SStream

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        server = self.server
        self.core = xmpp.C2SStream.from_config(
            server.config,
            tls_available=server.tls_context is not None,
            tls_active=self.tls,
            channel_binding=server.channel_binding if self.tls else None,
            scram_secret=server.scram_secret,
            features=server.xmpp_features(),
        )
        self._bound = False
        # Presence state (RFC 6121 §4): set by the presence module.
        self.available_presence: etree._Element | None = None
        self.presence_priority = 0
        self.roster_requested = False

    # ---- Session

    @property
    def jid(self) -> JID:
        jid = self.core.jid
        assert jid is not None
        return jid

    @property
    def available(self) -> bool:
        return self.available_presence is not None

    @property
    def priority(self) -> int:
        return self.presence_priority

    @property
    def interested(self) -> bool:
        return self.roster_requested

    @property
    def last_presence(self) -> etree._Element | None:
        return self.available_presence

    @property
    def authenticated(self) -> bool:
        return self.core.user is not None

    def deliver(self, stanza: etree._Element, stamp: datetime, delayed: bool = False) -> None:
        self.server.metrics.stanza_out(self.protocol, kind(stanza))
        self.log_stanza("out", stanza)
        if delayed:
            # XEP-0203: say when the server first accepted it.
            stanza = deepcopy(stanza)
            etree.SubElement(
                stanza,
                f"{{{DELAY_NS}}}delay",
                nsmap={None: DELAY_NS},
                stamp=stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                attrib={"from": self.jid.domain},
            )
        self.core.send_stanza(stanza)
        self.flush()

    def reply_error(self, stanza: etree._Element, error: StanzaError) -> None:
        self.server.metrics.error(self.protocol, error)
        self.core.stanza_error_reply(stanza, error)
        self.flush()

    def send_keepalive(self) -> None:
        if self._bound:
            # XEP-0199 §4.1: server-to-client ping; any answer (even an error) is life.
            iq = make("iq", {"type": "get", "id": f"ping-{new_id()}", "to": str(self.jid)})
            iq.set("from", self.jid.domain)
            etree.SubElement(iq, f"{{{PING_NS}}}ping", nsmap={None: PING_NS})
            self.core.send_stanza(iq)
        else:
            self.send(b" ")  # RFC 6120 §4.6.1 whitespace keepalive
        self.flush()

    # ---- input

    async def handle(self, event: xmpp.Event) -> list[xmpp.Event]:
        storage = self.server.storage
        match event:
            case xmpp.StanzaIn(element, to):
                self.server.metrics.stanza_in(self.protocol, kind(element))
                self.log_stanza("in", element)
                await self.server.dispatch.stanza(self, element, to)
            case xmpp.NeedCredentials(username, mechanism, host):
                creds = await storage.get_scram(JID(username, host), mechanism)
                return self.core.provide_credentials(creds)
            case xmpp.NeedPasswordCheck(username, password, host):
                ok = await storage.check_password(JID(username, host), password)
                return self.core.password_checked(ok)
            case xmpp.AuthFailed(jid, condition):
                self.log.info("authentication failed for %s: %s", jid or "?", condition)
                self.server.metrics.login(self.protocol, False)
            case xmpp.Authenticated(jid):
                self.server.metrics.login(self.protocol, True)
                self.log.info("authenticated as %s", jid)
            case xmpp.BindRequest(_, resource):
                return await self._bind(resource)
            case xmpp.StartTls():
                return await self._start_tls()
            case xmpp.Closed(peer_error):
                self.log.info("stream closed by peer%s", f" ({peer_error})" if peer_error else "")
                self.flush()
                self.close_after_flush()
            case xmpp.StreamFailed(error):
                self.server.metrics.error(self.protocol, error)
                self.log.info("stream error: %s", error)
                self.flush()
                self.close_after_flush()
        return []

    async def _start_tls(self) -> list[xmpp.Event]:
        context = self.server.tls_context
        assert context is not None
        self.flush()
        self.flush_now()
        await self.writer.drain()
        await self.writer.start_tls(context)
        self.tls = True
        self.log.info("TLS established (%s)", self.writer.get_extra_info("ssl_object").version())
        return self.core.tls_started(self.server.channel_binding)

    async def _bind(self, resource: str | None) -> list[xmpp.Event]:
        user = self.core.user
        assert user is not None
        try:
            full = user.with_resource(resource or new_id())
        except InvalidJID:
            return self.core.bind_failed(StanzaError(StanzaCondition.BAD_REQUEST, "invalid resource"))
        events = self.core.bound(full)
        self._bound = True
        self.log.info("bound %s", full)
        await self.server.session_started(self)
        return events

    async def finish(self) -> None:
        if self._bound:
            await self.server.session_ended(self)
