"""The native core's receipts (docs/native-protocol.md, "Receipts"): <receipts/>
at login, <seq> on messages, <received> from the client."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from protocol import native_core_helpers as helpers
from protocol.native_core_helpers import OPEN, split

from xmlchat.errors import StanzaCondition
from xmlchat.protocol import native
from xmlchat.protocol.native import NativeServerStream, schema
from xmlchat.xml.stream import StreamLimits

LOGIN = b"<login><receipts/><user>alice</user><password>pw</password></login>"
STAMP = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
# Acknowledgements pipelined behind the login (the client cannot have the
# messages yet, so the test sends them after the server wrote three).
RECEIPTS = b"<received><seq>1</seq></received><received>\n<seq> 3 </seq></received><ping/>"


def logged_in(login: bytes = LOGIN) -> NativeServerStream:
    return helpers.logged_in(login)


def write(core: NativeServerStream, seqs: range) -> None:
    for seq in seqs:
        core.send_message(f"m{seq}", "bob@localhost", "alice@localhost", STAMP, "hi", seq)


def test_login_asks_for_receipts() -> None:
    core = NativeServerStream("localhost", StreamLimits(), 10_000)
    events = core.receive_data(OPEN + LOGIN)
    assert events[-1] == native.LoginRequested("alice", "pw", None, receipts=True)
    events = NativeServerStream("localhost", StreamLimits(), 10_000).receive_data(
        OPEN + b"<login><user>alice</user><password>pw</password></login>"
    )
    assert events[-1] == native.LoginRequested("alice", "pw", None, receipts=False)


def run(chunks: list[bytes]) -> tuple[list[native.Event], bytes]:
    core = logged_in()
    write(core, range(1, 4))
    events: list[native.Event] = []
    for chunk in chunks:
        events += core.receive_data(chunk)
    return events, core.data_to_send()


def test_receipts_become_events() -> None:
    events, _ = run([RECEIPTS])
    assert events == [native.ReceiptReceived(1), native.ReceiptReceived(3), native.PingReceived(None)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0), max_size=20))
def test_any_chunking_gives_the_same_receipts(cuts: list[int]) -> None:
    assert run(split(RECEIPTS, cuts)) == run([RECEIPTS])


def test_messages_carry_seq_and_stay_schema_valid() -> None:
    core = logged_in()
    write(core, range(1, 3))
    core.send_message("m3", "bob@localhost", "alice@localhost", STAMP, "no number")
    root = etree.fromstring(OPEN + core.data_to_send() + b"</session>")
    assert [m.findtext(f"{{{native.NS}}}seq") for m in root] == ["1", "2", None]
    for stanza in root:
        assert schema().validate(stanza), schema().error_log


def test_received_without_asking_is_bad_request() -> None:
    core = logged_in(b"<login><user>alice</user><password>pw</password></login>")
    write(core, range(1, 2))
    core.data_to_send()
    assert core.receive_data(b"<received><seq>1</seq></received><ping/>") == [native.PingReceived(None)]
    out = core.data_to_send()
    assert b"<condition>bad-request</condition>" in out and b"did not ask for receipts" in out
    assert not core.closed


def test_received_before_login_is_not_authorized() -> None:
    core = NativeServerStream("localhost", StreamLimits(), 10_000)
    assert core.receive_data(OPEN + b"<received><seq>1</seq></received>") == [native.Opened()]
    assert b"<condition>not-authorized</condition>" in core.data_to_send()


def test_received_above_what_was_sent_closes_the_stream() -> None:
    core = logged_in()
    write(core, range(1, 3))
    core.data_to_send()
    events = core.receive_data(b"<received><seq>3</seq></received><ping/>")
    assert len(events) == 1 and isinstance(events[0], native.Failed)
    assert events[0].error.condition == "undefined-condition"
    out = core.data_to_send()
    assert b"received 3, but the last message sent was 2" in out and out.endswith(b"</session>")
    assert core.closed


def test_bad_seq_is_a_schema_error() -> None:
    core = logged_in()
    write(core, range(1, 2))
    core.data_to_send()
    for bad in (b"0", b"-1", b"x", b"", b"1" * 19):
        assert core.receive_data(b"<received><seq>" + bad + b"</seq></received>") == []
        assert b"<condition>bad-request</condition>" in core.data_to_send()
    assert core.receive_data(b"<received/>") == []
    assert not core.closed


def test_seq_from_the_client_is_ignored() -> None:
    core = logged_in()
    events = core.receive_data(b"<message><to>bob</to><body>x</body><seq>7</seq></message>")
    assert events == [native.MessageReceived("bob", "x", None, None)]


def test_receipts_are_granted_by_the_login_that_asked() -> None:
    core = NativeServerStream("localhost", StreamLimits(), 10_000)
    core.receive_data(OPEN + LOGIN)
    # Refused, then a login without <receipts/>: the session has none.
    events = core.login_failed(StanzaCondition.NOT_AUTHORIZED, "no")
    assert events == []
    core.receive_data(b"<login><user>alice</user><password>pw</password></login>")
    core.logged_in("alice@localhost/r")
    assert not core.receipts
