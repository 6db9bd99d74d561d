"""Rooms on a real hub with in-memory storage: what each occupant's client was handed.

world = await World.start()
alice = await world.join("alice", "room", "Alice")
await world.say(alice, "room", "hi")
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from lxml import etree
from modules.fakes import Harness, Recorder

from xmlchat.config import Config
from xmlchat.config import Muc as MucSettings
from xmlchat.jid import JID
from xmlchat.modules.muc import Muc
from xmlchat.modules.muc.names import MUC, USER
from xmlchat.routing.session import Session
from xmlchat.stanza import make

SERVICE = "conference.localhost"
DATA = "jabber:x:data"


@dataclass
class Client:
    session: Session
    recorder: Recorder

    @property
    def stanzas(self) -> list[etree._Element]:
        return self.recorder.stanzas

    def clear(self) -> None:
        self.recorder.stanzas.clear()

    def presences(self) -> list[etree._Element]:
        return [s for s in self.stanzas if s.tag == "{jabber:client}presence"]

    def bodies(self) -> list[tuple[str, str]]:
        """(from, body) of each groupchat message received."""
        return [
            (s.get("from", ""), s.findtext("{jabber:client}body") or "")
            for s in self.stanzas
            if s.get("type") == "groupchat" and s.find("{jabber:client}body") is not None
        ]


def codes(stanza: etree._Element) -> set[str]:
    return {s.get("code", "") for s in stanza.iter(f"{{{USER}}}status")}


def item(stanza: etree._Element) -> dict[str, str]:
    found = stanza.find(f"{{{USER}}}x/{{{USER}}}item")
    return dict(found.attrib) if found is not None else {}


@dataclass
class World:
    harness: Harness
    muc: Muc
    clients: dict[str, Client] = field(default_factory=dict)

    @classmethod
    async def start(cls, harness: Harness | None = None, **settings: Any) -> World:
        config = Config()
        config = replace(config, muc=replace(MucSettings(), **settings))
        harness = harness or Harness(config)
        muc = harness.load(lambda ctx: Muc(ctx, config.muc))
        await harness.hub.start()
        return cls(harness, muc)

    async def client(self, user: str, resource: str = "pc", xmpp: bool = False) -> Client:
        """A session; a native one unless ``xmpp`` (the room raises errors to a
        native front end, and sends XMPP clients error stanzas)."""
        key = f"{user}/{resource}"
        if key not in self.clients:
            session, recorder = await self.harness.connect(f"{user}@localhost/{resource}", native=not xmpp)
            self.clients[key] = Client(session, recorder)
        return self.clients[key]

    async def send(self, client: Client, stanza: etree._Element) -> None:
        stanza.set("from", str(client.session.jid))
        to = stanza.get("to")
        await self.harness.hub.receive(client.session, stanza, JID.parse(to) if to else None)

    async def join(
        self,
        user: str,
        room: str,
        nick: str,
        password: str | None = None,
        resource: str = "pc",
        **history: str,
    ) -> Client:
        client = await self.client(user, resource)
        presence = make("presence", {"to": f"{room}@{SERVICE}/{nick}"})
        x = etree.SubElement(presence, f"{{{MUC}}}x", nsmap={None: MUC})
        if password is not None:
            etree.SubElement(x, f"{{{MUC}}}password").text = password
        if history:
            etree.SubElement(x, f"{{{MUC}}}history", history)
        await self.send(client, presence)
        return client

    async def leave(self, client: Client, room: str, nick: str) -> None:
        await self.send(client, make("presence", {"to": f"{room}@{SERVICE}/{nick}", "type": "unavailable"}))

    async def say(self, client: Client, room: str, body: str) -> None:
        message = make("message", {"to": f"{room}@{SERVICE}", "type": "groupchat"})
        etree.SubElement(message, "{jabber:client}body").text = body
        await self.send(client, message)

    async def iq(self, client: Client, type_: str, to: str, payload: etree._Element) -> etree._Element:
        """The iq's result (errors raise StanzaError, as the hub does)."""
        iq = make("iq", {"type": type_, "to": to, "id": f"iq{len(client.stanzas)}"})
        iq.append(payload)
        await self.send(client, iq)
        return [s for s in client.stanzas if s.tag == "{jabber:client}iq" and s.get("id") == iq.get("id")][-1]

    async def admin(self, client: Client, room: str, **item: str) -> etree._Element:
        ns = "http://jabber.org/protocol/muc#admin"
        query = etree.Element(f"{{{ns}}}query", nsmap={None: ns})
        etree.SubElement(query, f"{{{ns}}}item", item)
        return await self.iq(client, "set", f"{room}@{SERVICE}", query)

    async def configure(self, client: Client, room: str, **fields: str) -> etree._Element:
        ns = "http://jabber.org/protocol/muc#owner"
        query = etree.Element(f"{{{ns}}}query", nsmap={None: ns})
        x = etree.SubElement(query, f"{{{DATA}}}x", type="submit", nsmap={None: DATA})
        for var, value in {"FORM_TYPE": "http://jabber.org/protocol/muc#roomconfig", **fields}.items():
            name = var if var == "FORM_TYPE" else f"muc#roomconfig_{var}"
            field_el = etree.SubElement(x, f"{{{DATA}}}field", var=name)
            etree.SubElement(field_el, f"{{{DATA}}}value").text = value
        return await self.iq(client, "set", f"{room}@{SERVICE}", query)
