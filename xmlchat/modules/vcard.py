"""XEP-0054 vcard-temp, and the XEP-0153 avatar hash in presence.

Each account has one vCard: its owner sets it (§3.2), anyone may read it
(§3.3; an account with none gives an empty one, §3.1). The server stamps the
hash of the vCard's photo into available presence that carries no
``vcard-temp:x:update`` of its own (XEP-0153 §4.2, as ejabberd's
``mod_vcard_xupdate``), so contacts learn of an avatar even from clients that
do not announce it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections.abc import Awaitable, Callable
from typing import Final

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID
from xmlchat.routing.api import Feature, InboundFilter, IqHandler, OnSessionOpening, Registration
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.session import Session
from xmlchat.stanza import CLIENT_NS, child, from_bytes, to_bytes
from xmlchat.storage import DocumentStore

XEP: Final = 54
NS: Final = "vcard-temp"
VCARD: Final = f"{{{NS}}}vCard"
UPDATE_NS: Final = "vcard-temp:x:update"
UPDATE: Final = f"{{{UPDATE_NS}}}x"
PHOTO: Final = f"{{{UPDATE_NS}}}photo"
KEY: Final = "vcard"
_PRESENCE: Final = f"{{{CLIENT_NS}}}presence"


class VCards:
    name = "vcard"

    def __init__(self, ctx: ModuleContext[DocumentStore]) -> None:
        self.ctx = ctx
        # Photo hash per account: "" for no photo (XEP-0153 §4.1's empty <photo/>).
        self._hashes: dict[JID, str] = {}
        self._loading: dict[JID, asyncio.Task[str]] = {}
        # Told of every vCard its owner stores (XEP-0398's conversion).
        self.stored: list[Callable[[JID, etree._Element], Awaitable[None]]] = []
        # Presence that went on before its sender's hash was read.
        self._unstamped: dict[JID, list[etree._Element]] = {}

    def setup(self) -> list[Registration]:
        return [
            Feature(NS),
            IqHandler("get", VCARD, self.get, accounts=True),
            IqHandler("set", VCARD, self.set, accounts=True),
            # The read starts as the session opens, ahead of the presence
            # module's own reads on the store's one worker thread, and is not
            # waited for there: waiting would delay a native login's
            # availability, and a message sent meanwhile would be stored.
            OnSessionOpening(self._start_loading),
            InboundFilter(self._stamp_avatar_hash, kinds=frozenset({"presence"})),
        ]

    async def get(self, session: Session, iq: etree._Element) -> etree._Element:
        owner = _owner(session, iq, self.ctx.hosts)
        # The server itself has no vCard: empty, as for an account without one.
        stored = None if owner is None else await self.ctx.store.get_document(owner, KEY)
        return from_bytes(stored) if stored is not None else etree.Element(VCARD, nsmap={None: NS})

    async def set(self, session: Session, iq: etree._Element) -> None:
        if _owner(session, iq, self.ctx.hosts) != session.bare:
            raise StanzaError(StanzaCondition.FORBIDDEN, "only the owner sets a vCard")
        data = to_bytes(iq[0])
        if len(data) > self.ctx.limits.max_vcard_bytes:
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "vCard too large")
        await self.ctx.store.put_document(session.bare, KEY, data)
        self._hashes[session.bare] = photo_hash(iq[0])
        for observer in self.stored:
            await observer(session.bare, iq[0])

    def current_hash(self, owner: JID) -> str | None:
        """The owner's photo hash if known ("" for no photo), else None."""
        return self._hashes.get(owner)

    async def set_photo(self, owner: JID, mime: str | None, image: bytes | None) -> None:
        """Replace the vCard's PHOTO (None: remove it), keeping the rest: for
        other modules acting on the owner's behalf (XEP-0398). Observers are
        not told, so a conversion never echoes back."""
        stored = await self.ctx.store.get_document(owner, KEY)
        vcard = from_bytes(stored) if stored is not None else etree.Element(VCARD, nsmap={None: NS})
        for old in vcard.findall(f"{{{NS}}}PHOTO"):
            vcard.remove(old)
        if image is not None:
            photo = etree.SubElement(vcard, f"{{{NS}}}PHOTO")
            if mime:
                etree.SubElement(photo, f"{{{NS}}}TYPE").text = mime
            etree.SubElement(photo, f"{{{NS}}}BINVAL").text = base64.b64encode(image).decode("ascii")
        await self.ctx.store.put_document(owner, KEY, to_bytes(vcard))
        self._hashes[owner] = photo_hash(vcard)

    def _stamp_avatar_hash(self, session: Session, stanza: etree._Element) -> etree._Element:
        """Synchronous, so neither messages nor a login's availability wait.
        A hash still being read is stamped into the element when it arrives:
        the presence module keeps this very element and copies it for its
        broadcast after its own read of the roster, which the store's one
        worker thread answers after ours."""
        if stanza.tag != _PRESENCE or stanza.get("type") is not None:
            return stanza
        update = child(stanza, UPDATE)
        if update is not None and child(update, PHOTO) is not None:
            return stanza  # the client's own hash, or its empty <photo/> (XEP-0398 §4)
        if update is not None:
            stanza.remove(update)  # an <x/> without <photo/> is overwritten (XEP-0398 §4)
        photo = self._hashes.get(session.bare)
        if photo is not None:
            return _stamped(stanza, photo)
        self._unstamped.setdefault(session.bare, []).append(stanza)
        if session.bare not in self._loading:
            self._start(session.bare)
        return stanza

    async def _start_loading(self, session: Session) -> None:
        if session.bare not in self._hashes and session.bare not in self._loading:
            self._start(session.bare)

    def _start(self, bare: JID) -> asyncio.Task[str]:
        task = asyncio.create_task(self._load_hash(bare))
        self._loading[bare] = task
        task.add_done_callback(lambda _: self._loading.pop(bare, None))
        return task

    async def _load_hash(self, bare: JID) -> str:
        try:
            stored = await self.ctx.store.get_document(bare, KEY)
            read = photo_hash(from_bytes(stored)) if stored is not None else ""
            photo = self._hashes.setdefault(bare, read)  # a vCard set meanwhile wins
            # In this very step, not in a done-callback: a callback would run
            # after the presence module's next step, which copies the element.
            for stanza in self._unstamped.get(bare, []):
                if child(stanza, UPDATE) is None:
                    _stamped(stanza, photo)
            return photo
        finally:
            self._unstamped.pop(bare, None)


def _stamped(stanza: etree._Element, photo: str) -> etree._Element:
    update = etree.SubElement(stanza, UPDATE, nsmap={None: UPDATE_NS})
    etree.SubElement(update, f"{{{UPDATE_NS}}}photo").text = photo or None
    return stanza


def photo_hash(vcard: etree._Element) -> str:
    """XEP-0153 §4.1: hex SHA-1 of the photo's bytes; "" when there is none."""
    binval = vcard.find(f"{{{NS}}}PHOTO/{{{NS}}}BINVAL")
    if binval is None or not (binval.text or "").strip():
        return ""
    try:
        data = base64.b64decode("".join((binval.text or "").split()), validate=True)
    except binascii.Error:
        return ""
    return hashlib.sha1(data).hexdigest()


def _owner(session: Session, iq: etree._Element, hosts: frozenset[str]) -> JID | None:
    """Whose vCard: the account the iq is to (no 'to': one's own), None for the server."""
    to = iq.get("to")
    if to is None:
        return session.bare
    return None if to in hosts else JID.parse(to).bare
