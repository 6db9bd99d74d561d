"""How room events read in ``xmlchat chat`` (docs/native-protocol.md, "Rooms").

/join ROOM [NICK]     enter a room (created if new; you own it); NICK: your name
/leave [ROOM]         leave it
/who ROOM             who is in it
After /join, plain lines go to the room (the shared commands: chat_shell.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from xmlchat.client.native_rooms import OccupantUpdate, RoomEvent, RoomLeft, RoomMessage, RoomSubject

# When a room's server went away (XEP-0045 status 332: a cluster node serving
# it died or the room moved), both chats enter it again after these pauses,
# seconds: a cluster agrees on the room's new node within its node_timeout.
REENTER_DELAYS = (0.2, 1.0, 2.0, 4.0, 8.0)

Rooms = dict[str, tuple[str, str]]  # the name a user typed -> (room address, nick)


class Reentry:
    """Both chats' answer to XEP-0045 status 332: the room's server (a
    cluster's node serving it) went away, the room lives on elsewhere, so
    enter it again, with pauses while the cluster agrees on its new node."""

    def __init__(
        self,
        rooms: Callable[[], Rooms],
        show: Callable[[str], None],
        enter: Callable[[str, str], Awaitable[object]],
        failures: tuple[type[BaseException], ...],
    ) -> None:
        self._rooms, self._show, self._enter, self._failures = rooms, show, enter, failures
        self._tasks: set[asyncio.Task[None]] = set()

    def moved(self, room: str) -> None:
        for name, (address, nick) in self._rooms().items():
            if address == room:
                self._show(f"* {room} moved to another node; entering it again")
                task = asyncio.create_task(self._reenter(name, address, nick))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _reenter(self, name: str, room: str, nick: str) -> None:
        why = "no answer"
        for delay in REENTER_DELAYS:
            await asyncio.sleep(delay)
            if self._rooms().get(name) != (room, nick):
                return  # left or joined again meanwhile
            try:
                await self._enter(room, nick)
            except self._failures as e:
                why = str(e)
                continue
            self._show(f"~ you are in {room} as {nick}")
            return
        self._rooms().pop(name, None)
        self._show(f"! could not enter {room} again: {why}")


def describe(event: RoomEvent) -> str:
    match event:
        case RoomMessage():
            mark = " (earlier)" if event.delayed else ""
            return f"[{event.time.astimezone():%H:%M:%S}] #{event.room} {event.nick}: {event.body}{mark}"
        case OccupantUpdate():
            return f"* {event.nick} {'entered' if event.online else 'left'} {event.room}"
        case RoomSubject():
            by = f" (set by {event.nick})" if event.nick else ""
            return f"* subject of {event.room}: {event.text or '(none)'}{by}"
        case RoomLeft():
            return f"* you are out of {event.room}" + (f" ({event.reason})" if event.reason else "")
