"""XEP-0313 elements the archive module writes: results, ``<fin>``, metadata, prefs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final, cast

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID, InvalidJID
from xmlchat.modules.archive.forms import NS, RSM_NS
from xmlchat.stanza import DELAY_NS, from_bytes, make, new_id
from xmlchat.storage import ARCHIVE_DEFAULTS, ArchiveDefault, ArchivedMessage, ArchivePage, ArchivePrefs

FORWARD_NS: Final = "urn:xmpp:forward:0"


def stamp_text(when: datetime) -> str:
    """XEP-0082 DateTime in UTC, 'Z', milliseconds kept (XEP-0203 allows fractions)."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def forwarded(message: ArchivedMessage) -> etree._Element:
    """XEP-0297 ``<forwarded>`` with XEP-0203 ``<delay>``: when the server accepted it."""
    wrapper = etree.Element(f"{{{FORWARD_NS}}}forwarded", nsmap={None: FORWARD_NS})
    etree.SubElement(wrapper, f"{{{DELAY_NS}}}delay", stamp=stamp_text(message.stamp), nsmap={None: DELAY_NS})
    wrapper.append(from_bytes(message.stanza))
    return wrapper


def result_message(owner: JID, to: JID, queryid: str | None, message: ArchivedMessage) -> etree._Element:
    """§4.3: one result, from the archive (the owner's bare JID) to the querying resource."""
    out = make("message", {"from": str(owner), "to": str(to), "id": new_id()})
    result = etree.SubElement(out, f"{{{NS}}}result", id=message.id, nsmap={None: NS})
    if queryid is not None:
        result.set("queryid", queryid)
    result.append(forwarded(message))
    return out


def fin(page: ArchivePage) -> etree._Element:
    """§4.3: ``complete`` when the page reaches the end of the results in the
    direction of paging; XEP-0059 §2.6 first (with its index), last and count."""
    el = etree.Element(f"{{{NS}}}fin", nsmap={None: NS})
    if page.complete:
        el.set("complete", "true")
    rsm = etree.SubElement(el, f"{{{RSM_NS}}}set", nsmap={None: RSM_NS})
    if page.messages:
        first = etree.SubElement(rsm, f"{{{RSM_NS}}}first", index=str(page.first_index or 0))
        first.text = page.messages[0].id
        etree.SubElement(rsm, f"{{{RSM_NS}}}last").text = page.messages[-1].id
    etree.SubElement(rsm, f"{{{RSM_NS}}}count").text = str(page.count)
    return el


def metadata(first: ArchivedMessage | None, last: ArchivedMessage | None) -> etree._Element:
    """§6 "Retrieving archive metadata": the first and last messages' ids and
    times; an empty archive is an empty ``<metadata/>``."""
    el = etree.Element(f"{{{NS}}}metadata", nsmap={None: NS})
    for tag, message in (("start", first), ("end", last)):
        if message is not None:
            etree.SubElement(el, f"{{{NS}}}{tag}", id=message.id, timestamp=stamp_text(message.stamp))
    return el


def prefs_element(prefs: ArchivePrefs) -> etree._Element:
    """§5: ``<prefs default='…'><always><jid/>…</always><never>…</never></prefs>``."""
    el = etree.Element(f"{{{NS}}}prefs", default=prefs.default, nsmap={None: NS})
    for tag, jids in (("always", prefs.always), ("never", prefs.never)):
        group = etree.SubElement(el, f"{{{NS}}}{tag}")
        for jid in jids:
            etree.SubElement(group, f"{{{NS}}}jid").text = str(jid)
    return el


def parse_prefs(el: etree._Element) -> ArchivePrefs:
    default = el.get("default", "")
    if default not in ARCHIVE_DEFAULTS:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "default must be always, never or roster")
    always, never = (_jids(el.find(f"{{{NS}}}{tag}")) for tag in ("always", "never"))
    if {j.bare for j in always} & {j.bare for j in never}:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "a JID cannot be both always and never archived")
    return ArchivePrefs(cast(ArchiveDefault, default), tuple(always), tuple(never))


def _jids(group: etree._Element | None) -> list[JID]:
    if group is None:
        return []
    try:
        return [JID.parse(jid.text or "") for jid in group.iterfind(f"{{{NS}}}jid")]
    except InvalidJID:
        raise StanzaError(StanzaCondition.JID_MALFORMED, "bad JID in the preferences") from None
