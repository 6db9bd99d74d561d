"""Rooms in the native protocol's sans-IO core (spec: docs/native-protocol.md, "Rooms")."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from protocol.native_core_helpers import events_after_login, logged_in, split

from xmlchat.protocol import native
from xmlchat.protocol.native import schema

REQUESTS = (
    b"<join><room>lobby</room></join>"
    b"<join><nick>Al ice</nick><id>j1</id><room>lobby@conference.localhost</room>"
    b"<password>pw</password><max-history>0</max-history></join>"
    b"<room-message><room>lobby</room><body>hi &amp; bye</body><id>r1</id></room-message>"
    b"<who><room>lobby</room></who><leave><id>l1</id><room>lobby</room></leave>"
)
EXPECTED = [
    native.JoinRequested("lobby"),
    native.JoinRequested("lobby@conference.localhost", "Al ice", "pw", 0, "j1"),
    native.RoomMessageReceived("lobby", "hi & bye", "r1"),
    native.WhoRequested("lobby"),
    native.LeaveRequested("lobby", "l1"),
]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0), max_size=8))
def test_room_requests_parse_however_the_bytes_are_cut(cuts: list[int]) -> None:
    assert events_after_login(split(REQUESTS, cuts)) == EXPECTED


def test_bad_room_requests_are_bad_request_with_their_id() -> None:
    core = logged_in()
    assert (
        core.receive_data(
            b"<join><id>j9</id></join><join><room>x</room><max-history>1001</max-history></join>"
        )
        == []
    )
    out = core.data_to_send()
    assert out.count(b"<condition>bad-request</condition>") == 2 and b"<id>j9</id>" in out
    # what only the server sends, a client may not
    assert core.receive_data(b"<joined><room>x</room><nick>n</nick></joined>") == []
    assert b"unknown stanza &lt;joined&gt;" in core.data_to_send()


def test_what_the_server_writes_is_valid_against_the_schema() -> None:
    core = logged_in()
    core.send_joined("lobby@conference.localhost", "alice", "j1")
    core.send_occupant("lobby@conference.localhost", "bob", True)
    core.send_occupants("lobby@conference.localhost", ["alice", "bob"], "w1")
    core.send_room_message(
        "m1", "lobby@conference.localhost", "bob", datetime.now(UTC), "hi <3", delayed=True
    )
    core.send_room_subject("lobby@conference.localhost", None, "")
    core.send_room_subject("lobby@conference.localhost", "bob", "plans & more")
    core.send_left("lobby@conference.localhost", "kicked")
    stanzas = etree.fromstring(b"<r xmlns='urn:xmlchat:native:1'>" + core.data_to_send() + b"</r>")
    assert [etree.QName(s).localname for s in stanzas] == [
        "joined",
        "occupant",
        "occupants",
        "room-message",
        "room-subject",
        "room-subject",
        "left",
    ]
    for stanza in stanzas:
        assert schema().validate(stanza), schema().error_log
