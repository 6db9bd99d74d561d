"""The hub: one way in (dispatch), one way out (deliver), and the filter chains between."""

from __future__ import annotations

from datetime import datetime

import pytest
from lxml import etree
from modules.fakes import Harness

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID
from xmlchat.routing.api import (
    InboundFilter,
    IqHandler,
    OnClientState,
    OnInitialPresence,
    OutboundFilter,
    Registration,
    RouteFilter,
    ServesDomain,
    StanzaHandler,
)
from xmlchat.routing.session import Session
from xmlchat.stanza import kind, make

PING = "{urn:xmpp:ping}ping"


class Declares:
    """A module that declares what a test gives it."""

    def __init__(self, name: str, *registrations: Registration) -> None:
        self.name = name
        self.registrations = list(registrations)

    def setup(self) -> list[Registration]:
        return self.registrations


def chat(sender: str, to: str, body: str = "hi") -> etree._Element:
    message = make("message", {"type": "chat", "from": sender, "to": to})
    etree.SubElement(message, "{jabber:client}body").text = body
    return message


def iq(type_: str, payload: str, sender: str, to: str | None = None) -> etree._Element:
    stanza = make("iq", {"type": type_, "id": "q1", "from": sender})
    if to is not None:
        stanza.set("to", to)
    etree.SubElement(stanza, payload)
    return stanza


async def test_outbound_filters_run_highest_priority_first_and_may_drop() -> None:
    harness = Harness()
    seen: list[str] = []

    def tag(label: str, drop: bool = False) -> OutboundFilter:
        def run(session: Session, stanza: etree._Element) -> etree._Element | None:
            seen.append(label)
            stanza.set("seen", ",".join(seen))
            return None if drop and stanza.get("type") == "headline" else stanza

        return OutboundFilter(run, priority={"low": 0, "high": 10, "mid": 5}[label])

    harness.hub.load(Declares("f", tag("low"), tag("high"), tag("mid", drop=True)))
    session, received = await harness.connect("alice@localhost/a")
    assert harness.hub.deliver(session, chat("bob@localhost/b", "alice@localhost/a"))
    assert received.stanzas[-1].get("seen") == "high,mid,low"
    seen.clear()
    headline = chat("bob@localhost/b", "alice@localhost/a")
    headline.set("type", "headline")
    assert not harness.hub.deliver(session, headline)
    assert seen == ["high", "mid"]  # dropped: the chain stops, nothing written
    assert len(received.stanzas) == 1


async def test_inbound_filters_run_for_the_kinds_they_declare_highest_priority_first() -> None:
    harness = Harness()
    seen: list[tuple[str, str]] = []

    def tag(label: str, priority: int, kinds: frozenset[str] | None = None) -> InboundFilter:
        def run(session: Session, stanza: etree._Element) -> etree._Element:
            seen.append((label, kind(stanza)))
            return stanza

        return InboundFilter(run, priority=priority, kinds=kinds)

    async def handled(session: Session, stanza: etree._Element, to: JID | None, stamp: datetime) -> None:
        seen.append(("handler", kind(stanza)))

    harness.hub.load(Declares(
        "f", tag("all", 0), tag("presence", 5, frozenset({"presence"})),
        tag("message", 10, frozenset({"message"})),
        StanzaHandler("message", handled), StanzaHandler("presence", handled),
    ))
    alice, _ = await harness.connect("alice@localhost/a")
    await harness.hub.receive(alice, chat(str(alice.jid), "bob@localhost"), JID.parse("bob@localhost"))
    assert seen == [("message", "message"), ("all", "message"), ("handler", "message")]
    seen.clear()
    await harness.hub.receive(alice, make("presence", {"from": str(alice.jid)}), None)
    assert seen == [("presence", "presence"), ("all", "presence"), ("handler", "presence")]


async def test_a_route_filter_refuses_for_the_recipient_and_nothing_is_delivered() -> None:
    harness = Harness()
    refused: list[JID] = []

    async def refuse(stanza: etree._Element, account: JID) -> etree._Element | None:
        refused.append(account)
        raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)

    harness.hub.load(Declares("refuse", RouteFilter(refuse)))
    sender, _ = await harness.connect("alice@localhost/a")
    target, received = await harness.connect("bob@localhost/b")
    with pytest.raises(StanzaError) as error:
        await harness.hub.receive(sender, iq("get", PING, str(sender.jid), str(target.jid)), target.jid)
    assert error.value.condition == StanzaCondition.SERVICE_UNAVAILABLE
    assert refused == [JID("bob", "localhost")]
    assert received.stanzas == []


async def test_a_served_domain_gets_every_stanza_addressed_to_it() -> None:
    harness = Harness()
    got: list[tuple[str, JID]] = []

    async def room(session: Session, stanza: etree._Element, to: JID | None, stamp: datetime) -> None:
        assert to is not None
        got.append((str(stanza.tag).rpartition("}")[2], to))

    async def messages(session: Session, stanza: etree._Element, to: JID | None, stamp: datetime) -> None:
        got.append(("elsewhere", JID.parse(stanza.get("to", ""))))

    harness.hub.load(Declares("rooms", ServesDomain("conference", room), StanzaHandler("message", messages)))
    alice, _ = await harness.connect("alice@localhost/a")
    for stanza in (
        chat(str(alice.jid), "lobby@conference.localhost"),
        make("presence", {"from": str(alice.jid), "to": "lobby@conference.localhost/alice"}),
        iq("get", PING, str(alice.jid), "conference.localhost"),
        chat(str(alice.jid), "bob@localhost"),
        chat(str(alice.jid), "lobby@conference.example.org"),  # not one of our hosts
    ):
        await harness.hub.receive(alice, stanza, JID.parse(stanza.get("to", "")))
    assert got == [
        ("message", JID.parse("lobby@conference.localhost")),
        ("presence", JID.parse("lobby@conference.localhost/alice")),
        ("iq", JID.parse("conference.localhost")),
        ("elsewhere", JID.parse("bob@localhost")),
        ("elsewhere", JID.parse("lobby@conference.example.org")),
    ]


async def test_internal_iqs_exist_for_front_ends_only() -> None:
    harness = Harness()

    async def answer(session: Session, stanza: etree._Element) -> etree._Element:
        return etree.Element("{urn:test}answer")

    harness.hub.load(Declares("internal", IqHandler("get", "{urn:test}ask", answer, internal=True)))
    alice, received = await harness.connect("alice@localhost/a")
    request = iq("get", "{urn:test}ask", str(alice.jid))
    with pytest.raises(StanzaError) as error:
        await harness.hub.receive(alice, request, None)  # from the XMPP wire
    assert error.value.condition == StanzaCondition.SERVICE_UNAVAILABLE
    result = await harness.hub.call_iq(alice, request)  # from a front end
    assert result is not None and result.tag == "{urn:test}answer"
    assert received.stanzas == []


async def test_an_iq_to_a_session_without_full_xmpp_is_answered_by_the_hub() -> None:
    harness = Harness()
    alice, _ = await harness.connect("alice@localhost/a")
    bob, received = await harness.connect("bob@localhost/phone", native=True)
    with pytest.raises(StanzaError) as error:
        await harness.hub.receive(alice, iq("get", PING, str(alice.jid), str(bob.jid)), bob.jid)
    assert error.value.condition == StanzaCondition.SERVICE_UNAVAILABLE
    result = iq("result", PING, str(alice.jid), str(bob.jid))
    await harness.hub.receive(alice, result, bob.jid)  # a result is never answered (RFC 6120 §8.3.1)
    assert received.stanzas == []


async def test_a_newer_session_with_the_same_full_jid_replaces_the_older() -> None:
    harness = Harness()
    old, old_transport = await harness.connect("alice@localhost/a")
    new, _ = await harness.connect("alice@localhost/a")
    assert old_transport.closed is not None and old_transport.closed.condition == "conflict"
    assert harness.hub.router.get(new.jid) is new
    await harness.hub.close_session(old)  # the old one ending leaves the new one routable
    assert harness.hub.router.get(new.jid) is new


async def test_every_initial_presence_hook_runs_even_when_one_fails() -> None:
    harness = Harness()
    order: list[str] = []

    async def failing(session: Session) -> None:
        order.append("failing")
        raise RuntimeError("boom")

    async def releasing(session: Session) -> None:
        order.append("releasing")

    harness.hub.load(
        Declares(
            "hooks",
            OnInitialPresence(failing, priority=10, prepare=lambda s: order.append("prepare")),
            OnInitialPresence(releasing),
        )
    )
    alice, _ = await harness.connect("alice@localhost/a")
    harness.hub.prepare_available(alice)
    with pytest.raises(RuntimeError):
        await harness.hub.initial_presence(alice)
    assert order == ["prepare", "failing", "releasing"]


def test_two_modules_cannot_claim_the_same_thing() -> None:
    async def nothing(session: Session, stanza: etree._Element) -> None:
        return None

    harness = Harness()
    harness.hub.load(Declares("one", IqHandler("get", PING, nothing)))
    with pytest.raises(ValueError, match="already handled"):
        harness.hub.load(Declares("two", IqHandler("get", PING, nothing)))


async def test_client_state_reaches_modules_for_routable_sessions_only() -> None:
    harness = Harness()
    seen: list[tuple[str, bool]] = []

    async def changed(session: Session, active: bool) -> None:
        seen.append((str(session.jid), active))

    harness.hub.load(Declares("csi", OnClientState(changed)))
    old, _ = await harness.connect("alice@localhost/phone")
    await harness.hub.client_state(old, False)
    new, _ = await harness.connect("alice@localhost/phone")  # replaces old (RFC 6120 §7.7.2.2)
    await harness.hub.client_state(old, True)
    await harness.hub.client_state(new, True)
    assert seen == [("alice@localhost/phone", False), ("alice@localhost/phone", True)]
    assert new is not old
