"""XEP-0199 XMPP Ping: the server answers a client's ping (§4.2).

The other direction, server-to-client pings (§4.1), is the idle keepalive of
:meth:`xmlchat.server.xmpp.XmppConnection.send_keepalive`: a client that
answers nothing within ``limits.idle_timeout`` is dropped.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from xmlchat.routing.api import Feature, IqHandler, Registration
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.session import Session

XEP: Final = 199
NS: Final = "urn:xmpp:ping"


class Ping:
    name = "ping"

    def __init__(self, ctx: ModuleContext[None]) -> None:
        self.ctx = ctx

    def setup(self) -> list[Registration]:
        return [Feature(NS), IqHandler("get", f"{{{NS}}}ping", self.pong)]

    async def pong(self, session: Session, iq: etree._Element) -> None:
        return None  # §4.2: the pong is an empty iq result
