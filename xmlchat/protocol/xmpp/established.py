"""The established session (state BOUND): checking the client's stanzas (RFC 6120 §8).

A stanza that passes is stamped and handed out as :class:`StanzaIn`; one that
does not is answered with a stanza error on the stream and goes no further.
"""

from __future__ import annotations

from functools import lru_cache

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID, InvalidJID
from xmlchat.protocol.xmpp.binding import BIND, SESSION, Binding
from xmlchat.protocol.xmpp.events import ClientStateChanged, Event, NonzaIn, StanzaIn
from xmlchat.protocol.xmpp.link import Link
from xmlchat.protocol.xmpp.sm import ELEMENTS as SM_ELEMENTS
from xmlchat.protocol.xmpp.sm import StreamManagement
from xmlchat.protocol.xmpp.wire import IQ_TYPES, PRESENCE_TYPES, STANZA_KINDS
from xmlchat.xml.writer import NS_CLIENT, XML_LANG

# XEP-0352 §3: the two nonzas a bound client sends to say whether a user is looking.
CSI_NS = "urn:xmpp:csi:0"
_CLIENT_STATES = {f"{{{CSI_NS}}}active": True, f"{{{CSI_NS}}}inactive": False}
# A stanza's kind by its tag: one dict lookup per element, not a QName made and split.
_STANZA_TAGS: dict[object, str] = {f"{{{NS_CLIENT}}}{kind}": kind for kind in STANZA_KINDS}


@lru_cache(maxsize=16384)
def _address(text: str) -> tuple[JID, str]:
    """A 'to' as parsed, and as written back normalised: the same few
    addresses recur, so each is written out once (InvalidJID is not kept)."""
    jid = JID.parse(text)
    return jid, str(jid)


class Established:
    """Top-level elements of a bound stream: stanzas, the stream management
    and CSI nonzas, and nonzas of the configured namespaces."""

    def __init__(self, link: Link, binding: Binding, sm: StreamManagement | None) -> None:
        self._link = link
        self._binding = binding
        self._sm = sm
        # The bound JID as stamped on every stanza (§8.1.2.1), written out once.
        self._from: tuple[JID | None, str] | None = None

    def on_element(self, element: etree._Element) -> list[Event]:
        kind = _STANZA_TAGS.get(element.tag)
        if kind is not None:
            # XEP-0198 §4: every stanza counts, answered here or passed on.
            self._link.stanza_handled()
            return self._on_stanza(element, kind)
        if self._sm is not None and element.tag in SM_ELEMENTS:
            return self._sm.on_element(element)
        active = _CLIENT_STATES.get(str(element.tag))
        if active is not None:
            return [ClientStateChanged(active)]
        if etree.QName(element).namespace in self._link.settings.nonza_namespaces:
            return [NonzaIn(element)]
        return self._link.unexpected(element, "")

    def _on_stanza(self, element: etree._Element, kind: str) -> list[Event]:
        link = self._link
        error = _malformed(element, kind)
        if error is not None:
            return link.reply(element, error)
        to_text = element.get("to")
        to: JID | None = None
        if to_text is not None:
            try:
                to, normalised = _address(to_text)
            except InvalidJID:
                # §8.3.3.8; the reply comes from the server, not from the malformed address.
                del element.attrib["to"]
                return link.reply(element, StanzaError(StanzaCondition.JID_MALFORMED))
            if normalised != to_text:
                element.set("to", normalised)
        kind_type = element.get("type")
        if kind == "iq" and kind_type in ("get", "set") and (to is None or to == JID(None, link.host or "")):
            # Bind and session still reach the server once bound (see binding).
            payload = element[0]
            if payload.tag == BIND:
                return self._binding.on_bind(element, payload)
            if payload.tag == SESSION:
                return self._binding.on_session(element)
        # §8.1.2.1: the server stamps the full JID, whatever the client wrote.
        stamp = self._from
        if stamp is None or stamp[0] is not link.jid:  # bound once; a resumed stream's link is another
            stamp = self._from = (link.jid, str(link.jid))
        element.set("from", stamp[1])
        if element.get(XML_LANG) is None:
            element.set(XML_LANG, link.client_lang or link.settings.lang)  # §4.7.4
        if self._sm is not None and self._sm.enabled:
            self._sm.stanza_passed_on()  # counted by h once the server has handled it
        return [StanzaIn(element, to)]


def _malformed(element: etree._Element, kind: str) -> StanzaError | None:
    """The bad-request a stanza's type and shape deserve, or None."""
    kind_type = element.get("type")
    if kind == "iq":
        # §8.2.3: id and a known type are REQUIRED; get/set carry exactly one
        # payload, a result at most one.
        if kind_type not in IQ_TYPES or element.get("id") is None:
            return StanzaError(StanzaCondition.BAD_REQUEST, "iq needs an id and a type")
        payloads = len(element)
        if (kind_type in ("get", "set") and payloads != 1) or (kind_type == "result" and payloads > 1):
            return StanzaError(StanzaCondition.BAD_REQUEST, "wrong number of payloads")
    elif kind == "presence" and kind_type is not None and kind_type not in PRESENCE_TYPES:
        return StanzaError(StanzaCondition.BAD_REQUEST, "unknown presence type")
    return None
