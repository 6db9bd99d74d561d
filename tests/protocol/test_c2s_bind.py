"""Resource binding (RFC 6120 §7) and the session iq on the c2s stream core."""

from __future__ import annotations

import pytest
from lxml import etree
from protocol.xmpp_core_helpers import (
    HEADER,
    PASSWORD,
    Driver,
    auth_plain,
    bind_iq,
    features_of_output,
    items,
    login,
    make_core,
    tls_driver,
)

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID
from xmlchat.protocol.xmpp import BindRequest, LocalProtocolError, StanzaIn, State


def authed_driver() -> Driver:
    driver = tls_driver()
    driver.feed(auth_plain("alice", PASSWORD))
    driver.feed(HEADER)
    assert features_of_output(driver.take()) == ["bind", "session", "sm"]
    driver.events.clear()
    return driver


def test_post_auth_features() -> None:
    driver = tls_driver()
    driver.feed(auth_plain("alice", PASSWORD))
    driver.feed(HEADER)
    features = next(i for i in items(driver.take()) if isinstance(i, tuple) and i[0].endswith("features"))
    session = features[3][1]
    assert session[0] == "{urn:ietf:params:xml:ns:xmpp-session}session"
    assert session[3][0][0] == "{urn:ietf:params:xml:ns:xmpp-session}optional"


def test_extra_post_auth_features() -> None:
    ver = etree.Element("{urn:xmpp:features:rosterver}ver", nsmap={None: "urn:xmpp:features:rosterver"})
    driver = Driver(make_core(features=[ver]))
    driver.feed(HEADER + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    driver.feed(HEADER + auth_plain("alice", PASSWORD))
    driver.feed(HEADER)
    assert features_of_output(driver.take()) == ["bind", "session", "sm", "ver"]


def test_bind_with_server_chosen_resource() -> None:
    driver = authed_driver()
    events = driver.core.receive_data(bind_iq(None))
    assert events == [BindRequest("b1", None)] and driver.core.state is State.BINDING
    driver.core.bound(JID("alice", "localhost", "abc123"))
    assert items(driver.core.data_to_send()) == items(
        b"<iq id='b1' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        b"<jid>alice@localhost/abc123</jid></bind></iq>"
    )
    assert driver.core.jid == JID("alice", "localhost", "abc123")


def test_bind_resource_is_normalised_or_refused() -> None:
    driver = authed_driver()
    assert driver.core.receive_data(bind_iq("Caf\u0065\u0301")) == [BindRequest("b1", "Caf\u00e9")]
    driver.core.bind_failed(StanzaError(StanzaCondition.CONFLICT))
    assert driver.core.state is State.UNBOUND
    out = items(driver.core.data_to_send())[0]
    assert ("type", "error") in out[1] and out[3][0][3][0][0].endswith("}conflict")
    driver.core.receive_data(bind_iq("\ue000private", iq_id="b2"))
    reply = items(driver.core.data_to_send())[0]
    assert reply[3][0][3][0][0].endswith("}bad-request") and driver.core.state is State.UNBOUND


def test_bound_must_be_the_users_full_jid() -> None:
    driver = authed_driver()
    driver.core.receive_data(bind_iq("r"))
    with pytest.raises(LocalProtocolError):
        driver.core.bound(JID("mallory", "localhost", "r"))
    with pytest.raises(LocalProtocolError):
        driver.core.bound(JID("alice", "localhost"))


def test_session_iq_before_and_after_bind() -> None:
    # xmpppy sends it after bind; RFC 3921 clients may send it before.
    driver = authed_driver()
    session = b"<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"
    assert driver.feed(session) == []
    assert items(driver.take()) == items(b"<iq type='result' id='s1'/>")
    driver.feed(bind_iq("r"))
    driver.take()
    assert driver.feed(session.replace(b"s1", b"s2")) == []
    assert items(driver.take()) == items(b"<iq type='result' id='s2' to='alice@localhost/r'/>")


def test_second_bind_is_not_allowed() -> None:
    driver = login()
    assert driver.feed(bind_iq("again", iq_id="b9")) == []
    assert items(driver.take())[0][3][0][3][0][0].endswith("}not-allowed")


def test_stanzas_pipelined_after_bind_are_held_until_bound() -> None:
    driver = authed_driver()
    events = driver.core.receive_data(bind_iq("r") + b"<presence/><message to='bob@localhost'/>")
    assert events == [BindRequest("b1", "r")]
    assert driver.core.receive_data(b"<presence type='unavailable'/>") == []
    events = driver.core.bound(JID("alice", "localhost", "r"))
    assert [type(e) for e in events] == [StanzaIn, StanzaIn, StanzaIn]
    assert all(isinstance(e, StanzaIn) and e.element.get("from") == "alice@localhost/r" for e in events)
