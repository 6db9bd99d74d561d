"""XEP-0198 (v1.6) stream management, acknowledgements only: :class:`StreamManagement`.

Stream management belongs to the stream, not to a feature module: its counts
are of the stanzas this one stream carried, which only the core sees, and its
nonzas are answered by the core (like ``<r/>`` → ``<a/>``) without the server
layer. So the core advertises ``<sm xmlns='urn:xmpp:sm:3'/>`` itself, next to
bind, rather than through the hub's ``StreamFeature`` registrations.

Resumption (§5) is not offered: ``<enabled/>`` carries no ``resume``
attribute, which §5 allows, and ``<resume/>`` always fails with
``item-not-found`` (no previous session is ever known, so no ``h`` either).

The counters live on the :class:`~.link.Link` (``stanzas_in``,
``stanzas_out``), so every way a stanza enters or leaves the stream counts.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from xmlchat.errors import StreamCondition, StreamError
from xmlchat.protocol.xmpp.events import Acknowledged, Event, StreamManagementEnabled
from xmlchat.protocol.xmpp.link import Link
from xmlchat.protocol.xmpp.state import State
from xmlchat.xml.writer import NS_STANZA_ERRORS, serialize

NS_SM: Final = "urn:xmpp:sm:3"
SM: Final = f"{{{NS_SM}}}sm"
ENABLE: Final = f"{{{NS_SM}}}enable"
RESUME: Final = f"{{{NS_SM}}}resume"
REQUEST: Final = f"{{{NS_SM}}}r"
ANSWER: Final = f"{{{NS_SM}}}a"
ELEMENTS: Final = frozenset({ENABLE, RESUME, REQUEST, ANSWER})

# §4: "h" wraps to zero after 2^32 - 1.
MODULUS: Final = 2**32
# The server asks for an acknowledgement after this many stanzas sent (§4
# leaves the policy to the implementation; Prosody asks after a few too).
REQUEST_EVERY: Final = 20

_REQUEST_BYTES: Final = f"<r xmlns='{NS_SM}'/>".encode()


def covers(h: int, target: int) -> bool:
    """Whether count ``h`` has reached ``target``, both mod 2^32 (serial number
    arithmetic, as RFC 1982: ``h`` is at most 2^31 behind or ahead)."""
    return (h - target) % MODULUS < MODULUS // 2


class StreamManagement:
    """One stream's acknowledgement state (§4) and its nonzas (§3, §4, §5)."""

    def __init__(self, link: Link) -> None:
        self._link = link
        self.enabled = False
        self.acked = 0  # the client's last h: stanzas it says it handled
        self._requested_at = 0  # stanzas_out when we last sent <r/>

    @property
    def sent(self) -> int:
        """Stanzas sent since stream management was enabled, mod 2^32."""
        return self._link.stanzas_out

    @property
    def received(self) -> int:
        """Stanzas received (and handled by the core) since it was enabled, mod 2^32."""
        return self._link.stanzas_in

    def feature(self) -> etree._Element:
        return etree.Element(SM, nsmap={None: NS_SM})

    def on_element(self, element: etree._Element) -> list[Event]:
        tag = element.tag
        if tag == ENABLE:
            return self._on_enable()
        if tag == RESUME:
            # §5 "<failed/>": no session to resume; 'h' only where the previous
            # session is known, and none ever is without resumption.
            self._failed("item-not-found")
            return []
        if not self.enabled:
            # §4: <r/> and <a/> are for a stream with management enabled.
            return self._link.unexpected(element, "")
        if tag == REQUEST:
            self._link.write(f"<a xmlns='{NS_SM}' h='{self.received}'/>".encode())
            return []
        return self._on_answer(element)

    def request(self) -> None:
        """Queue ``<r/>`` (§4), when enabled and the stream is open."""
        if self.enabled and not self._link.ending():
            self._requested_at = self._link.stanzas_out
            self._link.write(_REQUEST_BYTES)

    def stanza_sent(self) -> None:
        """After a stanza went out: ask for an acknowledgement every ``REQUEST_EVERY``."""
        if self.enabled and (self._link.stanzas_out - self._requested_at) % MODULUS >= REQUEST_EVERY:
            self.request()

    def _on_enable(self) -> list[Event]:
        link = self._link
        # §3: enabling before bind, or a second time, is unexpected-request.
        if self.enabled or link.state is not State.BOUND:
            self._failed("unexpected-request")
            return []
        self.enabled = True
        # §4: both counts start at zero when management is enabled.
        link.stanzas_in = link.stanzas_out = 0
        link.write(f"<enabled xmlns='{NS_SM}'/>".encode())
        return [StreamManagementEnabled()]

    def _on_answer(self, element: etree._Element) -> list[Event]:
        text = element.get("h", "")
        if not text.isdigit() or int(text) >= MODULUS:
            return self._link.fail(StreamError(StreamCondition.BAD_FORMAT, "<a/> needs 'h', 0 to 2^32-1"))
        h = int(text)
        # §4: an h beyond what was sent is an error, measured from the last ack
        # so that both counts may wrap.
        if (h - self.acked) % MODULUS > (self.sent - self.acked) % MODULUS:
            return self._link.fail(
                StreamError(
                    StreamCondition.UNDEFINED_CONDITION,
                    "acknowledged more stanzas than were sent",
                    app_condition=f"{{{NS_SM}}}handled-count-too-high",
                    app_attributes={"h": str(h), "send-count": str(self.sent)},
                )
            )
        if h == self.acked:
            return []
        self.acked = h
        return [Acknowledged(h)]

    def _failed(self, condition: str) -> None:
        failed = etree.Element(f"{{{NS_SM}}}failed", nsmap={None: NS_SM})
        etree.SubElement(failed, f"{{{NS_STANZA_ERRORS}}}{condition}", nsmap={None: NS_STANZA_ERRORS})
        self._link.write(serialize(failed))
