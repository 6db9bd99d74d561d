"""Room commands of ``xmlchat chat`` (docs/native-protocol.md, "Rooms").

/join ROOM [NICK]     enter a room (created if new; you own it); NICK: your name
/leave ROOM           leave it
/who ROOM             who is in it
#ROOM: hello          say "hello" in a room you are in
"""

from __future__ import annotations

from xmlchat.client.native import NativeClient
from xmlchat.client.native_rooms import OccupantUpdate, RoomEvent, RoomLeft, RoomMessage, RoomSubject

ROOM_COMMANDS = "/join ROOM [NICK], /leave ROOM, /who ROOM, '#ROOM: message'"


async def room_command(client: NativeClient, line: str) -> bool:
    """Carry out ``line`` if it is a room command; False if it is not one."""
    words = line.split()
    if words and words[0] == "/join" and len(words) in (2, 3):
        joined = await client.rooms.join(words[1], words[2] if len(words) == 3 else None)
        print(f"* you are in {joined.room} as {joined.nick}", flush=True)
    elif words and words[0] == "/leave" and len(words) == 2:
        left = await client.rooms.leave(words[1])
        print(f"* you left {left.room}", flush=True)
    elif words and words[0] == "/who" and len(words) == 2:
        nicks = await client.rooms.who(words[1])
        print(f"  in {words[1]}: {', '.join(nicks)}", flush=True)
    elif line.startswith("#") and ":" in line:
        room, _, text = line[1:].partition(":")
        await client.rooms.say(room.strip(), text.strip())
    elif words and words[0] in ("/join", "/leave", "/who"):
        print(f"  type {ROOM_COMMANDS}", flush=True)
    else:
        return False
    return True


async def print_room_events(client: NativeClient) -> None:
    """Show what rooms send, for as long as the chat runs."""
    while True:
        print(describe(await client.rooms.incoming.get()), flush=True)


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
