"""An XEP-0114 component connection: the asyncio side of
:mod:`xmlchat.protocol.component`.

Once the handshake succeeds the connection is the component's link in the
components module (:class:`~xmlchat.modules.components.Components`); a
:class:`~xmlchat.errors.StanzaError` raised for what the component sent
becomes an error stanza back to it, here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lxml import etree

from xmlchat.errors import StanzaError
from xmlchat.modules.components import Components
from xmlchat.protocol import component
from xmlchat.server.connection import Connection
from xmlchat.stanza import kind, make, new_id
from xmlchat.xml.stream import StreamLimits

PING_NS = "urn:xmpp:ping"


class ComponentConnection(Connection[component.Event]):
    __slots__ = ("components", "domain")
    protocol = "component"
    core: component.ComponentStream

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = self.config.limits
        self.core = component.ComponentStream(
            self.config.components.secrets, StreamLimits(limits.max_stanza_bytes, limits.max_depth)
        )
        # Where this connection attaches once its handshake succeeds; the
        # configuration rules make sure a component listener has the module.
        self.components: Components = next(m for m in self.ctx.hub.modules if isinstance(m, Components))
        self.domain: str | None = None
        # A component is not a user's session: the operator's who, kick and
        # deluser pass it by.
        self.session = None

    @property
    def authenticated(self) -> bool:
        return self.domain is not None

    # ---- SessionTransport, as the components module writes to it

    def write(self, stanza: etree._Element, stamp: datetime, delayed: bool) -> None:
        self.metrics.stanza_out(self.protocol, kind(stanza))
        self.log_stanza("out", stanza)
        self.core.send_stanza(stanza)
        self.flush()

    def send_keepalive(self) -> None:
        """An XEP-0199 ping: a component answers any iq get, even with an
        error, and any answer is life (a whitespace ping would get none)."""
        if self.domain is None:
            return
        iq = make("iq", {"type": "get", "id": f"ping-{new_id()}", "to": self.domain})
        iq.set("from", self.domain.partition(".")[2])
        etree.SubElement(iq, f"{{{PING_NS}}}ping", nsmap={None: PING_NS})
        self.core.send_stanza(iq)
        self.flush()

    # ---- input

    async def handle(self, event: component.Event) -> list[component.Event]:
        match event:
            case component.Authenticated(domain):
                self.domain = domain
                self.log.info("component %s authenticated", domain)
                self.metrics.login(self.protocol, True)
                self.login_done()  # no longer a pending connection (admission caps)
                self.components.attach(domain, self)
            case component.StanzaIn(element, to):
                self.metrics.stanza_in(self.protocol, kind(element))
                self.log_stanza("in", element)
                try:
                    await self.components.from_component(element, to)
                except StanzaError as error:
                    self.metrics.error(self.protocol, error)
                    self.core.send_stanza_error(element, error)
            case component.Failed(error):
                self.log.info("stream error: %s", error)
                if self.domain is None:
                    self.metrics.login(self.protocol, False)
                self.close_after_flush()
            case component.Closed():
                self.close_after_flush()
        return []

    async def finish(self) -> None:
        if self.domain is not None:
            self.components.detach(self.domain, self)
