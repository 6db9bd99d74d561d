"""Stanzas on an established c2s stream (RFC 6120 §8), and the state machine as data."""

from __future__ import annotations

import pytest
from lxml import etree
from protocol.xmpp_core_helpers import HEADER, PASSWORD, Driver, auth_plain, bind_iq, items, login, make_core

from xmlchat.config import Config
from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID
from xmlchat.protocol.xmpp import (
    TRANSITIONS,
    C2SLimits,
    C2SStream,
    LocalProtocolError,
    NonzaIn,
    StanzaIn,
    State,
)


def test_from_is_stamped_and_to_normalised() -> None:
    driver = login()
    [event] = driver.feed(
        b"<message from='mallory@evil/x' to='Bob@LocalHost/Phone' xml:lang='de'><body>hi</body></message>"
    )
    assert isinstance(event, StanzaIn)
    assert event.to == JID("bob", "localhost", "Phone")
    assert event.element.get("from") == "alice@localhost/res"  # §8.1.2.1: whatever the client wrote
    assert event.element.get("to") == "bob@localhost/Phone"
    assert event.element.get("{http://www.w3.org/XML/1998/namespace}lang") == "de"


def test_each_stanza_is_stamped_and_normalised_though_addresses_repeat() -> None:
    """The core writes an address out once and reuses it (established._address):
    a repeated 'to', normalised or not, and the same 'from' on every stanza."""
    driver = login()
    sent = b"<message to='Bob@LocalHost/Phone'/><message to='bob@localhost/Phone' from='x@y'/>" * 2
    events = driver.feed(sent)
    assert [e.element.get("to") for e in events if isinstance(e, StanzaIn)] == ["bob@localhost/Phone"] * 4
    assert {e.element.get("from") for e in events if isinstance(e, StanzaIn)} == {"alice@localhost/res"}


def test_stream_language_is_stamped() -> None:
    driver = Driver(make_core())
    header = HEADER.replace(b"to='localhost'", b"to='localhost' xml:lang='fr'")
    driver.feed(header + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    driver.feed(header + auth_plain("alice", PASSWORD))
    driver.feed(header + bind_iq("r"))
    [event] = driver.feed(b"<presence/>")
    assert isinstance(event, StanzaIn)
    assert event.element.get("{http://www.w3.org/XML/1998/namespace}lang") == "fr"


@pytest.mark.parametrize(
    ("stanza", "condition"),
    [
        (b"<message to='a@@b' from='spoofed@x'><body>x</body></message>", "jid-malformed"),
        (b"<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>", "bad-request"),
        (b"<iq id='1'><ping xmlns='urn:xmpp:ping'/></iq>", "bad-request"),
        (b"<iq id='1' type='fetch'><ping xmlns='urn:xmpp:ping'/></iq>", "bad-request"),
        (b"<iq id='1' type='get'/>", "bad-request"),
        (b"<iq id='1' type='set'><a xmlns='x'/><b xmlns='x'/></iq>", "bad-request"),
        (b"<iq id='1' type='result'><a xmlns='x'/><b xmlns='x'/></iq>", "bad-request"),
        (b"<presence type='hello'/>", "bad-request"),
    ],
)
def test_malformed_stanzas_are_answered_by_the_core(stanza: bytes, condition: str) -> None:
    driver = login()
    assert driver.feed(stanza) == []
    reply = etree.fromstring(b"<w xmlns='jabber:client'>" + driver.take() + b"</w>")[0]
    assert reply.get("type") == "error"
    assert reply.get("from") is None  # from the server, not from a malformed address
    assert reply.get("to") == "alice@localhost/res"
    assert etree.QName(reply[0][0]).localname == condition
    assert driver.core.state is State.BOUND


def test_errors_are_never_answered() -> None:
    driver = login()
    assert driver.feed(b"<message type='error' to='a@@b'/>") == []
    assert driver.feed(b"<iq type='error'/>") == []
    assert driver.take() == b""


def test_unknown_message_type_passes() -> None:
    # RFC 6121 §5.2.2: treated as 'normal' by the recipient.
    driver = login()
    assert [type(e) for e in driver.feed(b"<message type='weird'/>")] == [StanzaIn]


def test_nonzas_in_configured_namespaces() -> None:
    # CSI (test_c2s_csi) and stream management (test_c2s_sm) have their own events.
    driver = login(make_core(nonza_namespaces={"urn:example:nonza"}))
    [event] = driver.feed(b"<poke xmlns='urn:example:nonza'/>")
    assert isinstance(event, NonzaIn) and event.element.tag == "{urn:example:nonza}poke"


def test_send_stanza_writes_clean_xml() -> None:
    driver = login()
    message = etree.fromstring(
        b"<message xmlns='jabber:client' to='alice@localhost/res' from='bob@localhost/x' type='chat'>"
        b"<body>hi &amp; bye</body><x xmlns='vcard-temp:x:update'><photo/></x></message>"
    )
    message.tail = "junk"
    driver.core.send_stanza(message)
    assert driver.take() == (
        b'<message to="alice@localhost/res" from="bob@localhost/x" type="chat"><body>hi &amp; bye</body>'
        b'<x xmlns="vcard-temp:x:update"><photo/></x></message>'
    )
    # An element built without nsmap is rewritten with jabber:client as the default.
    iq = etree.Element("{jabber:client}iq", type="get", id="p1")
    etree.SubElement(iq, "{urn:xmpp:ping}ping")
    driver.core.send_stanza(iq)
    assert items(driver.take()) == items(b"<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")


def test_send_stanza_before_bind_raises() -> None:
    with pytest.raises(LocalProtocolError):
        make_core().send_stanza(etree.Element("{jabber:client}message"))


def test_stanza_error_reply_swaps_addresses() -> None:
    driver = login()
    [event] = driver.feed(b"<message to='bob@localhost' id='m1'><body>hi</body></message>")
    assert isinstance(event, StanzaIn)
    driver.core.stanza_error_reply(
        event.element, StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, "bob is away")
    )
    reply = items(driver.take())[0]
    assert reply[0] == "{jabber:client}message"
    assert dict(reply[1]) == {
        "from": "bob@localhost",
        "to": "alice@localhost/res",
        "id": "m1",
        "type": "error",
    }
    error = reply[3][0]
    assert dict(error[1]) == {"type": "cancel"}
    assert error[3][0][0] == "{urn:ietf:params:xml:ns:xmpp-stanzas}service-unavailable"
    assert error[3][1][2] == "bob is away"
    # Never an error in answer to an error (RFC 6120 §8.3.1).
    driver.core.stanza_error_reply(
        etree.fromstring(b"<message type='error'/>"), StanzaError(StanzaCondition.GONE)
    )
    assert driver.take() == b""


# -- the state machine as data -------------------------------------------------------------------------------


def test_every_state_but_closed_can_finish() -> None:
    finishing = {s for (s, i), t in TRANSITIONS.items() if t is State.CLOSED}
    assert finishing == set(State) - {State.CLOSED}


def test_from_config() -> None:
    config = Config()
    core = C2SStream.from_config(config, tls_available=True)
    core.receive_data(HEADER)
    assert b"<required/>" in core.data_to_send()
    limits = C2SLimits(max_unauthenticated_stanza_bytes=config.limits.max_unauthenticated_stanza_bytes)
    assert limits.max_unauthenticated_stanza_bytes == 10_000
