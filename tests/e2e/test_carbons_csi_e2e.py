"""XEP-0280 carbons and XEP-0352 client state indication end to end: slixmpp
(its xep_0280 plugin, and the CSI nonzas through ``send_raw``) against the
real server, counting exactly what each resource received.

"Nothing else arrived" is read after a round trip on the same connection (a
roster get): the server writes to one connection in order, so what it sent
before the answer has been received by then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree import ElementTree

from conftest import ServerProcess
from e2e.xmpp_helpers import TIMEOUT, XmppPeer, connect
from polling import wait_for
from slixmpp.stanza import Message, Presence
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

ALICE, BOB = "alice@localhost", "bob@localhost"
CARBONS = "urn:xmpp:carbons:2"
PRIVATE = f"{{{CARBONS}}}private"
NO_COPY = "{urn:xmpp:hints}no-copy"
FORWARDED = "{urn:xmpp:forward:0}forwarded"


@dataclass
class Resource:
    """A slixmpp client with the carbons plugin and everything it received, in order."""

    peer: XmppPeer
    messages: list[Message] = field(default_factory=list)  # not carbons
    received: list[str] = field(default_factory=list)  # bodies of received carbons
    sent: list[str] = field(default_factory=list)  # bodies of sent carbons
    plugin: list[tuple[str, str]] = field(default_factory=list)  # what slixmpp accepted as carbons
    presences: list[Presence] = field(default_factory=list)

    def _message(self, message: Message) -> None:
        """Every message stanza (slixmpp's own "message" event skips those without a body)."""
        for how, into in (("received", self.received), ("sent", self.sent)):
            inner = message.xml.find(f"{{{CARBONS}}}{how}/{FORWARDED}/{{jabber:client}}message")
            if inner is not None:
                into.append(str(inner.findtext("{jabber:client}body")))
                return
        self.messages.append(message)

    def bodies(self) -> list[str]:
        return [str(m["body"]) for m in self.messages]

    async def everything(self) -> tuple[list[str], list[str], list[str]]:
        """After a round trip: bodies of the messages, received carbons, sent carbons."""
        await self.peer.roster()
        return self.bodies(), self.received, self.sent


async def resource(server: ServerProcess, user: str, name: str, carbons: bool = True) -> Resource:
    peer = await connect(server, user, resource=name)
    client = peer.client
    client.register_plugin("xep_0280")
    got = Resource(peer)
    client.register_handler(Callback("every message", MatchXPath("{jabber:client}message"), got._message))
    for how in ("received", "sent"):
        client.add_event_handler(
            f"carbon_{how}", lambda m, how=how: got.plugin.append((how, str(m[f"carbon_{how}"]["body"])))
        )
    client.add_event_handler("presence", got.presences.append)
    if carbons:
        result = await client.plugin["xep_0280"].enable(timeout=TIMEOUT)
        assert result["type"] == "result"
    await peer.roster()  # our own presences are in; start counting afresh
    got.presences.clear()
    return got


def send(sender: Resource, to: str, body: str, hint: str | None = None) -> None:
    message = sender.peer.client.make_message(mto=to, mbody=body, mtype="chat")
    if hint is not None:
        message.xml.append(ElementTree.Element(hint))
    message.send()


async def test_carbons_received_sent_private_and_no_copy(server: ServerProcess) -> None:
    phone = await resource(server, "alice", "phone")
    laptop = await resource(server, "alice", "laptop")
    tablet = await resource(server, "alice", "tablet", carbons=False)
    bob = await resource(server, "bob", "pc", carbons=False)
    try:
        info = await phone.peer.client.plugin["xep_0030"].get_info(jid="localhost", timeout=TIMEOUT)
        assert CARBONS in info["disco_info"]["features"]

        send(bob, f"{ALICE}/phone", "1 to phone")
        send(phone, BOB, "2 from phone")
        send(phone, BOB, "3 private", hint=PRIVATE)
        send(bob, f"{ALICE}/phone", "4 no-copy", hint=NO_COPY)
        send(bob, ALICE, "5 to the bare JID")
        # Each sender's messages are routed in order: once its last one is in, all are.
        await wait_for(lambda: "5 to the bare JID" in laptop.bodies(), TIMEOUT, what="bob's last message")
        await wait_for(lambda: "3 private" in bob.bodies(), TIMEOUT, what="phone's last message")

        assert await phone.everything() == (["1 to phone", "4 no-copy", "5 to the bare JID"], [], [])
        assert await laptop.everything() == (["5 to the bare JID"], ["1 to phone"], ["2 from phone"])
        assert await tablet.everything() == (["5 to the bare JID"], [], [])
        assert await bob.everything() == (["2 from phone", "3 private"], [], [])
        # slixmpp took both carbons as genuine (from the bare JID, XEP-0280 §11).
        # Two senders' messages have no order between them (each sender's own do).
        assert sorted(laptop.plugin) == [("received", "1 to phone"), ("sent", "2 from phone")]
        # XEP-0280 §9: the receiving server removes <private/>.
        assert bob.messages[1].xml.find(PRIVATE) is None
    finally:
        for r in (phone, laptop, tablet, bob):
            await r.peer.close()


async def test_csi_holds_presence_lets_messages_through_and_flushes_at_active(server: ServerProcess) -> None:
    alice = await resource(server, "alice", "phone", carbons=False)
    bob = await resource(server, "bob", "pc", carbons=False)
    carol = await resource(server, "carol", "pc", carbons=False)
    try:
        alice.peer.client.send_raw("<inactive xmlns='urn:xmpp:csi:0'/>")
        await alice.peer.roster()  # the nonza is handled before this answer

        for show in ("away", "dnd"):  # directed presence (RFC 6121 §4.6); only the latest is kept
            bob.peer.send_presence(to=f"{ALICE}/phone", pshow=show)
        await bob.peer.roster()  # both processed: held for alice
        send(carol, f"{ALICE}/phone", "urgent")
        await wait_for(lambda: alice.bodies() == ["urgent"], TIMEOUT, what="carol's message")
        assert await alice.everything() == (["urgent"], [], [])
        assert alice.presences == []

        alice.peer.client.send_raw("<active xmlns='urn:xmpp:csi:0'/>")
        await wait_for(lambda: len(alice.presences) > 0, TIMEOUT, what="the held presence")
        await alice.peer.roster()
        assert [(str(p["from"]), str(p["show"])) for p in alice.presences] == [("bob@localhost/pc", "dnd")]
        assert alice.bodies() == ["urgent"]

        bob.peer.send_presence(to=f"{ALICE}/phone", pshow="xa")  # active: straight through
        await wait_for(lambda: len(alice.presences) == 2, TIMEOUT, what="presence while active")
    finally:
        for r in (alice, bob, carol):
            await r.peer.close()
