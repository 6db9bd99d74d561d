"""Rooms for the native client (docs/native-protocol.md, "Rooms").

    joined = await client.rooms.join("lobby", nick="alice")   # -> Joined (room, nick)
    await client.rooms.say("lobby", "hi all")                  # -> Ack
    nicks = await client.rooms.who("lobby")
    event = await client.rooms.incoming.get()   # RoomMessage | OccupantUpdate | RoomLeft | RoomSubject
    await client.rooms.leave("lobby")

Each request waits for its answer, matched by id; a refusal raises
:class:`ServerError` (``conflict``, ``forbidden``, ``registration-required``,
``not-authorized``, ``not-acceptable`` …).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from lxml import etree

from xmlchat.client.native_requests import PendingRequests
from xmlchat.client.native_types import Ack, ConnectionLost, ServerError, parse_time
from xmlchat.protocol.native import NS, element_xml

_NS: Final = f"{{{NS}}}"
ROOM_STANZAS: Final = frozenset({"joined", "left", "occupant", "occupants", "room-message", "room-subject"})


@dataclass(frozen=True, slots=True)
class Joined:
    room: str  # the room's full address, e.g. lobby@conference.localhost
    nick: str


@dataclass(frozen=True, slots=True)
class RoomMessage:
    id: str
    room: str
    nick: str  # the sender's nickname in the room
    time: datetime
    body: str
    delayed: bool  # history sent on joining


@dataclass(frozen=True, slots=True)
class OccupantUpdate:
    room: str
    nick: str
    online: bool


@dataclass(frozen=True, slots=True)
class RoomLeft:
    """We are out of ``room``: we left, or ``reason`` (kicked, banned, removed, destroyed)."""

    room: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class RoomSubject:
    """The room's subject: sent on joining and when it changes (``text`` empty: none)."""

    room: str
    nick: str | None  # who set it
    text: str


RoomEvent = RoomMessage | OccupantUpdate | RoomLeft | RoomSubject


class Rooms:
    def __init__(
        self,
        write: Callable[[bytes], None],
        until_online: Callable[[], Awaitable[None]],
        requests: PendingRequests,
        ids: Iterator[str],
        timeout: float,
    ) -> None:
        self._write, self._until_online, self._requests = write, until_online, requests
        self._ids, self.timeout = ids, timeout
        self.incoming: asyncio.Queue[RoomEvent] = asyncio.Queue()
        self._waiting: dict[str, asyncio.Future[Any]] = {}

    async def join(
        self, room: str, nick: str | None = None, password: str | None = None, max_history: int | None = None
    ) -> Joined:
        history = None if max_history is None else str(max_history)
        fields = [("room", room), ("nick", nick), ("password", password), ("max-history", history)]
        result: Joined = await self._request("join", fields)
        return result

    async def leave(self, room: str) -> RoomLeft:
        result: RoomLeft = await self._request("leave", [("room", room)])
        return result

    async def who(self, room: str) -> list[str]:
        result: list[str] = await self._request("who", [("room", room)])
        return result

    async def say(self, room: str, body: str) -> Ack:
        await self._until_online()
        id_ = next(self._ids)
        future = self._requests.expect_ack(id_)
        self._write(element_xml("room-message", [("id", id_), ("room", room), ("body", body)]))
        ack: Ack = await asyncio.wait_for(future, self.timeout)
        return ack

    async def _request(self, tag: str, fields: list[tuple[str, str | None]]) -> Any:
        await self._until_online()
        id_ = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[id_] = future
        try:
            self._write(element_xml(tag, [("id", id_), *fields]))
            return await asyncio.wait_for(future, self.timeout)
        finally:
            self._waiting.pop(id_, None)

    # ---- what the server sends

    def dispatch(self, el: etree._Element) -> None:
        name = etree.QName(el).localname

        def text(child: str) -> str:
            return el.findtext(f"{_NS}{child}") or ""

        match name:
            case "joined":
                self._answer(text("id"), Joined(text("room"), text("nick")))
            case "occupants":
                self._answer(text("id"), [n.text or "" for n in el.iterfind(f"{_NS}nick")])
            case "left":
                left = RoomLeft(text("room"), text("reason") or None)
                if not self._answer(text("id"), left):
                    self.incoming.put_nowait(left)
            case "occupant":
                self.incoming.put_nowait(
                    OccupantUpdate(text("room"), text("nick"), text("status") == "online")
                )
            case "room-subject":
                self.incoming.put_nowait(RoomSubject(text("room"), text("from") or None, text("text")))
            case "room-message":
                delayed = el.find(f"{_NS}delayed") is not None
                message = RoomMessage(
                    text("id"), text("room"), text("from"), parse_time(text("time")), text("body"), delayed
                )
                self.incoming.put_nowait(message)

    def _answer(self, id_: str, value: object) -> bool:
        future = self._waiting.pop(id_, None) if id_ else None
        if future is None:
            return False
        if not future.done():
            future.set_result(value)
        return True

    def fail(self, error: ServerError) -> bool:
        future = self._waiting.pop(error.ref or "", None)
        if future is None:
            return False
        if not future.done():
            future.set_exception(error)
        return True

    def connection_lost(self, why: str) -> None:
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ConnectionLost(why))
        self._waiting.clear()
