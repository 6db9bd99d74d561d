"""SASL over the c2s stream (RFC 6120 §6), driven with bytes — no sockets."""

from __future__ import annotations

import base64

import pytest
import scramp
from lxml import etree
from protocol.xmpp_core_helpers import (
    FOOTER,
    HEADER,
    PASSWORD,
    Driver,
    auth_plain,
    failed,
    features_of_output,
    items,
    make_core,
    stream_error_condition,
    tls_driver,
)

from xmlchat.errors import StanzaCondition, StanzaError, StreamCondition, StreamError
from xmlchat.jid import JID
from xmlchat.protocol.sasl import SaslCondition
from xmlchat.protocol.xmpp import (
    Authenticated,
    AuthFailed,
    LocalProtocolError,
    NeedCredentials,
    NeedPasswordCheck,
    State,
)


def sasl_reply(data: bytes) -> tuple[str, str]:
    item = items(data)[0]
    return etree.QName(item[0]).localname, item[2] or (
        etree.QName(item[3][0][0]).localname if item[3] else ""
    )


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_scram_login_with_scramp_client(mechanism: str) -> None:
    driver = tls_driver()
    client = scramp.ScramClient([mechanism], "alice", PASSWORD)
    first = base64.b64encode(client.get_client_first().encode()).decode()
    events = driver.feed(
        f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mechanism}'>{first}</auth>".encode()
    )
    assert events == [NeedCredentials("alice", mechanism, "localhost")]
    kind, challenge = sasl_reply(driver.take())
    assert kind == "challenge"
    client.set_server_first(base64.b64decode(challenge).decode())
    final = base64.b64encode(client.get_client_final().encode()).decode()
    events = driver.feed(f"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{final}</response>".encode())
    assert events == [Authenticated(JID("alice", "localhost"))]
    kind, server_final = sasl_reply(driver.take())
    assert kind == "success"
    client.set_server_final(base64.b64decode(server_final).decode())
    assert driver.core.state is State.AUTHENTICATED and driver.core.user == JID("alice", "localhost")


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_scram_wrong_password_over_the_stream(mechanism: str) -> None:
    driver = tls_driver()
    client = scramp.ScramClient([mechanism], "alice", "wrong")
    first = base64.b64encode(client.get_client_first().encode()).decode()
    driver.feed(
        f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mechanism}'>{first}</auth>".encode()
    )
    client.set_server_first(base64.b64decode(sasl_reply(driver.take())[1]).decode())
    final = base64.b64encode(client.get_client_final().encode()).decode()
    assert driver.feed(f"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{final}</response>".encode()) == [
        AuthFailed(JID("alice", "localhost"), "not-authorized")
    ]
    assert sasl_reply(driver.take()) == ("failure", "not-authorized")
    assert driver.core.state is State.NEGOTIATING and driver.core.user is None


def test_scram_plus_over_the_stream() -> None:
    cb = {"tls-server-end-point": b"\x09" * 32}
    driver = Driver(make_core(), channel_binding=cb)
    driver.feed(HEADER + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    driver.feed(HEADER)
    assert "sasl-channel-binding" in features_of_output(driver.take())
    client = scramp.ScramClient(
        ["SCRAM-SHA-256-PLUS"],
        "alice",
        PASSWORD,
        channel_binding=("tls-server-end-point", cb["tls-server-end-point"]),
    )
    first = base64.b64encode(client.get_client_first().encode()).decode()
    mechanism = "SCRAM-SHA-256-PLUS"
    driver.feed(
        f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mechanism}'>{first}</auth>".encode()
    )
    client.set_server_first(base64.b64decode(sasl_reply(driver.take())[1]).decode())
    final = base64.b64encode(client.get_client_final().encode()).decode()
    events = driver.feed(f"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{final}</response>".encode())
    assert events == [Authenticated(JID("alice", "localhost"))]


def test_plain_refused_in_clear() -> None:
    core = make_core(tls_available=False, require_encryption=False)
    driver = Driver(core)
    driver.feed(HEADER)
    driver.take()
    assert driver.feed(auth_plain("alice", PASSWORD)) == [AuthFailed(None, "encryption-required")]
    assert sasl_reply(driver.take()) == ("failure", "encryption-required")  # RFC 6120 §6.5.4


def test_plain_in_clear_when_allowed_logs_in() -> None:
    core = make_core(tls_available=False, require_encryption=False, allow_unencrypted_plain_auth=True)
    driver = Driver(core)
    driver.feed(HEADER)
    events = driver.feed(auth_plain("alice", PASSWORD))
    assert events == [
        NeedPasswordCheck("alice", PASSWORD, "localhost"),
        Authenticated(JID("alice", "localhost")),
    ]


def test_auth_before_required_tls() -> None:
    driver = Driver(make_core())
    driver.feed(HEADER)
    driver.take()
    driver.feed(
        b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1hLHI9eA==</auth>"
    )
    assert sasl_reply(driver.take()) == ("failure", "encryption-required")


@pytest.mark.parametrize(
    ("auth", "condition"),
    [
        (b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='DIGEST-MD5'/>", "invalid-mechanism"),
        (b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>", "invalid-mechanism"),
        (
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!notbase64</auth>",
            "incorrect-encoding",
        ),
        (
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>YWJj</auth>",
            "malformed-request",
        ),
        (b"<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>", "aborted"),
        (b"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>YWJj</response>", "malformed-request"),
        (auth_plain("bob", "pw", authzid="alice@localhost"), "invalid-authzid"),
        (auth_plain("alice", "wrong"), "not-authorized"),
        (auth_plain("nobody", "pw"), "not-authorized"),
        (auth_plain("al@ice@x", "pw"), "not-authorized"),
        (auth_plain("alice@elsewhere", "pw"), "not-authorized"),
    ],
)
def test_sasl_failures(auth: bytes, condition: str) -> None:
    driver = tls_driver()
    driver.feed(auth)
    assert sasl_reply(driver.take()) == ("failure", condition)
    assert driver.core.state is State.NEGOTIATING


def test_plain_authzid_naming_the_user_itself_is_fine() -> None:
    driver = tls_driver()
    events = driver.feed(auth_plain("alice", PASSWORD, authzid="alice@localhost"))
    assert events[-1] == Authenticated(JID("alice", "localhost"))


def test_plain_without_initial_response() -> None:
    driver = tls_driver()
    driver.feed(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'/>")
    assert sasl_reply(driver.take()) == ("challenge", "=")  # RFC 6120 §6.4.2: empty is '='
    blob = base64.b64encode(b"\0alice\0" + PASSWORD.encode())
    events = driver.feed(b"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + blob + b"</response>")
    assert events[-1] == Authenticated(JID("alice", "localhost"))


def test_abort_during_an_exchange() -> None:
    driver = tls_driver()
    driver.feed(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'/>")
    driver.take()
    driver.feed(b"<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
    assert sasl_reply(driver.take()) == ("failure", "aborted")
    assert driver.core.state is State.NEGOTIATING


def test_retries_then_policy_violation() -> None:
    driver = tls_driver()
    for _ in range(2):
        assert driver.feed(auth_plain("alice", "wrong")) == [
            NeedPasswordCheck("alice", "wrong", "localhost"),
            AuthFailed(JID("alice", "localhost"), "not-authorized"),
        ]
        assert sasl_reply(driver.take()) == ("failure", "not-authorized")
    events = driver.feed(auth_plain("alice", "wrong"))
    assert failed(events).condition is StreamCondition.POLICY_VIOLATION
    out = driver.take()
    assert sasl_reply(out) == ("failure", "not-authorized")  # the client still learns why
    assert stream_error_condition(out) == "policy-violation" and out.endswith(FOOTER)


def test_retry_after_a_failure_succeeds() -> None:
    driver = tls_driver()
    driver.feed(auth_plain("alice", "wrong"))
    events = driver.feed(auth_plain("alice", PASSWORD))
    assert events[-1] == Authenticated(JID("alice", "localhost"))


def test_auth_failed_lets_the_server_choose_the_condition() -> None:
    core = make_core(tls_active=True, tls_available=False)
    core.receive_data(HEADER + auth_plain("alice", PASSWORD))
    core.data_to_send()
    assert core.auth_failed(SaslCondition.ACCOUNT_DISABLED, "ask the admin") == [
        AuthFailed(JID("alice", "localhost"), "account-disabled")
    ]
    assert sasl_reply(core.data_to_send()) == ("failure", "account-disabled")


def test_answers_out_of_turn_raise() -> None:
    core = make_core()
    with pytest.raises(LocalProtocolError):
        core.provide_credentials(None)
    with pytest.raises(LocalProtocolError):
        core.password_checked(True)
    with pytest.raises(LocalProtocolError):
        core.auth_failed(SaslCondition.ABORTED)
    with pytest.raises(LocalProtocolError):
        core.bound(JID("alice", "localhost", "r"))
    with pytest.raises(LocalProtocolError):
        core.bind_failed(StanzaError(StanzaCondition.CONFLICT))


def test_answers_after_the_stream_ended_are_ignored() -> None:
    core = make_core(tls_active=True, tls_available=False)
    core.receive_data(HEADER + auth_plain("alice", PASSWORD))
    core.send_stream_error(StreamError(StreamCondition.SYSTEM_SHUTDOWN))
    assert core.password_checked(True) == []
    assert core.state is State.CLOSED


def test_input_is_held_while_the_server_checks_the_password() -> None:
    core = make_core(tls_active=True, tls_available=False)
    assert core.receive_data(HEADER + auth_plain("alice", PASSWORD)) == [
        NeedPasswordCheck("alice", PASSWORD, "localhost")
    ]
    # A client that does not wait for <success/>: held, then refused (RFC 6120 §6.4.6).
    assert core.receive_data(HEADER) == []
    events = core.password_checked(True)
    assert events[0] == Authenticated(JID("alice", "localhost"))
    assert failed(events).condition is StreamCondition.POLICY_VIOLATION


def test_held_input_is_bounded() -> None:
    core = make_core(tls_active=True, tls_available=False)
    core.receive_data(HEADER + auth_plain("alice", PASSWORD))
    assert core.receive_data(b" " * 9_000) == []
    error = failed(core.receive_data(b"x" * 2_000))
    assert error.condition is StreamCondition.POLICY_VIOLATION and error.app_condition == "stanza-too-big"
