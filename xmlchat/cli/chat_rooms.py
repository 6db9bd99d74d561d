"""How room events read in ``xmlchat chat`` (docs/native-protocol.md, "Rooms").

/join ROOM [NICK]     enter a room (created if new; you own it); NICK: your name
/leave [ROOM]         leave it
/who ROOM             who is in it
After /join, plain lines go to the room (the shared commands: chat_shell.py).
"""

from __future__ import annotations

from xmlchat.client.native_rooms import OccupantUpdate, RoomEvent, RoomLeft, RoomMessage, RoomSubject

# When a room's server went away (XEP-0045 status 332: a cluster node serving
# it died or the room moved), both chats enter it again after these pauses,
# seconds: a cluster agrees on the room's new node within its node_timeout.
REENTER_DELAYS = (0.2, 1.0, 2.0, 4.0, 8.0)


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
