"""The XEP-0153 photo hash on a real hub without sockets."""

from __future__ import annotations

import asyncio
import base64
import hashlib

from lxml import etree
from modules.fakes import Harness

from xmlchat.jid import JID
from xmlchat.modules.vcard import UPDATE, VCards
from xmlchat.stanza import make

PHOTO = b"a picture"
VCARD = (
    "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE>"
    f"<BINVAL>{base64.b64encode(PHOTO).decode()}</BINVAL></PHOTO></vCard>"
)


async def reads_done(vcards: VCards) -> None:
    await asyncio.wait_for(asyncio.gather(*list(vcards._loading.values())), 2)


def photo_of(presence: etree._Element) -> str | None:
    photo = presence.find(f"{UPDATE}/{{vcard-temp:x:update}}photo")
    assert photo is not None, "not stamped"
    return photo.text


async def test_neither_the_session_nor_its_presence_waits_for_the_photo() -> None:
    """The read starts as the session opens and nothing waits for it: a wait
    would delay a login's availability, and a message sent meanwhile would be
    stored instead of delivered. The presence element is stamped when the
    read is done (the presence module copies it for its broadcast later)."""
    server = Harness()
    await server.store.put_document(JID.parse("alice@localhost"), "vcard", VCARD.encode())
    vcards = server.load(VCards)
    released = asyncio.Event()
    read = server.store.get_document

    async def slow_read(user: JID, key: str) -> bytes | None:
        await released.wait()
        return await read(user, key)

    server.store.get_document = slow_read  # type: ignore[method-assign]
    session, _ = await asyncio.wait_for(server.connect("alice@localhost/laptop"), 2)
    presence = make("presence")
    assert vcards._stamp_avatar_hash(session, presence) is presence
    assert presence.find(UPDATE) is None
    released.set()
    await reads_done(vcards)
    assert photo_of(presence) == hashlib.sha1(PHOTO).hexdigest()
    # From then on it is stamped at once.
    assert photo_of(vcards._stamp_avatar_hash(session, make("presence"))) == hashlib.sha1(PHOTO).hexdigest()


async def test_no_photo_is_an_empty_photo_and_other_stanzas_pass_untouched() -> None:
    server = Harness()
    vcards = server.load(VCards)
    session, _ = await server.connect("bob@localhost/phone")
    await reads_done(vcards)
    assert photo_of(vcards._stamp_avatar_hash(session, make("presence"))) is None  # XEP-0153 §4.1: no avatar
    message = make("message", {"to": "alice@localhost"})
    assert vcards._stamp_avatar_hash(session, message) is message and len(message) == 0
    unavailable = make("presence", {"type": "unavailable"})
    assert vcards._stamp_avatar_hash(session, unavailable) is unavailable and len(unavailable) == 0


async def test_an_update_without_a_photo_is_overwritten_an_empty_photo_is_kept() -> None:
    """XEP-0398 §4: ``<x/>`` with no ``<photo/>`` says nothing and gets the
    hash; ``<photo/>`` empty is the client saying "no avatar", and stays."""
    server = Harness()
    await server.store.put_document(JID.parse("alice@localhost"), "vcard", VCARD.encode())
    vcards = server.load(VCards)
    session, _ = await server.connect("alice@localhost/laptop")
    await reads_done(vcards)
    silent = make("presence")
    etree.SubElement(silent, UPDATE)
    stamped = vcards._stamp_avatar_hash(session, silent)
    assert len(stamped.findall(UPDATE)) == 1 and photo_of(stamped) == hashlib.sha1(PHOTO).hexdigest()
    none = make("presence")
    etree.SubElement(etree.SubElement(none, UPDATE), "{vcard-temp:x:update}photo")
    assert photo_of(vcards._stamp_avatar_hash(session, none)) is None
