"""XEP-0198 (v1.6) stream management: :class:`StreamManagement`.

Stream management belongs to the stream, not to a feature module: its counts
are of the stanzas this one stream carried, which only the core sees, and its
nonzas are answered by the core (like ``<r/>`` → ``<a/>``) without the server
layer. So the core advertises ``<sm xmlns='urn:xmpp:sm:3'/>`` itself, next to
bind, rather than through the hub's ``StreamFeature`` registrations.

Resumption (§5) is offered when the core is given a ``resume_timeout``: an
``<enable resume='true'/>`` gets ``<enabled id=… resume='true' max=…/>``, and
a later stream's ``<resume previd h/>`` (instead of bind) becomes a
:class:`ResumeRequested` the server answers (``C2SStream.resumed``): with the
detached session's full JID and count, ``<resumed/>`` and the counts carry
on; with None, ``<failed><item-not-found/></failed>``.

The counters live on the :class:`~.link.Link` (``stanzas_in``,
``stanzas_out``), so every way a stanza enters or leaves the stream counts.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final

from lxml import etree

from xmlchat.errors import StreamCondition, StreamError
from xmlchat.jid import JID
from xmlchat.protocol.xmpp.events import (
    Acknowledged,
    Event,
    LocalProtocolError,
    ResumeRequested,
    StreamManagementEnabled,
)
from xmlchat.protocol.xmpp.link import Link
from xmlchat.protocol.xmpp.state import State, _Input
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


@dataclass(frozen=True, slots=True)
class Resumable:
    """What the server knows of a detached session a client resumes (§5)."""

    jid: JID  # its full JID, bound again on the new stream
    handled: int  # our h: the client's stanzas it handled


def covers(h: int, target: int) -> bool:
    """Whether count ``h`` has reached ``target``, both mod 2^32 (serial number
    arithmetic, as RFC 1982: ``h`` is at most 2^31 behind or ahead)."""
    return (h - target) % MODULUS < MODULUS // 2


class StreamManagement:
    """One stream's acknowledgement state (§4) and its nonzas (§3, §4, §5)."""

    def __init__(self, link: Link, resume_timeout: int = 0) -> None:
        self._link = link
        # Seconds a lost session stays resumable (0: resumption not offered).
        self.resume_timeout = resume_timeout
        self.resume_id: str | None = None
        self._resume_h = 0  # the h of the <resume/> being answered
        self.enabled = False
        self.acked = 0  # the client's last h: stanzas it says it handled
        self._requested_at = 0  # stanzas_out when we last sent <r/>
        # Stanzas received and not yet handled by the server (it says so with
        # :meth:`stanza_handled`): our h counts a message only once it is
        # stored, so an <r/> is answered when what came before it is handled.
        self.unhandled = 0
        # The count each waiting <r/> is owed, oldest first: each is answered
        # with the h it asked about, once that many stanzas are handled.
        self._owed: list[int] = []

    @property
    def sent(self) -> int:
        """Stanzas sent since stream management was enabled, mod 2^32."""
        return self._link.stanzas_out

    @property
    def received(self) -> int:
        """Stanzas received since it was enabled, mod 2^32."""
        return self._link.stanzas_in

    @property
    def handled(self) -> int:
        """Our h (§4): stanzas received and handled (a message: stored), mod 2^32."""
        return (self._link.stanzas_in - self.unhandled) % MODULUS

    def stanza_passed_on(self) -> None:
        """A stanza went to the server as an event: it reports it handled later."""
        self.unhandled += 1

    def stanza_handled(self) -> None:
        """The server has handled the oldest stanza it took; answer a waiting <r/>."""
        self.unhandled -= 1
        while self._owed and covers(self.handled, self._owed[0]):
            self._answer(self._owed.pop(0))

    def _answer(self, h: int) -> None:
        if not self._link.ending():
            self._link.write(f"<a xmlns='{NS_SM}' h='{h}'/>".encode())

    def feature(self) -> etree._Element:
        return etree.Element(SM, nsmap={None: NS_SM})

    def on_element(self, element: etree._Element) -> list[Event]:
        tag = element.tag
        if tag == ENABLE:
            return self._on_enable(element)
        if tag == RESUME:
            return self._on_resume(element)
        if not self.enabled:
            # §4: <r/> and <a/> are for a stream with management enabled.
            return self._link.unexpected(element, "")
        if tag == REQUEST:
            if self.unhandled:  # §4: h counts only handled stanzas; answer once they are
                self._owed.append(self.received)
            else:
                self._answer(self.handled)
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

    def _on_enable(self, element: etree._Element) -> list[Event]:
        link = self._link
        # §3: enabling before bind, or a second time, is unexpected-request.
        if self.enabled or link.state is not State.BOUND:
            self._failed("unexpected-request")
            return []
        self.enabled = True
        # §4: both counts start at zero when management is enabled.
        link.stanzas_in = link.stanzas_out = 0
        if element.get("resume") in ("true", "1") and self.resume_timeout > 0:
            self.resume_id = secrets.token_urlsafe(18)
            resumable = f"id='{self.resume_id}' resume='true' max='{self.resume_timeout}'"
            link.write(f"<enabled xmlns='{NS_SM}' {resumable}/>".encode())
        else:
            link.write(f"<enabled xmlns='{NS_SM}'/>".encode())
        return [StreamManagementEnabled(self.resume_id)]

    def _on_resume(self, element: etree._Element) -> list[Event]:
        """§5: a resumption request, instead of bind (so only before one)."""
        link = self._link
        previd, text = element.get("previd", ""), element.get("h", "")
        if self.resume_timeout <= 0 or link.state is not State.UNBOUND or self.enabled:
            self._failed("item-not-found")  # nothing to resume here
            return []
        if not previd or not text.isdigit() or int(text) >= MODULUS:
            self._failed("bad-request")
            return []
        self._resume_h = int(text)
        link.transition(_Input.RESUME_REQUESTED)
        return [ResumeRequested(previd, self._resume_h)]

    def resumed(self, session: Resumable | None, previd: str) -> None:
        """The server's answer to :class:`ResumeRequested` (see the module)."""
        link = self._link
        if link.state is not State.BINDING or link.outstanding.bind_iq is not None:
            raise LocalProtocolError(f"resumed() in state {link.state.name}")
        if session is None or session.jid.bare != link.user:
            self._failed("item-not-found")
            link.transition(_Input.RESUME_FAILED)
            return
        link.jid = session.jid
        self.enabled = True
        self.resume_id = previd
        # §5: our count carries on from the old stream; theirs from their h.
        link.stanzas_in = session.handled
        link.stanzas_out = self.acked = self._requested_at = self._resume_h
        link.write(f"<resumed xmlns='{NS_SM}' previd='{previd}' h='{session.handled}'/>".encode())
        link.transition(_Input.RESUMED)

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
