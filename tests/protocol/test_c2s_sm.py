"""XEP-0198 stream management in the c2s core: acknowledgements, no resumption."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from protocol.xmpp_core_helpers import (
    HEADER,
    PASSWORD,
    Driver,
    auth_plain,
    bind_iq,
    failed,
    items,
    login,
    make_core,
    tls_driver,
)

from xmlchat.errors import StanzaCondition, StanzaError, StreamCondition
from xmlchat.protocol.xmpp import Acknowledged, StanzaIn, State, StreamManagementEnabled
from xmlchat.protocol.xmpp.sm import MODULUS, REQUEST_EVERY, covers
from xmlchat.xml.writer import stream_error

SM = "urn:xmpp:sm:3"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
ENABLE = f"<enable xmlns='{SM}'/>".encode()
R = f"<r xmlns='{SM}'/>".encode()


def a(h: int) -> bytes:
    return f"<a xmlns='{SM}' h='{h}'/>".encode()


def tags(data: bytes) -> list[str]:
    return [i[0] for i in items(data) if isinstance(i, tuple)]


def answer_h(data: bytes) -> int:
    [item] = [i for i in items(data) if isinstance(i, tuple) and i[0] == f"{{{SM}}}a"]
    return int(dict(item[1])["h"])


def enabled() -> Driver:
    driver = login()
    assert driver.feed(ENABLE) == [StreamManagementEnabled()]
    assert tags(driver.take()) == [f"{{{SM}}}enabled"]
    driver.events.clear()
    return driver


def send(driver: Driver, n: int) -> None:
    for i in range(n):
        driver.core.send_stanza(etree.fromstring(f"<message xmlns='jabber:client' id='m{i}'/>"))


def failed_condition(data: bytes) -> tuple[str, str]:
    [item] = [i for i in items(data) if isinstance(i, tuple) and i[0] == f"{{{SM}}}failed"]
    assert "h" not in dict(item[1])  # no previous session is ever known
    [condition] = item[3]
    return etree.QName(condition[0]).namespace or "", etree.QName(condition[0]).localname


def test_enabled_carries_no_resume_even_when_asked() -> None:
    driver = login()
    assert driver.feed(f"<enable xmlns='{SM}' resume='true'/>".encode()) == [StreamManagementEnabled()]
    [item] = [i for i in items(driver.take()) if isinstance(i, tuple)]
    assert item[0] == f"{{{SM}}}enabled" and item[1] == []  # §5: resumption not offered
    assert driver.core.sm is not None


def test_enable_twice_fails_and_the_stream_lives() -> None:
    driver = enabled()
    assert driver.feed(ENABLE) == []
    assert failed_condition(driver.take()) == (STANZAS, "unexpected-request")
    assert [type(e) for e in driver.feed(b"<presence/>")] == [StanzaIn]


def test_enable_before_bind_fails_then_bind_works() -> None:
    driver = tls_driver()
    driver.feed(auth_plain("alice", PASSWORD))
    driver.feed(HEADER)
    driver.take()
    assert driver.feed(ENABLE) == []
    assert failed_condition(driver.take()) == (STANZAS, "unexpected-request")
    driver.feed(bind_iq("res"))
    assert driver.core.state is State.BOUND and driver.core.sm is None


@pytest.mark.parametrize("bound", [False, True])
def test_resume_fails_item_not_found(bound: bool) -> None:
    driver = login() if bound else tls_driver()
    if not bound:
        driver.feed(auth_plain("alice", PASSWORD))
        driver.feed(HEADER)
        driver.take()
    driver.feed(f"<resume xmlns='{SM}' previd='some-id' h='3'/>".encode())
    assert failed_condition(driver.take()) == (STANZAS, "item-not-found")
    assert driver.core.state is not State.CLOSED


def test_r_is_answered_with_every_stanza_handled_since_enable() -> None:
    driver = login()
    driver.feed(b"<message to='bob@localhost'/>")  # before enable: not counted (§4)
    driver.feed(ENABLE)
    driver.take()
    # Passed on, answered by the core (a malformed iq), and a session iq: all handled.
    driver.feed(
        b"<message to='bob@localhost'/><iq type='get'/><iq type='set' id='s'>"
        b"<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq><presence/>"
    )
    driver.take()
    driver.feed(R)
    assert answer_h(driver.take()) == 4


def test_r_waits_for_the_stanzas_before_it_to_be_handled() -> None:
    """Our h counts a message once the server has handled it (stored), not
    when it was parsed: an <r/> behind two unhandled stanzas is answered once
    both are, with the count then (docs/delivery.md)."""
    driver = enabled()
    driver.hold_stanzas = True
    driver.feed(b"<message to='bob@localhost'/><message to='bob@localhost'/>" + R)
    assert driver.take() == b""
    sm = driver.core.sm
    assert sm is not None
    sm.stanza_handled()
    assert driver.take() == b""
    sm.stanza_handled()
    assert answer_h(driver.take()) == 2
    driver.feed(R)  # nothing outstanding: answered at once
    assert answer_h(driver.take()) == 2


def test_core_replies_count_as_sent() -> None:
    # The client counts the error the core sent it; so must the server, or the
    # client's h would look too high.
    driver = enabled()
    driver.feed(b"<iq type='get'/>")  # bad-request from the core itself
    message = etree.fromstring(b"<message xmlns='jabber:client' id='x'/>")
    driver.core.stanza_error_reply(message, StanzaError(StanzaCondition.GONE))
    send(driver, 1)
    assert driver.feed(a(3)) == [Acknowledged(3)]
    assert driver.core.sm is not None and driver.core.sm.sent == 3


def test_acks_become_events_when_they_move() -> None:
    driver = enabled()
    send(driver, 5)
    assert driver.feed(a(2)) == [Acknowledged(2)]
    assert driver.feed(a(2)) == []  # nothing new
    assert driver.feed(a(5)) == [Acknowledged(5)]
    assert driver.core.sm is not None and driver.core.sm.acked == 5


def test_h_higher_than_sent_is_a_stream_error() -> None:
    driver = enabled()
    send(driver, 2)
    error = failed(driver.feed(a(3)))
    assert error.condition is StreamCondition.UNDEFINED_CONDITION
    assert error.app_condition == f"{{{SM}}}handled-count-too-high"
    out = driver.take()
    assert stream_error(error) in out
    app = etree.fromstring(stream_error(error).replace(b"stream:", b""))[-1]
    assert app.tag == f"{{{SM}}}handled-count-too-high"
    assert dict(app.attrib) == {"h": "3", "send-count": "2"}
    assert driver.core.state is State.CLOSED


@pytest.mark.parametrize("h", ["", "-1", "x", str(MODULUS)])
def test_bad_h_is_bad_format(h: str) -> None:
    driver = enabled()
    assert failed(driver.feed(f"<a xmlns='{SM}' h='{h}'/>".encode())).condition is StreamCondition.BAD_FORMAT


@pytest.mark.parametrize("element", [R, a(0)])
def test_r_and_a_before_enable_end_the_stream(element: bytes) -> None:
    driver = login()
    assert failed(driver.feed(element)).condition is StreamCondition.UNSUPPORTED_STANZA_TYPE


def test_server_asks_every_n_stanzas_and_on_request() -> None:
    driver = enabled()
    send(driver, REQUEST_EVERY - 1)
    assert f"{{{SM}}}r" not in tags(driver.take())
    send(driver, 1)
    assert tags(driver.take()).count(f"{{{SM}}}r") == 1
    send(driver, REQUEST_EVERY * 2)
    assert tags(driver.take()).count(f"{{{SM}}}r") == 2
    assert driver.core.sm is not None
    driver.core.sm.request()
    assert tags(driver.take()) == [f"{{{SM}}}r"]


def test_no_sm_state_until_enabled() -> None:
    driver = login()
    assert driver.core.sm is None


def test_counts_wrap_at_2_to_the_32() -> None:
    driver = enabled()
    sm = driver.core.sm
    assert sm is not None
    driver.core._link.stanzas_out = MODULUS - 2  # 2^32 stanzas are too many to send
    sm.acked = MODULUS - 3
    send(driver, 3)  # MODULUS-1, 0, 1
    assert driver.core.sm is not None and driver.core.sm.sent == 1
    assert driver.feed(a(0)) == [Acknowledged(0)]
    assert driver.feed(a(1)) == [Acknowledged(1)]
    assert failed(driver.feed(a(2))).app_condition == f"{{{SM}}}handled-count-too-high"


def test_covers_is_serial_number_arithmetic() -> None:
    assert covers(5, 5) and covers(6, 5) and not covers(4, 5)
    assert covers(0, MODULUS - 1) and not covers(MODULUS - 1, 0)


def test_no_feature_and_no_handling_when_disabled() -> None:
    driver = login(make_core(stream_management=False))
    assert failed(driver.feed(ENABLE)).condition is StreamCondition.UNSUPPORTED_STANZA_TYPE


SESSION = ENABLE + b"<message to='bob@localhost'><body>x</body></message>" + R + b"<presence/>" + R + a(0)


def _run(chunks: list[bytes]) -> tuple[list[object], list[int]]:
    driver = login()
    out = b""
    for chunk in chunks:
        driver.feed(chunk)
        out += driver.take()
    send(driver, 3)
    driver.feed(a(3))
    events = [(type(e).__name__, e.element.tag) if isinstance(e, StanzaIn) else e for e in driver.events]
    answers = [int(dict(i[1])["h"]) for i in items(out) if isinstance(i, tuple) and i[0] == f"{{{SM}}}a"]
    return events, answers


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(SESSION)), max_size=20))
def test_any_chunking_gives_the_same_answers(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [SESSION[a:b] for a, b in zip([0, *points], [*points, len(SESSION)], strict=True)]
    expected = (
        [
            StreamManagementEnabled(),
            ("StanzaIn", "{jabber:client}message"),
            ("StanzaIn", "{jabber:client}presence"),
            Acknowledged(3),
        ],
        [1, 2],
    )
    assert _run(chunks) == expected
