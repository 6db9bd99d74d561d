"""RoomStore (persistent XEP-0045 rooms) on both backends."""

from __future__ import annotations

import pytest
from storage.common import OpenStorage

from xmlchat.jid import JID
from xmlchat.storage import MemoryStorage, Storage, StoredRoom

ROOM = JID.parse("lobby@conference.localhost")
OTHER = JID.parse("attic@conference.example.org")
ALICE = JID.parse("alice@localhost")


def _room(jid: JID = ROOM, **kw: object) -> StoredRoom:
    fields: dict[str, object] = {
        "config": {"muc#roomconfig_roomname": "Lobby", "muc#roomconfig_persistentroom": "1"},
        "affiliations": {ALICE.with_resource("pc"): "owner", JID.parse("bob@localhost"): "outcast"},
        "subject": "Plans",
        "subject_by": "Alice",
    }
    fields.update(kw)
    return StoredRoom(jid, **fields)  # type: ignore[arg-type]


async def test_a_saved_room_comes_back_whole_after_reopening(open_storage: OpenStorage) -> None:
    storage = await open_storage()
    if isinstance(storage, MemoryStorage):
        pytest.skip("the in-memory backend forgets on close")
    await storage.save_room(_room())
    await storage.save_room(_room(OTHER, subject=""))
    await storage.close()
    reopened = await open_storage()
    rooms = await reopened.load_rooms()
    assert [r.jid for r in rooms] == [OTHER, ROOM]  # sorted by JID
    lobby = rooms[1]
    assert lobby.config["muc#roomconfig_roomname"] == "Lobby"
    assert lobby.affiliations == {ALICE: "owner", JID.parse("bob@localhost"): "outcast"}  # bare
    assert (lobby.subject, lobby.subject_by) == ("Plans", "Alice")
    assert [r.jid for r in await reopened.load_rooms("conference.localhost")] == [ROOM]


async def test_save_replaces_and_delete_forgets(storage: Storage) -> None:
    await storage.save_room(_room())
    await storage.save_room(_room(subject="Later", affiliations={ALICE: "owner"}))
    (room,) = await storage.load_rooms()
    assert room.subject == "Later" and room.affiliations == {ALICE: "owner"}
    assert await storage.delete_room(ROOM.with_resource("nick"))
    assert not await storage.delete_room(ROOM)
    assert await storage.load_rooms() == []


async def test_bad_records_change_nothing(storage: Storage) -> None:
    with pytest.raises(ValueError):
        await storage.save_room(_room(affiliations={ALICE: "king"}))
    with pytest.raises(ValueError):
        await storage.save_room(_room(JID.parse("conference.localhost")))
    assert await storage.load_rooms() == []
