"""The XEP-0114 component stream core, sans I/O: handshake, addressing, namespaces."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from xmlchat.errors import StreamCondition
from xmlchat.protocol import component
from xmlchat.stanza import make

SECRETS = {"echo.localhost": "s3cret"}
HEADER = (
    "<stream:stream xmlns='jabber:component:accept' "
    "xmlns:stream='http://etherx.jabber.org/streams' to='{to}'>"
)
HANDSHAKE = "<handshake>{}</handshake>".format(component.handshake_digest("sid", "s3cret"))
AUTHED = HEADER.format(to="echo.localhost") + HANDSHAKE


def opened(to: str = "echo.localhost") -> component.ComponentStream:
    core = component.ComponentStream(SECRETS, id_factory=lambda: "sid")
    assert core.receive_data(HEADER.format(to=to).encode()) == []
    return core


def failure(events: list[component.Event]) -> StreamCondition:
    assert isinstance(events[-1], component.Failed)
    return events[-1].error.condition


def test_a_good_handshake_then_stanzas_in_both_directions() -> None:
    core = opened()
    header = core.data_to_send()
    assert b"from='echo.localhost'" in header and b"id='sid'" in header
    assert core.receive_data(HANDSHAKE.encode()) == [component.Authenticated("echo.localhost")]
    assert core.data_to_send() == b"<handshake xmlns='jabber:component:accept'/>"
    [event] = core.receive_data(
        b"<message from='bot@echo.localhost' to='alice@localhost' type='chat'><body>hi</body>"
        b"<request xmlns='urn:xmpp:receipts'/></message>"
    )
    assert isinstance(event, component.StanzaIn)
    assert event.element.tag == "{jabber:client}message"
    assert event.element[0].tag == "{jabber:client}body" and event.element[0].text == "hi"
    assert event.element[1].tag == "{urn:xmpp:receipts}request"
    assert str(event.to) == "alice@localhost"
    reply = make("message", {"from": "alice@localhost/pc", "to": "bot@echo.localhost"})
    etree.SubElement(reply, "{jabber:client}body").text = "yo"
    core.send_stanza(reply)
    written = etree.fromstring(core.data_to_send())
    assert written.tag == "{jabber:component:accept}message"
    assert written[0].tag == "{jabber:component:accept}body" and written[0].text == "yo"


@given(st.integers(min_value=1, max_value=40))
def test_any_chunking_gives_the_same_events(size: int) -> None:
    data = (
        HEADER.format(to="echo.localhost") + HANDSHAKE + "<presence from='echo.localhost' to='a@localhost'/>"
    )
    core = component.ComponentStream(SECRETS, id_factory=lambda: "sid")
    events = []
    for start in range(0, len(data.encode()), size):
        events += core.receive_data(data.encode()[start : start + size])
    assert [type(e) for e in events] == [component.Authenticated, component.StanzaIn]


@pytest.mark.parametrize(
    ("stream", "condition"),
    [
        (HEADER.format(to="nobody.localhost"), StreamCondition.HOST_UNKNOWN),
        (HEADER.format(to="echo.localhost").replace("jabber:component:accept", "jabber:client"),
         StreamCondition.INVALID_NAMESPACE),
        (HEADER.format(to="echo.localhost") + "<handshake>0000</handshake>", StreamCondition.NOT_AUTHORIZED),
        # A handshake made for another stream id (a replay) is refused too.
        (HEADER.format(to="echo.localhost") + "<handshake>{}</handshake>".format(
            component.handshake_digest("other", "s3cret")), StreamCondition.NOT_AUTHORIZED),
        (HEADER.format(to="echo.localhost") + "<message to='a@localhost'/>", StreamCondition.NOT_AUTHORIZED),
        (AUTHED + "<message from='alice@localhost' to='bob@localhost'/>",
         StreamCondition.INVALID_FROM),
        (AUTHED + "<message from='echo.localhost'/>",
         StreamCondition.IMPROPER_ADDRESSING),
    ],
)  # fmt: skip
def test_refusals_end_the_stream(stream: str, condition: StreamCondition) -> None:
    core = component.ComponentStream(SECRETS, id_factory=lambda: "sid")
    assert failure(core.receive_data(stream.encode())) == condition
    out = core.data_to_send()
    assert f"<{condition.value} ".encode() in out and out.endswith(b"</stream:stream>")
    assert core.closed and core.receive_data(b"<message/>") == []


@pytest.mark.parametrize(
    "stream",
    [
        HEADER.format(to="nobody.localhost"),
        HEADER.format(to="echo.localhost").replace("jabber:component:accept", "jabber:client"),
    ],
)
def test_a_header_refused_still_gets_a_header_of_ours_first(stream: str) -> None:
    """RFC 6120 §4.9.1.2: an error before the server's own header is sent
    comes after one, so the peer's parser can read it (once, not twice)."""
    core = component.ComponentStream(SECRETS, id_factory=lambda: "sid")
    core.receive_data(stream.encode())
    out = core.data_to_send()
    assert out.startswith(b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept'")
    assert out.count(b"<stream:stream ") == 1
    document = etree.fromstring(out.split(b"?>", 1)[1])
    assert etree.QName(document[0]).localname == "error"
