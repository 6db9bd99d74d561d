"""The c2s stream core's headers, stream errors and closing (RFC 6120 §4)."""

from __future__ import annotations

import pytest
from lxml import etree
from protocol.xmpp_core_helpers import (
    FOOTER,
    HEADER,
    PASSWORD,
    auth_plain,
    counter,
    failed,
    items,
    login,
    make_core,
    stream_error_condition,
    tls_driver,
)

from xmlchat.errors import StanzaTooBig, StreamCondition, StreamError
from xmlchat.protocol.xmpp import C2SStream, Closed, StanzaIn, StartTls, State


@pytest.mark.parametrize(
    ("header", "condition"),
    [
        (HEADER.replace(b"to='localhost'", b"to='example.org'"), "host-unknown"),
        (HEADER.replace(b" to='localhost'", b""), "improper-addressing"),
        (HEADER.replace(b"to='localhost'", b"to='alice@localhost'"), "improper-addressing"),
        (
            HEADER.replace(b"http://etherx.jabber.org/streams", b"http://example.org/streams"),
            "invalid-namespace",
        ),
        (HEADER.replace(b"xmlns='jabber:client'", b"xmlns='jabber:server'"), "invalid-namespace"),
        (HEADER.replace(b" to='localhost' version='1.0'", b" to='localhost'"), "unsupported-version"),
        (
            HEADER.replace(b"to='localhost' version='1.0'", b"to='localhost' version='2.0'"),
            "unsupported-version",
        ),
        (
            HEADER.replace(b"to='localhost' version='1.0'", b"to='localhost' version='x'"),
            "unsupported-version",
        ),
        (
            HEADER.replace(b"<stream:stream", b"<stream:strom").replace(b"'>", b"'/>")[:-2] + b">",
            "bad-format",
        ),
        (b"<?xml version='1.0'?><!-- hi --><stream:stream/>", "restricted-xml"),
        (b"hello", "not-well-formed"),
    ],
)
def test_header_errors_are_answered_after_our_header(header: bytes, condition: str) -> None:
    core = make_core()
    events = core.receive_data(header)
    assert failed(events).condition.value == condition
    out = core.data_to_send()
    found = items(out)
    # §4.9.1.2: our header first, from a host we serve, then the error and the close.
    assert found[0] == (
        "header",
        {
            "from": "localhost",
            "version": "1.0",
            "id": "id1",
            "{http://www.w3.org/XML/1998/namespace}lang": "en",
        },
    )
    assert stream_error_condition(out) == condition
    assert found[-1] == "footer"
    assert core.state is State.CLOSED
    assert core.receive_data(HEADER) == []


def test_version_1_1_is_answered_with_1_0() -> None:
    core = make_core()
    assert (
        core.receive_data(HEADER.replace(b"to='localhost' version='1.0'", b"to='localhost' version='1.1'"))
        == []
    )
    assert b"version='1.0'" in core.data_to_send()


def test_prefix_free_canonicalization() -> None:
    # RFC 6120 §4.8.2: no default namespace; every stanza qualified.
    header = (
        b"<s:stream xmlns:s='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"
        b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    )
    assert make_core().receive_data(header) == [StartTls()]


def test_virtual_hosts_and_case() -> None:
    core = C2SStream(["localhost", "Example.ORG"], tls_available=True, id_factory=counter("i"))
    core.receive_data(HEADER.replace(b"to='localhost'", b"to='EXAMPLE.org'"))
    assert core.host == "example.org"
    assert b"from='example.org'" in core.data_to_send()


def test_restart_to_another_host_is_refused() -> None:
    core = C2SStream(["localhost", "example.org"], tls_available=True)
    core.receive_data(HEADER + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    core.tls_started(None)
    events = core.receive_data(HEADER.replace(b"to='localhost'", b"to='example.org'"))
    assert failed(events).condition is StreamCondition.HOST_UNKNOWN


def test_unauthenticated_stanza_size_limit() -> None:
    core = make_core()
    core.receive_data(HEADER)
    core.data_to_send()
    events = core.receive_data(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>" + b"x" * 10_001)
    error = failed(events)
    assert error.condition is StreamCondition.POLICY_VIOLATION
    out = core.data_to_send()
    assert b'<stanza-too-big xmlns="urn:xmpp:errors"/>' in out


def test_authenticated_stanza_size_limit_is_larger() -> None:
    driver = login()
    body = b"x" * 20_000
    events = driver.feed(b"<message to='bob@localhost'><body>" + body + b"</body></message>")
    assert isinstance(events[0], StanzaIn)
    events = driver.feed(b"<message><body>" + b"x" * (256 * 1024 + 10_000) + b"</body></message>")
    assert failed(events).app_condition == "stanza-too-big"


def test_stanza_before_authentication() -> None:
    core = make_core()
    core.receive_data(HEADER)
    events = core.receive_data(b"<message to='bob@localhost'><body>hi</body></message>")
    assert failed(events).condition is StreamCondition.NOT_AUTHORIZED


def test_stanza_before_bind() -> None:
    driver = tls_driver()
    driver.feed(auth_plain("alice", PASSWORD))
    driver.feed(HEADER)
    events = driver.feed(b"<presence/>")
    assert failed(events).condition is StreamCondition.NOT_AUTHORIZED


@pytest.mark.parametrize(
    ("element", "condition"),
    [
        (b"<foo xmlns='urn:example'/>", StreamCondition.UNSUPPORTED_STANZA_TYPE),
        # XEP-0198 §4: <r/> belongs to a stream with management enabled.
        (b"<r xmlns='urn:xmpp:sm:3'/>", StreamCondition.UNSUPPORTED_STANZA_TYPE),
        (
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'/>",
            StreamCondition.UNSUPPORTED_STANZA_TYPE,
        ),
        (b"<message xmlns='jabber:server'/>", StreamCondition.INVALID_NAMESPACE),
        (b"<iq xmlns='' type='get' id='1'/>", StreamCondition.INVALID_NAMESPACE),
    ],
)
def test_unknown_top_level_elements(element: bytes, condition: StreamCondition) -> None:
    driver = login()
    assert failed(driver.feed(element)).condition is condition


def test_parser_errors_become_stream_errors() -> None:
    driver = login()
    events = driver.feed(b"<message><body>hi</body></message><presence></message>")
    assert isinstance(events[0], StanzaIn)  # what completed before the error is delivered
    assert failed(events).condition is StreamCondition.NOT_WELL_FORMED
    assert stream_error_condition(driver.take()) == "not-well-formed"


def test_send_stream_error_with_text_and_app_condition() -> None:
    driver = login()
    driver.core.send_stream_error(StanzaTooBig("too big"))
    out = driver.take()
    assert out == (
        b'<stream:error><policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-streams"/>'
        b'<text xmlns="urn:ietf:params:xml:ns:xmpp-streams" xml:lang="en">too big</text>'
        b'<stanza-too-big xmlns="urn:xmpp:errors"/></stream:error></stream:stream>'
    )
    assert driver.core.state is State.CLOSED


def test_stream_error_before_any_header_sends_one_first() -> None:
    core = make_core()
    core.send_stream_error(StreamError(StreamCondition.SYSTEM_SHUTDOWN))
    assert items(core.data_to_send())[0][0] == "header"


# -- closing (RFC 6120 §4.4) ---------------------------------------------------------------------------


def test_peer_closes() -> None:
    driver = login()
    assert driver.feed(FOOTER) == [Closed()]
    assert driver.take() == FOOTER
    assert driver.core.state is State.CLOSED


def test_we_close_then_the_peer_does() -> None:
    driver = login()
    driver.core.close()
    assert driver.take() == FOOTER and driver.core.state is State.CLOSING
    assert driver.feed(b"<message><body>late</body></message>") == []  # nothing can be answered now
    driver.core.send_stanza(etree.fromstring("<message xmlns='jabber:client'/>"))  # dropped
    assert driver.feed(FOOTER) == [Closed()]
    assert driver.take() == b""  # no second closing tag


def test_closing_while_the_server_is_asked_cancels_the_request() -> None:
    core = make_core(tls_active=True, tls_available=False)
    core.receive_data(HEADER + auth_plain("alice", PASSWORD))
    core.data_to_send()
    core.close()
    assert core.state is State.CLOSING and core.data_to_send() == FOOTER
    assert core.password_checked(True) == []  # too late: a no-op, nothing after our footer
    assert core.data_to_send() == b""
    assert core.receive_data(FOOTER) == [Closed()]


def test_peer_stream_error() -> None:
    driver = login()
    events = driver.feed(
        b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
    )
    assert events == [Closed(peer_error="conflict")]
    assert driver.take() == FOOTER
