"""The c2s core with RFC 7395's message framing (WebSocket, BOSH): every unit it
queues is one whole element, ``<open/>``/``<close/>`` stand for the stream tags."""

from __future__ import annotations

import pytest
from lxml import etree
from xmpp_core_helpers import Driver, auth_plain, bind_iq, counter

from xmlchat.protocol.xmpp import C2SStream, State, StreamFailed
from xmlchat.protocol.xmpp.framing import MESSAGES, NS_FRAMING
from xmlchat.stanza import make

OPEN = f"<open xmlns='{NS_FRAMING}' to='localhost' version='1.0'/>".encode()
CLOSE = f"<close xmlns='{NS_FRAMING}'/>".encode()
STREAMS = "http://etherx.jabber.org/streams"


def core() -> C2SStream:
    # The transport's TLS counts (§3.4 of RFC 7395: no STARTTLS over WebSocket).
    return C2SStream(["localhost"], tls_active=True, framing=MESSAGES, id_factory=counter("s"))


def feed_each(driver: Driver, *messages: bytes) -> list[etree._Element]:
    for message in messages:
        driver.feed(message)
    return driver.take_units()


def test_a_whole_session_is_whole_elements() -> None:
    driver = Driver(core())
    opened, features = feed_each(driver, OPEN)
    assert opened.tag == f"{{{NS_FRAMING}}}open"
    assert (opened.get("from"), opened.get("id"), opened.get("version")) == ("localhost", "s1", "1.0")
    assert features.tag == f"{{{STREAMS}}}features"  # declares its own prefix
    assert features.find("{urn:ietf:params:xml:ns:xmpp-tls}starttls") is None
    (success,) = feed_each(driver, auth_plain("alice", "alicepw"))
    assert etree.QName(success).localname == "success"
    opened, features = feed_each(driver, OPEN)  # the restart (§3.5) is a new <open/>
    assert opened.get("id") == "s2" and features.find("{urn:ietf:params:xml:ns:xmpp-bind}bind") is not None
    (bound,) = feed_each(driver, bind_iq("web"))
    assert bound.tag == "{jabber:client}iq"  # xmlns='jabber:client' on the element itself
    assert driver.core.state is State.BOUND
    driver.core.send_stanza(make("message", {"to": "alice@localhost/web", "from": "bob@localhost/x"}))
    (message,) = driver.take_units()
    assert message.tag == "{jabber:client}message"
    (closed,) = feed_each(driver, CLOSE)
    assert closed.tag == f"{{{NS_FRAMING}}}close"  # §3.6
    assert driver.core.state is State.CLOSED


@pytest.mark.parametrize(
    ("messages", "why"),
    [
        ((b"<message xmlns='jabber:client'/>",), "open the stream first"),
        ((OPEN, OPEN), "the stream is already open"),
    ],
    ids=["stanza-before-open", "open-twice"],
)
def test_an_open_out_of_place_is_bad_format(messages: tuple[bytes, ...], why: str) -> None:
    driver = Driver(core())
    for message in messages:
        driver.feed(message)
    failure = driver.events[-1]
    assert isinstance(failure, StreamFailed) and failure.error.text == why
    error, closing = driver.take_units()[-2:]
    assert error.tag == f"{{{STREAMS}}}error" and error.find(
        "{urn:ietf:params:xml:ns:xmpp-streams}bad-format"
    ) is not None
    assert closing.tag == f"{{{NS_FRAMING}}}close"  # RFC 7395 §3.6.1: error, then <close/>
