"""A hub built as the server builds it, on one in-memory store, with helpers
to act as the clients of the blocking tests."""

from __future__ import annotations

import pytest
from lxml import etree
from modules.fakes import Recorder

from xmlchat.config import Config
from xmlchat.errors import StanzaError
from xmlchat.jid import JID
from xmlchat.metrics import Metrics
from xmlchat.modules.blocking import ITEM, NS
from xmlchat.modules.messages import Messages
from xmlchat.routing.session import NATIVE_CLIENT, XMPP_CLIENT, Session
from xmlchat.server.modules import build_hub
from xmlchat.stanza import BODY, make
from xmlchat.storage import MemoryStorage, RosterItem

ALICE, BOB = JID("alice", "localhost"), JID("bob", "localhost")
VERSION_QUERY = "{jabber:iq:version}query"


class World:
    """The server's hub on one in-memory store, and helpers to act as clients."""

    def __init__(
        self,
        hosts: tuple[str, ...] = ("localhost",),
        config: Config | None = None,
        store: MemoryStorage | None = None,
    ) -> None:
        self.store = store or MemoryStorage()
        self.hub = build_hub(config or Config(hosts=hosts), self.store, Metrics())

    async def users(self, *names: str) -> None:
        for name in names:
            await self.store.create_user(JID.parse(name), "pw")

    async def befriend(self, user: JID, contact: JID, subscription: str = "both") -> None:
        """``subscription`` as seen from ``user``'s roster; the contact's mirrors it."""
        mirror = {"none": "none", "to": "from", "from": "to", "both": "both"}[subscription]
        await self.store.put_roster_item(user, RosterItem(contact, subscription=subscription))
        await self.store.put_roster_item(contact, RosterItem(user, subscription=mirror))

    async def login(
        self, full: str, available: bool = True, native: bool = False
    ) -> tuple[Session, Recorder]:
        recorder = Recorder("native" if native else "xmpp")
        session = Session(JID.parse(full), NATIVE_CLIENT if native else XMPP_CLIENT, recorder)
        await self.hub.open_session(session)
        if available:
            await self.hub.receive(session, make("presence", {"from": full}), None)
            await self.replayed(session)
        return session, recorder

    async def connect(self, full: str, transport: Recorder) -> Session:
        """An available XMPP session on ``transport``, its login replay over."""
        session = Session(JID.parse(full), XMPP_CLIENT, transport)
        await self.hub.open_session(session)
        await self.hub.receive(session, make("presence", {"from": full}), None)
        await self.replayed(session)
        return session

    async def replayed(self, session: Session) -> None:
        """The login replay runs beside the session: wait for it to be over."""
        messages = next(m for m in self.hub.modules if isinstance(m, Messages))
        await messages.replayed(session.jid)

    async def send(self, session: Session, stanza: etree._Element) -> None:
        stanza.set("from", str(session.jid))
        to = stanza.get("to")
        await self.hub.receive(session, stanza, None if to is None else JID.parse(to))

    async def iq(self, session: Session, type_: str, tag: str, *jids: str) -> None:
        """A blocking request as an XMPP client sends it; the answer goes to its recorder."""
        iq = make("iq", {"type": type_, "id": f"{tag}-{len(jids)}"})
        payload = etree.SubElement(iq, tag, nsmap={None: NS})
        for jid in jids:
            etree.SubElement(payload, ITEM, jid=jid)
        await self.send(session, iq)

    async def refused(self, session: Session, stanza: etree._Element) -> StanzaError:
        with pytest.raises(StanzaError) as failure:
            await self.send(session, stanza)
        return failure.value


def message(to: str, body: str, type_: str = "chat") -> etree._Element:
    stanza = make("message", {"to": to, "type": type_, "id": body})
    etree.SubElement(stanza, BODY).text = body
    return stanza


def bodies(recorder: Recorder) -> list[str]:
    return [str(s.findtext(BODY)) for s in recorder.stanzas if s.tag == "{jabber:client}message"]
