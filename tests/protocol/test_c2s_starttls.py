"""The c2s stream core before authentication: stream features and STARTTLS (RFC 6120 §5)."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree
from protocol.xmpp_core_helpers import (
    FOOTER,
    HEADER,
    Driver,
    canon,
    failed,
    features_of_output,
    items,
    make_core,
    stream_error_condition,
)

from xmlchat.errors import StreamCondition
from xmlchat.protocol.xmpp import C2SStream, LocalProtocolError, StartTls, State, StreamFailed


def test_pre_tls_features_require_starttls_and_offer_no_sasl() -> None:
    driver = Driver(make_core())
    driver.feed(HEADER)
    assert items(driver.take())[1] == canon(
        etree.fromstring(
            "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
            "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"
        )
    )
    assert driver.core.state is State.NEGOTIATING


def features_of(core: C2SStream, header: bytes = HEADER) -> list[Any]:
    driver = Driver(core)
    driver.feed(header)
    features = items(driver.take())[1]
    return [(etree.QName(c[0]).localname, [g[2] for g in c[3]]) for c in features[3]]


def test_optional_tls_offers_scram_but_not_plain_in_clear() -> None:
    assert features_of(make_core(require_encryption=False)) == [
        ("starttls", []),
        ("mechanisms", ["SCRAM-SHA-256", "SCRAM-SHA-1"]),
    ]


def test_plain_in_clear_when_allowed() -> None:
    core = make_core(tls_available=False, require_encryption=False, allow_unencrypted_plain_auth=True)
    assert features_of(core) == [("mechanisms", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])]


def test_direct_tls_offers_sasl_at_once() -> None:
    core = make_core(tls_available=False, tls_active=True)
    assert features_of(core) == [("mechanisms", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])]


def test_direct_tls_with_channel_binding_offers_plus() -> None:
    cb = {"tls-server-end-point": b"\x07" * 32}
    core = make_core(tls_available=False, tls_active=True, channel_binding=cb)
    assert features_of(core) == [
        ("mechanisms", ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]),
        ("sasl-channel-binding", [""]),
    ]


def test_require_encryption_without_tls_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        C2SStream(["localhost"], tls_available=False)


def test_starttls_restarts_with_a_fresh_stream() -> None:
    driver = Driver(make_core())
    events = driver.feed(HEADER + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert events == [StartTls()]
    assert driver.core.state is State.CONNECTED and driver.core.encrypted
    assert items(driver.take())[-1] == canon(
        etree.fromstring("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    )
    driver.feed(HEADER)
    assert features_of_output(driver.take()) == ["mechanisms"]


def test_data_after_starttls_in_the_same_read_is_refused() -> None:
    # RFC 6120 §5.4.3.3; the STARTTLS injection attack (CVE-2011-0411 family).
    driver = Driver(make_core())
    events = driver.feed(
        HEADER
        + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'"
    )
    assert failed(events).condition is StreamCondition.POLICY_VIOLATION
    out = driver.take()
    assert b"proceed" not in out and stream_error_condition(out) == "policy-violation"
    assert out.endswith(FOOTER)


def test_data_while_tls_is_pending_is_refused() -> None:
    core = make_core()
    core.receive_data(HEADER + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert core.state is State.TLS_PENDING
    assert core.receive_data(b"  \n") == []  # whitespace is harmless
    assert failed(core.receive_data(b"<iq/>")).condition is StreamCondition.POLICY_VIOLATION


def test_starttls_not_offered_gets_the_tls_failure() -> None:
    # RFC 6120 §5.4.2.2: <failure/> in the TLS namespace, then close.
    core = make_core(tls_available=False, require_encryption=False)
    core.receive_data(HEADER)
    core.data_to_send()
    events = core.receive_data(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert isinstance(events[-1], StreamFailed)
    assert core.data_to_send() == b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" + FOOTER


def test_tls_started_out_of_turn() -> None:
    with pytest.raises(LocalProtocolError):
        make_core().tls_started(None)
