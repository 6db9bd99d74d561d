"""The native ``<history>`` request, carried out as the archive module's
internal iq (``{urn:xmlchat:archive}history``) and answered as one page of
``<history-result>`` (docs/native-protocol.md, "History")."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Final

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID, InvalidJID, bare_str
from xmlchat.modules.archive import HISTORY, HISTORY_NS
from xmlchat.protocol import native
from xmlchat.stanza import BODY, CLIENT_NS, DELAY_NS

# Call an iq handler as this session: (type, payload) -> the result's payload.
Call = Callable[[str, etree._Element], Awaitable[etree._Element | None]]

_MAM_RESULT: Final = "{urn:xmpp:mam:2}result"
_FORWARDED: Final = "{urn:xmpp:forward:0}forwarded"
_DELAY: Final = f"{{{DELAY_NS}}}delay"
_MESSAGE: Final = f"{{{CLIENT_NS}}}message"
# Room for <history-result><id/><complete/></history-result> around the messages.
_WRAPPER_BYTES: Final = 256


async def history_page(
    call: Call, event: native.HistoryRequested, domain: str, max_bytes: int
) -> tuple[list[bytes], bool]:
    """The page ``event`` asks for: the messages (oldest first, written for the
    wire) and whether it reaches the beginning of the archive. At most about
    ``max_bytes`` of them: the newest that fit, and then it is not complete."""
    result = await call("get", _request(event, domain))
    assert result is not None  # the archive always answers with <history>
    messages = [native.message_xml(_shown(item)) for item in result.iter(_MAM_RESULT)]
    kept = native.newest_that_fit(messages, max_bytes - _WRAPPER_BYTES)
    complete = result.get("complete") == "true" and kept == len(messages)
    return messages[len(messages) - kept :], complete


def _request(event: native.HistoryRequested, domain: str) -> etree._Element:
    request = etree.Element(HISTORY, nsmap={None: HISTORY_NS})
    if event.with_ is not None:
        try:
            # As <to> in a message: "bob" is bob@<domain>.
            request.set("with", str(JID.user(event.with_, domain)))
        except InvalidJID:
            raise StanzaError(StanzaCondition.JID_MALFORMED, f"bad address {event.with_!r}") from None
    # The schema bounded max to 1..100; the archive lowers it to its max_page.
    request.set("max", str(event.max))
    if event.before is not None:
        request.set("before", event.before)
    return request


def _shown(result: etree._Element) -> native.HistoryMessage:
    """A XEP-0313 result (``<result id><forwarded><delay/><message/>``) in the
    native form: bare addresses, the archive's stamp as the time."""
    forwarded = result.find(_FORWARDED)
    delay = None if forwarded is None else forwarded.find(_DELAY)
    message = None if forwarded is None else forwarded.find(_MESSAGE)
    if delay is None or message is None:
        raise StanzaError(StanzaCondition.INTERNAL_SERVER_ERROR, "malformed archive result")
    return native.HistoryMessage(
        archive_id=result.get("id", ""),
        id=message.get("id"),
        sender=_bare(message.get("from", "")),
        to=_bare(message.get("to", "")),
        time=datetime.fromisoformat(delay.get("stamp", "")),
        body=message.findtext(BODY) or "",
    )


def _bare(address: str) -> str:
    with contextlib.suppress(InvalidJID):
        return bare_str(address)
    return address
