"""Blocking in the native protocol's sans-IO core (spec: docs/native-protocol.md, "Blocking")."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from ops.helpers import REPO
from protocol.native_core_helpers import OPEN, events_after_login, logged_in, split

from xmlchat.protocol import native
from xmlchat.protocol.native import MAX_BLOCK_JIDS, NativeServerStream, schema
from xmlchat.xml.stream import StreamLimits

REQUESTS = (
    b"<blocklist-get/><blocklist-get><id>b1</id></blocklist-get>"
    b"<block><jid>bob</jid></block>"
    b" <block><jid>bob</jid><id>b2</id><jid>carol@localhost</jid><jid>dave@example.org/phone</jid></block>"
    b"<unblock><id>b3</id><jid>bob</jid></unblock>\n<unblock/><unblock><id>b4</id></unblock>"
)
EXPECTED = [
    native.BlocklistRequested(None),
    native.BlocklistRequested("b1"),
    native.BlockRequested(("bob",), None),
    native.BlockRequested(("bob", "carol@localhost", "dave@example.org/phone"), "b2"),
    native.UnblockRequested(("bob",), "b3"),
    native.UnblockRequested((), None),
    native.UnblockRequested((), "b4"),
]


def test_requests_become_events_in_order() -> None:
    assert events_after_login([REQUESTS]) == EXPECTED


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0), max_size=30))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    assert events_after_login(split(REQUESTS, cuts)) == EXPECTED


def test_blocking_needs_a_login() -> None:
    core = NativeServerStream("localhost", StreamLimits(), 10_000)
    events = core.receive_data(OPEN + b"<blocklist-get/><block><jid>bob</jid></block><unblock/><ping/>")
    assert events == [native.Opened(), native.PingReceived(None)]
    assert core.data_to_send().count(b"<condition>not-authorized</condition>") == 3


def bad_request(stanza: bytes) -> str:
    """The text of the error ``stanza`` gets; fails unless it is bad-request with no event."""
    core = logged_in()
    assert core.receive_data(stanza) == []
    out = core.data_to_send().decode()
    assert out.startswith("<error><condition>bad-request</condition>"), out
    assert not core.closed
    return out


def test_schema_invalid_blocking_stanzas_are_bad_requests() -> None:
    for stanza in (
        b"<block/>",  # XEP-0191 §3.3: a block without an item is bad-request
        b"<block><id>b1</id></block>",
        b"<block><jid></jid></block>",
        b"<block><jid>bob smith</jid></block>",
        b"<block><jid>bob</jid><id>b1</id><id>b2</id></block>",
        b"<unblock><jid>bob</jid><name>x</name></unblock>",
        b"<blocklist-get><jid>bob</jid></blocklist-get>",
        b"<block><item jid='bob'/></block>",  # the XMPP form is not the native one
    ):
        assert "schema" in bad_request(stanza), stanza


def test_a_client_cannot_send_a_blocklist() -> None:
    assert "unknown stanza &lt;blocklist&gt;" in bad_request(
        b"<blocklist><jid>bob@localhost</jid></blocklist>"
    )


def test_at_most_100_jids_per_request() -> None:
    jids = b"".join(f"<jid>u{n}</jid>".encode() for n in range(MAX_BLOCK_JIDS))
    core = logged_in()
    events = core.receive_data(b"<block>" + jids + b"</block><unblock>" + jids + b"</unblock>")
    requests = (native.BlockRequested, native.UnblockRequested)
    assert [len(e.jids) for e in events if isinstance(e, requests)] == [100, 100]
    # 101 in one run is refused by the schema; split around the <id> by the core.
    assert "schema" in bad_request(b"<block>" + jids + b"<jid>x</jid></block>")
    text = bad_request(b"<unblock><jid>x</jid><id>u1</id>" + jids + b"</unblock>")
    assert "at most 100 &lt;jid&gt; in one &lt;unblock&gt;" in text and "<id>u1</id>" in text


def test_blocklists_the_server_sends_are_schema_valid() -> None:
    core = logged_in()
    core.send_blocklist([], "b1")
    core.send_blocklist([])
    core.send_blocklist(["bob@localhost", "example.org", "dave@example.org/phone"], "b2")
    core.send_blocklist(f"u{n}@localhost" for n in range(500))  # a list is not limited
    root = etree.fromstring(OPEN + core.data_to_send() + b"</session>")
    assert len(root) == 4
    for stanza in root:
        assert schema().validate(stanza), (etree.tostring(stanza), schema().error_log)
    assert [len(stanza) for stanza in root] == [1, 0, 4, 500]


def spec_example() -> list[tuple[str, bytes]]:
    """The C:/S: lines of the example in the spec's "Blocking" section."""
    text = (REPO / "docs" / "native-protocol.md").read_text()
    section = text.split("## Blocking", 1)[1].split("```", 2)[1]
    return [(m[1], m[2].encode()) for m in re.finditer(r"^([CS]): (.*)$", section, re.M)]


def test_the_spec_example_is_what_the_core_reads_and_writes() -> None:
    """Byte for byte: the client lines parse to these events; the server's
    blocklist lines are what send_blocklist writes for them."""
    core = logged_in()
    blocked: list[str] = []
    for side, line in spec_example():
        if side == "C":
            events = core.receive_data(line)
            assert len(events) == 1, line
            event = events[0]
            if isinstance(event, native.BlockRequested):
                blocked += [j if "@" in j else f"{j}@localhost" for j in event.jids]
            elif isinstance(event, native.UnblockRequested):
                gone = {j if "@" in j else f"{j}@localhost" for j in event.jids}
                blocked = [j for j in blocked if event.jids and j not in gone]
            if isinstance(event, native.BlocklistRequested | native.BlockRequested | native.UnblockRequested):
                core.send_blocklist(blocked, event.id)
            else:
                assert event == native.MessageReceived("bob", "still there?", "c3", None)
                continue
            assert core.data_to_send() == next_server_line(line)


def next_server_line(client_line: bytes) -> bytes:
    lines = spec_example()
    index = next(i for i, (side, text) in enumerate(lines) if side == "C" and text == client_line)
    side, text = lines[index + 1]
    assert side == "S"
    return text
