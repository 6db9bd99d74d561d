"""The XEP-0153 photo hash on a real hub without sockets."""

from __future__ import annotations

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


async def test_presence_is_stamped_without_waiting_for_the_store() -> None:
    """The hash is loaded while the session opens: stamping its first presence
    awaits nothing (an await there delays a login's availability, and a
    message sent meanwhile is stored instead of delivered)."""
    server = Harness()
    await server.store.put_document(JID.parse("alice@localhost"), "vcard", VCARD.encode())
    vcards = server.load(VCards)
    session, _ = await server.connect("alice@localhost/laptop")
    stamped = vcards._stamp_avatar_hash(session, make("presence"))
    assert isinstance(stamped, etree._Element)
    assert stamped.findtext(f"{UPDATE}/{{vcard-temp:x:update}}photo") == hashlib.sha1(PHOTO).hexdigest()


async def test_no_photo_is_an_empty_photo_and_other_stanzas_pass_untouched() -> None:
    server = Harness()
    vcards = server.load(VCards)
    session, _ = await server.connect("bob@localhost/phone")
    stamped = vcards._stamp_avatar_hash(session, make("presence"))
    assert isinstance(stamped, etree._Element)
    photo = stamped.find(f"{UPDATE}/{{vcard-temp:x:update}}photo")
    assert photo is not None and photo.text is None  # XEP-0153 §4.1: no avatar
    message = make("message", {"to": "alice@localhost"})
    assert vcards._stamp_avatar_hash(session, message) is message and len(message) == 0
    unavailable = make("presence", {"type": "unavailable"})
    assert vcards._stamp_avatar_hash(session, unavailable) is unavailable and len(unavailable) == 0
