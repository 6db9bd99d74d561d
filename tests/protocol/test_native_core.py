"""The native protocol's sans-IO core: bytes in, events and bytes out."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from protocol.native_core_helpers import OPEN, new_core, split

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.protocol import native
from xmlchat.protocol.native import schema

SESSION = (
    OPEN
    + b"<login><user>alice</user><password>pw</password><resource>r1</resource></login>"
    + "<message><id>m1</id><to>bob</to><body>你好, 世界 &amp; &lt;tags&gt;</body></message>".encode()
    + b"  \n  <ping><id>p1</id></ping><contacts-get/><contact-add><jid>bob</jid></contact-add>"
    + b"<contact-remove><jid>bob</jid></contact-remove><pong/></session>"
)


def run(chunks: list[bytes]) -> tuple[list[native.Event], bytes]:
    core = new_core()
    events: list[native.Event] = []
    for chunk in chunks:
        new = core.receive_data(chunk)
        if any(isinstance(e, native.LoginRequested) for e in new):
            new += core.logged_in("alice@localhost/r1")
        events += new
    return events, core.data_to_send()


def test_a_whole_session() -> None:
    events, out = run([SESSION])
    assert events == [
        native.Opened(),
        native.LoginRequested("alice", "pw", "r1"),
        native.MessageReceived("bob", "你好, 世界 & <tags>", "m1", None),
        native.PingReceived("p1"),
        native.ContactsRequested(),
        native.ContactAddRequested("bob"),
        native.ContactRemoveRequested("bob"),
        native.PongReceived(),
        native.Closed(),
    ]
    assert out == (
        b"<session xmlns='urn:xmlchat:native:1' version='1' server='localhost'>"
        b"<login-ok><address>alice@localhost/r1</address></login-ok></session>"
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0), max_size=30))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    assert run(split(SESSION, cuts)) == run([SESSION])


def test_one_byte_at_a_time() -> None:
    assert run([SESSION[i : i + 1] for i in range(len(SESSION))]) == run([SESSION])


def test_every_server_stanza_is_schema_valid() -> None:
    core = new_core()
    core.receive_data(OPEN)
    core.logged_in("alice@localhost/r1")
    core.login_failed(StanzaCondition.NOT_AUTHORIZED, "wrong")
    stamp = datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)
    core.send_message("id1", "bob@localhost", "alice@localhost", stamp, "中文 \r\n <&>")
    core.send_ack("id1", stamp)
    big = 999_999_999_999_999_999  # the schema's largest <seq>
    core.send_message("id2", "bob@localhost", "alice@localhost", stamp, "numbered", seq=big)
    core.send_presence("bob@localhost", True)
    core.send_contacts([("bob@localhost", True), ("carol@localhost", False)])
    core.send_contacts([])
    core.send_blocklist(["bob@localhost", "example.org"], "b1")
    core.send_blocklist([])
    entry = native.HistoryMessage("a1", "id1", "bob@localhost", "alice@localhost", stamp, "中文 \r\n <&>")
    core.send_history([native.message_xml(entry)], False, "h1")
    core.send_history([], True)
    core.send_ping()
    core.send_pong("p1")
    core.send_error(StanzaError(StanzaCondition.BAD_REQUEST, "x" * 5000), "ref")
    data = core.data_to_send()
    root = etree.fromstring(data + b"</session>")
    assert len(root) == 15
    for stanza in root:
        assert schema().validate(stanza), (etree.tostring(stanza), schema().error_log)
    message = root[2]
    assert message.findtext(f"{{{native.NS}}}body") == "中文 \r\n <&>"  # CR survives
    assert message.findtext(f"{{{native.NS}}}time") == "2026-11-22T10:00:00.123Z"


def test_pipelined_stanzas_wait_for_the_login_answer() -> None:
    core = new_core()
    events = core.receive_data(OPEN + b"<login><user>a</user><password>b</password></login><ping/>")
    assert events == [native.Opened(), native.LoginRequested("a", "b", None)]
    assert core.login_failed(StanzaCondition.NOT_AUTHORIZED, "no") == [native.PingReceived(None)]


def test_before_login_only_login_ping_pong_logout() -> None:
    core = new_core()
    events = core.receive_data(OPEN + b"<message><to>bob</to><body>x</body></message><contacts-get/><ping/>")
    assert events == [native.Opened(), native.PingReceived(None)]
    out = core.data_to_send()
    assert out.count(b"<condition>not-authorized</condition>") == 2


def test_schema_errors_and_unknown_stanzas_keep_the_stream() -> None:
    core = new_core()
    core.receive_data(OPEN)
    core.logged_in("alice@localhost/r1")
    core.data_to_send()
    events = core.receive_data(
        b"<message><id>a</id><to>bob</to></message><ack><id>x</id></ack><x xmlns='urn:other'/><ping/>"
    )
    assert events == [native.PingReceived(None)]
    out = core.data_to_send().decode()
    assert out.count("<condition>bad-request</condition>") == 3 and "<id>a</id>" in out
    assert not core.closed


def test_fatal_errors_close_with_error_then_root() -> None:
    core = new_core()
    events = core.receive_data(OPEN + b"<login><user>a</user><password>" + b"p" * 20_000)
    assert isinstance(events[-1], native.Failed)
    assert events[-1].error.condition == "policy-violation"  # 10 000 bytes before login
    assert core.data_to_send().endswith(b"</error></session>")
    assert core.closed and core.receive_data(b"<ping/>") == []


def test_wrong_version_and_root() -> None:
    core = new_core()
    events = core.receive_data(b"<session xmlns='urn:xmlchat:native:1' version='2'>")
    assert isinstance(events[-1], native.Failed) and events[-1].error.condition == "unsupported-version"
    core = new_core()
    events = core.receive_data(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>")
    assert isinstance(events[-1], native.Failed) and events[-1].error.condition == "invalid-namespace"
    # The client gets our root first, so it can parse the error.
    assert core.data_to_send().startswith(b"<session xmlns='urn:xmlchat:native:1'")


def test_second_login_is_refused() -> None:
    core = new_core()
    core.receive_data(OPEN)
    core.logged_in("alice@localhost/r1")
    events = core.receive_data(b"<login><user>bob</user><password>pw</password></login>")
    assert events == [] and b"already logged in" in core.data_to_send()


def test_larger_limit_after_login() -> None:
    core = new_core()
    core.receive_data(OPEN)
    core.logged_in("alice@localhost/r1")
    body = "x" * 100_000
    events = core.receive_data(f"<message><to>bob</to><body>{body}</body></message>".encode())
    assert events == [native.MessageReceived("bob", body, None, None)]
