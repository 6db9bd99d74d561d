"""The interactive client's room commands (xmlchat chat): /join, /leave, /who, '#room: text'."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from xmlchat.cli.chat import _command
from xmlchat.cli.chat_rooms import describe
from xmlchat.client.native_rooms import Joined, OccupantUpdate, RoomLeft, RoomMessage, RoomSubject

ROOM = "lobby@conference.localhost"


class FakeRooms:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    async def join(self, room: str, nick: str | None = None) -> Joined:
        self.calls.append(("join", (room, nick)))
        return Joined(ROOM, nick or "alice")

    async def leave(self, room: str) -> RoomLeft:
        self.calls.append(("leave", (room,)))
        return RoomLeft(ROOM, None)

    async def who(self, room: str) -> list[str]:
        self.calls.append(("who", (room,)))
        return ["alice", "bob"]

    async def say(self, room: str, body: str) -> None:
        self.calls.append(("say", (room, body)))


class FakeClient:
    def __init__(self) -> None:
        self.rooms = FakeRooms()
        self.sent: list[tuple[str, str]] = []

    async def send(self, to: str, body: str) -> None:
        self.sent.append((to, body))


async def test_room_commands_call_the_library(capsys: pytest.CaptureFixture[str]) -> None:
    client: Any = FakeClient()
    for line in ("/join lobby", "/join lobby Ali", "#lobby: hi: all", "/who lobby", "/leave lobby", "/who"):
        await _command(client, line)
    assert client.rooms.calls == [
        ("join", ("lobby", None)),
        ("join", ("lobby", "Ali")),
        ("say", ("lobby", "hi: all")),
        ("who", ("lobby",)),
        ("leave", ("lobby",)),
    ]
    assert client.sent == []  # '#lobby: …' is the room's, not a message to a user "#lobby"
    out = capsys.readouterr().out
    assert f"* you are in {ROOM} as Ali" in out and "in lobby: alice, bob" in out
    assert out.rstrip().splitlines()[-1].startswith("  type /join ROOM")  # /who without a room: the help


def test_room_events_read_as_lines() -> None:
    when = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert describe(RoomMessage("m1", ROOM, "bob", when, "hi", True)).endswith(f"#{ROOM} bob: hi (earlier)")
    assert describe(OccupantUpdate(ROOM, "bob", False)) == f"* bob left {ROOM}"
    assert describe(RoomLeft(ROOM, "kicked")) == f"* you are out of {ROOM} (kicked)"
    assert describe(RoomSubject(ROOM, "bob", "plans")) == f"* subject of {ROOM}: plans (set by bob)"
    assert describe(RoomSubject(ROOM, None, "")) == f"* subject of {ROOM}: (none)"
