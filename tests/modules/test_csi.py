"""XEP-0352 client state indication on the real hub: what an inactive
session holds, what goes through, and the order of everything at the end."""

from __future__ import annotations

from functools import partial

from lxml import etree
from modules.fakes import Harness, Recorder

from xmlchat.modules.csi import CHATSTATES_NS, NS, ClientState
from xmlchat.routing.api import OutboundFilter, Registration
from xmlchat.routing.session import Session
from xmlchat.stanza import BODY, make

ME = "alice@localhost/phone"


def presence(sender: str, show: str | None = None, type_: str | None = None) -> etree._Element:
    stanza = make("presence", {"from": sender, "to": ME})
    if type_ is not None:
        stanza.set("type", type_)
    if show is not None:
        etree.SubElement(stanza, "{jabber:client}show").text = show
    return stanza


def chat(sender: str, body: str | None = None, state: str | None = None) -> etree._Element:
    stanza = make("message", {"from": sender, "to": ME, "type": "chat"})
    if body is not None:
        etree.SubElement(stanza, BODY).text = body
    if state is not None:
        etree.SubElement(stanza, f"{{{CHATSTATES_NS}}}{state}", nsmap={None: CHATSTATES_NS})
    return stanza


def label(stanza: etree._Element) -> str:
    """One word per stanza: what a test compares."""
    sender = stanza.get("from", "").partition("@")[0]
    if stanza.tag == "{jabber:client}presence":
        return f"{sender}:{stanza.get('type') or stanza.findtext('{jabber:client}show') or 'available'}"
    if stanza.tag == "{jabber:client}message":
        body = stanza.findtext(BODY)
        states = [etree.QName(c).localname for c in stanza if etree.QName(c).namespace == CHATSTATES_NS]
        return f"{sender}:{body if body is not None else ','.join(states) or 'message'}"
    return f"{sender}:{stanza.tag}"


def labels(recorder: Recorder) -> list[str]:
    return [label(s) for s in recorder.stanzas]


async def world(hold_limit: int = 500) -> tuple[Harness, ClientState, Session, Recorder]:
    harness = Harness()
    csi = harness.load(partial(ClientState, hold_limit=hold_limit))
    session, recorder = await harness.connect(ME)
    return harness, csi, session, recorder


async def test_the_stream_feature_is_declared() -> None:
    harness, *_ = await world()
    assert (NS, "csi") in harness.registry.stream_features


async def test_an_active_session_gets_everything_at_once() -> None:
    harness, _, session, recorder = await world()
    for stanza in (presence("bob@localhost/a"), chat("bob@localhost/a", state="composing")):
        assert harness.hub.deliver(session, stanza)
    assert labels(recorder) == ["bob:available", "bob:composing"]


async def test_inactive_holds_presence_and_chat_states_and_active_flushes_in_order() -> None:
    harness, csi, session, recorder = await world()
    hub = harness.hub
    await hub.client_state(session, False)
    assert csi.inactive(session)
    held = [
        presence("bob@localhost/a"),
        chat("carol@localhost/b", state="composing"),
        presence("dave@localhost/c", type_="unavailable"),
    ]
    for stanza in held:
        assert not hub.deliver(session, stanza)
    assert recorder.stanzas == []
    await hub.client_state(session, True)
    assert labels(recorder) == ["bob:available", "carol:composing", "dave:unavailable"]
    hub.deliver(session, presence("bob@localhost/a", "away"))  # active again: straight through
    assert labels(recorder)[3:] == ["bob:away"]


async def test_only_the_latest_presence_per_full_jid_is_kept() -> None:
    harness, _, session, recorder = await world()
    hub = harness.hub
    await hub.client_state(session, False)
    for stanza in (
        presence("bob@localhost/a", "away"),
        presence("bob@localhost/b", "dnd"),
        presence("carol@localhost/x"),
        presence("bob@localhost/a", "xa"),  # replaces the first, and takes its place at the end
    ):
        hub.deliver(session, stanza)
    await hub.client_state(session, True)
    assert labels(recorder) == ["bob:dnd", "carol:available", "bob:xa"]


async def test_urgent_stanzas_go_through_at_once() -> None:
    harness, _, session, recorder = await world()
    hub = harness.hub
    await hub.client_state(session, False)
    hub.deliver(session, presence("bob@localhost/a"))
    urgent = [
        presence("carol@localhost/x", type_="subscribe"),
        chat("carol@localhost/x", body="hello"),
        make("iq", {"type": "get", "id": "p", "from": "localhost", "to": ME}),
        make("message", {"type": "error", "from": "carol@localhost/x", "to": ME}),
        make("presence", {"type": "error", "from": "carol@localhost/x", "to": ME}),
    ]
    for stanza in urgent:
        assert hub.deliver(session, stanza)
    assert recorder.stanzas == urgent  # bob's presence still waits
    await hub.client_state(session, True)
    assert labels(recorder)[len(urgent) :] == ["bob:available"]


async def test_a_message_first_releases_what_its_sender_has_waiting() -> None:
    harness, _, session, recorder = await world()
    hub = harness.hub
    await hub.client_state(session, False)
    hub.deliver(session, presence("bob@localhost/a"))
    hub.deliver(session, chat("carol@localhost/x", state="composing"))
    hub.deliver(session, chat("bob@localhost/b", state="composing"))
    hub.deliver(session, chat("bob@localhost/b", body="hi", state="active"))
    # bob's conversation in order; carol's composing still waits.
    assert labels(recorder) == ["bob:available", "bob:composing", "bob:hi"]
    await hub.client_state(session, True)
    assert labels(recorder)[3:] == ["carol:composing"]


async def test_the_cap_flushes_early() -> None:
    harness, csi, session, recorder = await world(hold_limit=3)
    hub = harness.hub
    await hub.client_state(session, False)
    for n in range(7):
        hub.deliver(session, presence(f"u{n}@localhost/r"))
    # Three held reach the cap and go; three more do; the seventh waits.
    assert labels(recorder) == [f"u{n}:available" for n in range(6)]
    assert csi.inactive(session)
    await hub.client_state(session, True)
    assert labels(recorder) == [f"u{n}:available" for n in range(7)]


async def test_flushed_stanzas_pass_the_chain_again_once() -> None:
    harness = Harness()
    seen: list[str] = []

    def watch(session: Session, stanza: etree._Element) -> etree._Element:
        seen.append(label(stanza))
        return stanza

    harness.hub.load(_Declares(OutboundFilter(watch, priority=10)))
    harness.load(ClientState)
    session, recorder = await harness.connect(ME)
    await harness.hub.client_state(session, False)
    harness.hub.deliver(session, presence("bob@localhost/a"))
    await harness.hub.client_state(session, True)
    assert seen == ["bob:available", "bob:available"]  # held, then flushed through the chain
    assert labels(recorder) == ["bob:available"]  # exactly once to the client


async def test_inactive_twice_and_active_twice_are_harmless() -> None:
    harness, _, session, recorder = await world()
    hub = harness.hub
    await hub.client_state(session, False)
    hub.deliver(session, presence("bob@localhost/a"))
    await hub.client_state(session, False)  # keeps what is held
    await hub.client_state(session, True)
    await hub.client_state(session, True)
    assert labels(recorder) == ["bob:available"]


async def test_a_closed_session_forgets_what_it_held() -> None:
    harness, csi, session, recorder = await world()
    await harness.hub.client_state(session, False)
    harness.hub.deliver(session, presence("bob@localhost/a"))
    await harness.hub.close_session(session)
    assert not csi.inactive(session)
    assert recorder.stanzas == []


async def test_native_sessions_are_never_held() -> None:
    harness = Harness()
    csi = harness.load(ClientState)
    session, recorder = await harness.connect("alice@localhost/native", native=True)
    await harness.hub.client_state(session, False)
    assert not csi.inactive(session)
    harness.hub.deliver(session, presence("bob@localhost/a"))
    assert len(recorder.stanzas) == 1


class _Declares:
    name = "watch"

    def __init__(self, *registrations: Registration) -> None:
        self.registrations = list(registrations)

    def setup(self) -> list[Registration]:
        return self.registrations
