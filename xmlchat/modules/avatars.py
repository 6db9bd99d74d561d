"""XEP-0398 User Avatar to vCard-Based Avatars Conversion.

An avatar published through PEP (XEP-0084: the image on
``urn:xmpp:avatar:data``, its description on ``urn:xmpp:avatar:metadata``)
becomes the vCard's PHOTO, so clients that only read vCards (XEP-0153) and the
server's photo hash in presence see it (§3.1, a MUST); a photo set in a vCard
is published through PEP in turn (§3.2, a MAY), which notifies the owner's
contacts that want avatars. Each direction writes the other side without
telling it back, so a conversion never echoes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import UTC, datetime
from typing import Final

from lxml import etree

from xmlchat.jid import JID
from xmlchat.modules.pep import Pep
from xmlchat.modules.vcard import NS as VCARD_NS
from xmlchat.modules.vcard import VCards, photo_hash
from xmlchat.routing.api import Feature, Registration
from xmlchat.routing.context import ModuleContext
from xmlchat.stanza import from_bytes, to_bytes
from xmlchat.storage import PepItem, PepStore

XEP: Final = 398
FEATURE: Final = "urn:xmpp:pep-vcard-conversion:0"
DATA_NS: Final = "urn:xmpp:avatar:data"
METADATA_NS: Final = "urn:xmpp:avatar:metadata"


class AvatarConversion:
    name = "avatar-conversion"

    def __init__(self, ctx: ModuleContext[PepStore], pep: Pep, vcards: VCards) -> None:
        self.ctx = ctx
        self.pep = pep
        self.vcards = vcards
        pep.published.append(self._from_pep)
        vcards.stored.append(self._from_vcard)

    def setup(self) -> list[Registration]:
        return [Feature(FEATURE, account=True)]

    async def _from_pep(self, owner: JID, node: str, item: PepItem) -> None:
        """§3.1: new metadata: the image it names (not an external URL) goes
        into the vCard, if its bytes hash to its id; none: the PHOTO goes."""
        if node != METADATA_NS:
            return
        metadata = from_bytes(item.payload)
        infos = [i for i in metadata.iterchildren(f"{{{METADATA_NS}}}info") if not i.get("url")]
        if not infos:
            await self.vcards.set_photo(owner, None, None)
            return
        info = infos[0]
        if self.vcards.current_hash(owner) == info.get("id"):
            return  # the vCard has it already (it may be where it came from)
        found = await self.ctx.store.get_pep_items(owner, DATA_NS, ids=[info.get("id", "")])
        image = _decoded(from_bytes(found[0].payload).text) if found else None
        if image is not None and hashlib.sha1(image).hexdigest() == info.get("id"):
            await self.vcards.set_photo(owner, info.get("type"), image)

    async def _from_vcard(self, owner: JID, vcard: etree._Element) -> None:
        """§3.2: a vCard with a photo: the image, then its metadata, through PEP."""
        photo = vcard.find(f"{{{VCARD_NS}}}PHOTO")
        image = _decoded(photo.findtext(f"{{{VCARD_NS}}}BINVAL")) if photo is not None else None
        if photo is None or image is None:
            return
        item_id = photo_hash(vcard)
        newest = await self.ctx.store.get_pep_items(owner, METADATA_NS, limit=1)
        if newest and newest[0].id == item_id:
            return  # PEP has it already (it may be where it came from)
        now = datetime.now(UTC)
        data = etree.Element(f"{{{DATA_NS}}}data", nsmap={None: DATA_NS})
        data.text = base64.b64encode(image).decode("ascii")
        await self.pep.publish(owner, DATA_NS, PepItem(item_id, to_bytes(data), now), {})
        metadata = etree.Element(f"{{{METADATA_NS}}}metadata", nsmap={None: METADATA_NS})
        info = {"id": item_id, "bytes": str(len(image)), "type": photo.findtext(f"{{{VCARD_NS}}}TYPE") or ""}
        etree.SubElement(metadata, f"{{{METADATA_NS}}}info", {k: v for k, v in info.items() if v})
        await self.pep.publish(owner, METADATA_NS, PepItem(item_id, to_bytes(metadata), now), {})


def _decoded(text: str | None) -> bytes | None:
    if not text or not text.strip():
        return None
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except binascii.Error:
        return None
