"""PEP interests from XEP-0115 caps, on a real hub without sockets: the server
asks a client's disco#info once per ver and believes it only if it hashes to
the ver (XEP-0115 §5.4), and only the session asked may answer."""

from __future__ import annotations

import asyncio

from lxml import etree
from modules.fakes import Harness, Recorder

from xmlchat.modules.pep import Pep
from xmlchat.protocol import caps
from xmlchat.routing.api import Registration, StanzaHandler
from xmlchat.routing.session import Session
from xmlchat.stanza import make

NODE = "urn:xmpp:avatar:metadata"
HONEST = [f"{NODE}+notify", caps.DISCO_INFO_NS]
IDENTITY = caps.CapsIdentity("client", "pc", name="test")


def announce(ver: str) -> etree._Element:
    presence = make("presence")
    presence.append(caps.element(caps.Caps("https://client.example", "sha-1", ver)))
    return presence


def answer(question: etree._Element, responder: str, features: list[str]) -> etree._Element:
    result = make(
        "iq", {"type": "result", "id": question.get("id", ""), "from": responder, "to": "localhost"}
    )
    query = etree.SubElement(result, f"{{{caps.DISCO_INFO_NS}}}query", nsmap={None: caps.DISCO_INFO_NS})
    etree.SubElement(query, f"{{{caps.DISCO_INFO_NS}}}identity", category="client", type="pc", name="test")
    for var in features:
        etree.SubElement(query, f"{{{caps.DISCO_INFO_NS}}}feature", var=var)
    return result


async def asked(recorder: Recorder) -> etree._Element:
    """The disco#info the server sent this session (polled, with a deadline)."""
    async with asyncio.timeout(2):
        while not (
            found := [s for s in recorder.stanzas if s.find(f"{{{caps.DISCO_INFO_NS}}}query") is not None]
        ):
            await asyncio.sleep(0.01)
    return found[-1]


async def settled(pep: Pep) -> None:
    async with asyncio.timeout(2):
        while pep.interests.unresolved:
            await asyncio.sleep(0.01)


class PresenceSink:
    """Takes presence as the presence module would; what it does is not tested here."""

    name = "presence"

    def setup(self) -> list[Registration]:
        async def take(*_: object) -> None: ...

        return [StanzaHandler("presence", take)]


def loaded() -> tuple[Harness, Pep]:
    server = Harness()
    server.hub.load(PresenceSink())
    return server, server.load(Pep)


async def connected(server: Harness, jid: str) -> tuple[Session, Recorder]:
    session, recorder = await server.connect(jid)
    session.available_presence = make("presence")
    return session, recorder


async def test_features_that_hash_to_the_ver_are_believed_once_per_ver() -> None:
    server, pep = loaded()
    ver = caps.ver([IDENTITY], HONEST)
    laptop, laptop_out = await connected(server, "alice@localhost/laptop")
    await server.hub.receive(laptop, announce(ver), None)
    question = await asked(laptop_out)
    assert question.get("to") == "alice@localhost/laptop"
    await server.hub.receive(laptop, answer(question, "alice@localhost/laptop", HONEST), None)
    await settled(pep)
    assert pep.interests.wants(laptop, NODE)
    # Another client with the same ver is not asked again (§4: a ver names the same features).
    phone, phone_out = await connected(server, "bob@localhost/phone")
    await server.hub.receive(phone, announce(ver), None)
    assert pep.interests.wants(phone, NODE)
    assert not [s for s in phone_out.stanzas if s.get("type") == "get"]


async def test_features_that_do_not_hash_to_the_ver_are_never_believed() -> None:
    server, pep = loaded()
    claimed = caps.ver([IDENTITY], [caps.DISCO_INFO_NS])  # says: no +notify at all
    liar, liar_out = await connected(server, "alice@localhost/liar")
    await server.hub.receive(liar, announce(claimed), None)
    question = await asked(liar_out)
    await server.hub.receive(liar, answer(question, "alice@localhost/liar", HONEST), None)
    await settled(pep)
    assert not pep.interests.wants(liar, NODE)


async def test_only_the_session_asked_can_answer() -> None:
    server, pep = loaded()
    ver = caps.ver([IDENTITY], HONEST)
    laptop, laptop_out = await connected(server, "alice@localhost/laptop")
    other, _ = await connected(server, "mallory@localhost/x")
    await server.hub.receive(laptop, announce(ver), None)
    question = await asked(laptop_out)
    # mallory replays the id with features of its choosing: not consumed, not believed.
    forged = answer(question, "mallory@localhost/x", HONEST)
    await server.hub.receive(other, forged, None)
    assert pep.interests.unresolved and not pep.interests.wants(laptop, NODE)
    await server.hub.receive(laptop, answer(question, "alice@localhost/laptop", HONEST), None)
    await settled(pep)
    assert pep.interests.wants(laptop, NODE)
