"""``<history>`` in the native protocol's sans-IO core (spec: docs/native-protocol.md, "History")."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from ops.helpers import REPO
from protocol.native_core_helpers import OPEN, events_after_login, logged_in, split

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.protocol import native
from xmlchat.protocol.native import (
    DEFAULT_HISTORY,
    MAX_HISTORY,
    HistoryMessage,
    NativeServerStream,
    message_xml,
    newest_that_fit,
    schema,
)
from xmlchat.xml.stream import StreamLimits

REQUESTS = (
    b"<history/><history><id>h1</id></history>"
    b" <history><max>7</max><with>bob</with><id>h2</id></history>\n"
    b"<history><before>AbC-d_9</before><max> 100 </max><with>bob@localhost/phone</with></history>"
    b"<history><max>1</max><before>x</before><id>h3</id></history>"
)
EXPECTED = [
    native.HistoryRequested(None, DEFAULT_HISTORY, None, None),
    native.HistoryRequested(None, DEFAULT_HISTORY, None, "h1"),
    native.HistoryRequested("bob", 7, None, "h2"),
    native.HistoryRequested("bob@localhost/phone", 100, "AbC-d_9", None),
    native.HistoryRequested(None, 1, "x", "h3"),
]
STAMP = datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)


def test_requests_become_events_in_order() -> None:
    assert events_after_login([REQUESTS]) == EXPECTED


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0), max_size=30))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    assert events_after_login(split(REQUESTS, cuts)) == EXPECTED


def test_history_needs_a_login() -> None:
    core = NativeServerStream("localhost", StreamLimits(), 10_000)
    events = core.receive_data(OPEN + b"<history><id>h1</id></history><ping/>")
    assert events == [native.Opened(), native.PingReceived(None)]
    out = core.data_to_send()
    assert out.endswith(
        b"<error><condition>not-authorized</condition><text>log in first</text><id>h1</id></error>"
    )


def bad_request(stanza: bytes) -> str:
    """The error ``stanza`` gets; fails unless it is bad-request, no event, stream kept."""
    core = logged_in()
    assert core.receive_data(stanza) == []
    out = core.data_to_send().decode()
    assert out.startswith("<error><condition>bad-request</condition><text>schema: "), out
    assert not core.closed
    return out


def test_schema_invalid_history_requests_are_bad_requests() -> None:
    for stanza in (
        b"<history><max>0</max></history>",
        b"<history><max>-5</max></history>",
        b"<history><max>ten</max></history>",
        b"<history><max></max></history>",
        b"<history><with></with></history>",
        b"<history><with>bob smith</with></history>",
        b"<history><before></before></history>",
        b"<history><before>has space</before></history>",
        b"<history><before>" + b"x" * 65 + b"</before></history>",
        b"<history><max>5</max><max>6</max></history>",
        b"<history><start>2026-01-01T00:00:00Z</start></history>",
        b"<history>text</history>",
    ):
        bad_request(stanza)


def test_past_the_cap_is_a_bad_request_with_the_request_id() -> None:
    events = events_after_login([f"<history><max>{MAX_HISTORY}</max></history>".encode()])
    assert events == [native.HistoryRequested(None, MAX_HISTORY)]
    text = bad_request(f"<history><id>h9</id><max>{MAX_HISTORY + 1}</max></history>".encode())
    assert "maxInclusive" in text and text.endswith("<id>h9</id></error>")


def test_a_client_cannot_send_a_history_result() -> None:
    core = logged_in()
    assert core.receive_data(b"<history-result><id>h1</id><complete>true</complete></history-result>") == []
    assert core.data_to_send() == (
        b"<error><condition>bad-request</condition><text>unknown stanza &lt;history-result&gt;</text>"
        b"<id>h1</id></error>"
    )


def entry(n: int, body: str = "hi", id_: str | None = "m") -> HistoryMessage:
    return HistoryMessage(f"a{n}", id_ and f"{id_}{n}", "bob@localhost", "alice@localhost", STAMP, body)


def test_history_results_the_server_sends_are_schema_valid() -> None:
    core = logged_in()
    core.send_history([], True, "h1")
    core.send_history([], False)
    core.send_history([message_xml(entry(1, "中文 \r\n <&>")), message_xml(entry(2, "", None))], False, "h2")
    core.send_history([message_xml(entry(n)) for n in range(MAX_HISTORY)], True)
    root = etree.fromstring(OPEN + core.data_to_send() + b"</session>")
    assert len(root) == 4
    for stanza in root:
        assert schema().validate(stanza), (etree.tostring(stanza), schema().error_log)
    assert [len(stanza) for stanza in root] == [2, 1, 4, 1 + MAX_HISTORY]
    ns = f"{{{native.NS}}}"
    assert [m.findtext(f"{ns}body") for m in root[2].iter(f"{ns}message")] == ["中文 \r\n <&>", ""]
    assert root[2][2].findtext(f"{ns}time") == "2026-11-22T10:00:00.123Z"
    assert root[2][3].find(f"{ns}id") is None  # a message that had no id
    too_many = [message_xml(entry(n)) for n in range(MAX_HISTORY + 1)]
    core.send_history(too_many, True)
    assert not schema().validate(etree.fromstring(core.data_to_send()))


def test_newest_that_fit_keeps_the_newest_and_at_least_one() -> None:
    sizes = [b"a" * 10, b"b" * 20, b"c" * 30]
    assert newest_that_fit(sizes, 60) == 3
    assert newest_that_fit(sizes, 59) == 2
    assert newest_that_fit(sizes, 50) == 2
    assert newest_that_fit(sizes, 49) == 1
    assert newest_that_fit(sizes, 0) == 1  # paging always moves
    assert newest_that_fit([], 0) == 0


def spec_example() -> list[tuple[str, bytes]]:
    """The C:/S: lines of the example in the spec's "History" section."""
    text = (REPO / "docs" / "native-protocol.md").read_text()
    section = text.split("## History", 1)[1].split("```", 2)[1]
    return [(m[1], m[2].encode()) for m in re.finditer(r"^([CS]): (.*)$", section, re.M)]


def test_the_spec_example_is_what_the_core_reads_and_writes() -> None:
    """Byte for byte: each client line is one request; each server line is what
    send_history (with message_xml) or send_error writes for what it shows."""
    core = logged_in()
    lines = spec_example()
    assert len(lines) >= 6 and [side for side, _ in lines] == ["C", "S"] * (len(lines) // 2)
    for (_, request), (_, answer) in zip(lines[::2], lines[1::2], strict=True):
        events = core.receive_data(request)
        if not events:  # refused by the core itself (the schema)
            assert core.data_to_send() == answer
            continue
        (event,) = events
        assert isinstance(event, native.HistoryRequested), request
        reply = etree.fromstring(OPEN + answer + b"</session>")[0]
        if etree.QName(reply).localname == "error":
            error = StanzaError(StanzaCondition(_text(reply, "condition")), _text(reply, "text"))
            core.send_error(error, event.id)
        else:
            shown = [_shown(m) for m in reply.iterfind(f"{NS}message")]
            core.send_history([message_xml(m) for m in shown], _text(reply, "complete") == "true", event.id)
        assert core.data_to_send() == answer


NS = f"{{{native.NS}}}"


def _text(el: etree._Element, name: str) -> str:
    return el.findtext(f"{NS}{name}") or ""


def _shown(el: etree._Element) -> HistoryMessage:
    """A message of the example, as the server would have had it."""
    time = datetime.fromisoformat(_text(el, "time").replace("Z", "+00:00"))
    id_ = el.findtext(f"{NS}id")
    return HistoryMessage(
        _text(el, "archive-id"), id_, _text(el, "from"), _text(el, "to"), time, _text(el, "body")
    )
