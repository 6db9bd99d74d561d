"""Native blocking: ``<block>``, ``<unblock>`` and ``<blocklist>`` carried out as
XEP-0191 iqs of the blocking module, and answered, like its pushes, with the
whole list (docs/native-protocol.md, "Blocking")."""

from __future__ import annotations

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID, InvalidJID
from xmlchat.modules import blocking
from xmlchat.server.native_history import Call


class NativeBlocklist:
    """The blocklist as one client was last shown it. Made at the client's
    first blocking request: only from then on does it get pushes (the spec)."""

    __slots__ = ("_answering", "_entries", "_shown")

    def __init__(self) -> None:
        self._entries: list[str] = []
        self._shown = False
        self._answering = False  # a request of ours is under way: its pushes are not shown

    async def request(self, call: Call, domain: str, tag: str | None, jids: tuple[str, ...]) -> list[str]:
        """A change (``tag``: block or unblock, XEP-0191), then the whole list to
        answer with; raises StanzaError. The pushes the change makes are not
        shown, the answer is."""
        self._answering = True
        try:
            if tag == blocking.UNBLOCK:
                self._entries = await _entries_now(call)  # to know the entries' forms
            if tag is not None:
                change = etree.Element(tag, nsmap={None: blocking.NS})
                for jid in self._items(jids, domain):
                    etree.SubElement(change, blocking.ITEM, jid=jid)
                await call("set", change)
            self._entries = await _entries_now(call)
        finally:
            self._answering = False
        self._shown = True
        return self._entries

    def _items(self, jids: tuple[str, ...], domain: str) -> list[str]:
        """Native addresses (``bob``: the server's domain), or an entry exactly
        as the list showed it; one malformed address fails the request."""
        items = []
        for text in dict.fromkeys(jids):
            if text in self._entries:
                items.append(text)
                continue
            try:
                items.append(str(JID.user(text, domain)))
            except InvalidJID:
                raise StanzaError(StanzaCondition.JID_MALFORMED, f"bad address {text!r}") from None
        return items

    def pushed(self, iq: etree._Element) -> list[str] | None:
        """The new whole list after a XEP-0191 push from a change made
        elsewhere; None when there is nothing to show."""
        change = next(iter(iq), None)
        if change is None or change.tag not in (blocking.BLOCK, blocking.UNBLOCK):
            return None
        if self._answering or not self._shown:
            return None
        jids = [item.get("jid", "") for item in change.iter(blocking.ITEM)]
        if change.tag == blocking.BLOCK:
            self._entries = sorted({*self._entries, *jids})
        else:
            self._entries = [j for j in self._entries if jids and j not in jids]
        return self._entries


async def _entries_now(call: Call) -> list[str]:
    result = await call("get", etree.Element(blocking.BLOCKLIST, nsmap={None: blocking.NS}))
    assert result is not None
    return [item.get("jid", "") for item in result.iter(blocking.ITEM)]
