"""XEP-0114 Jabber Component Protocol, the server's side, sans I/O.

A component opens ``<stream:stream xmlns='jabber:component:accept' to='its
domain'>``; the server answers with a header carrying a stream id; the
component proves it knows the shared secret with ``<handshake>``, the hex
SHA-1 of the stream id followed by the secret (§3), and the server answers
``<handshake/>``. From then on the component sends and receives stanzas for
its own domain; a 'from' outside it is ``invalid-from`` (RFC 6120 §4.9.3.9).

Stanzas leave this core in ``jabber:client`` (what the hub and its modules
speak) and are written in ``jabber:component:accept``: the namespace is the
only difference (§3).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from lxml import etree

from xmlchat.errors import StanzaError, StreamCondition, StreamError
from xmlchat.jid import JID, InvalidJID
from xmlchat.stanza import CLIENT_NS, new_id
from xmlchat.xml.stream import StanzaReceived, StanzaStream, StreamClosed, StreamLimits, StreamOpened
from xmlchat.xml.writer import NS_STREAMS, STREAM_FOOTER, error_reply, stream_error

NS: Final = "jabber:component:accept"
HANDSHAKE: Final = f"{{{NS}}}handshake"
_STANZAS: Final = frozenset(f"{{{NS}}}{kind}" for kind in ("message", "presence", "iq"))


@dataclass(frozen=True, slots=True)
class Authenticated:
    """The handshake succeeded: the component serves ``domain``."""

    domain: str


@dataclass(frozen=True, slots=True)
class StanzaIn:
    """A stanza from the component, in ``jabber:client``, 'from' and 'to' checked."""

    element: etree._Element
    to: JID


@dataclass(frozen=True, slots=True)
class Closed:
    """The component closed its stream."""


@dataclass(frozen=True, slots=True)
class Failed:
    """The stream ended with an error sent to the component."""

    error: StreamError


Event = Authenticated | StanzaIn | Closed | Failed


def handshake_digest(stream_id: str, secret: str) -> str:
    """§3: hex SHA-1 of the stream id concatenated with the secret."""
    return hashlib.sha1((stream_id + secret).encode("utf-8")).hexdigest()


class ComponentStream:
    """One component connection: feed bytes in, take bytes and events out."""

    def __init__(
        self,
        secrets: Mapping[str, str],
        limits: StreamLimits | None = None,
        id_factory: Callable[[], str] = new_id,
    ) -> None:
        self._secrets = dict(secrets)
        self._parser = StanzaStream(limits or StreamLimits())
        self._id = id_factory()
        self._out: list[bytes] = []
        self.domain: str | None = None  # set when the handshake succeeds
        self._requested: str | None = None  # the domain the header asked for
        self.closed = False

    def receive_data(self, data: bytes) -> list[Event]:
        if self.closed:
            return []
        events: list[Event] = []
        try:
            for parsed in self._parser.feed(data):
                if self.closed:
                    break
                match parsed:
                    case StreamOpened(tag, attrib, nsmap):
                        self._opened(tag, attrib, nsmap)
                    case StanzaReceived(element):
                        events += self._stanza(element)
                    case StreamClosed():
                        self._out.append(STREAM_FOOTER)
                        self.closed = True
                        events.append(Closed())
        except StreamError as error:
            return [*events, self._fail(error)]
        return events

    def rest(self, final: bool = False) -> bool:
        """Free the parser while nothing is half-received (:meth:`StanzaStream.rest`)."""
        return self._parser.rest(final)

    def data_to_send(self) -> bytes:
        return b"".join(self.frames_to_send())

    def frames_to_send(self) -> list[bytes]:
        """What is queued, one entry per top-level unit (header, stanza, error)."""
        out, self._out = self._out, []
        return out

    def send_stanza(self, stanza: etree._Element) -> None:
        if not self.closed and self.domain is not None:
            self._out.append(
                etree.tostring(_renamed(stanza, CLIENT_NS, NS), encoding="utf-8", with_tail=False)
            )

    def send_stanza_error(self, stanza: etree._Element, error: StanzaError) -> None:
        if stanza.get("type") != "error":  # RFC 6120 §8.3.1: errors are never answered
            self.send_stanza(error_reply(stanza, error))

    def send_stream_error(self, error: StreamError) -> None:
        self._fail(error)

    # ---- input

    def _opened(self, tag: str, attrib: dict[str, str], nsmap: dict[str | None, str]) -> None:
        if tag != f"{{{NS_STREAMS}}}stream" or nsmap.get(None) != NS:
            raise StreamError(StreamCondition.INVALID_NAMESPACE, f"expected {NS}")
        requested = attrib.get("to", "")
        if requested not in self._secrets:
            # Before _requested is set: _fail sends our header first (§4.9.1.2).
            raise StreamError(StreamCondition.HOST_UNKNOWN, "no such component")
        self._requested = requested
        self._out.append(
            f"<?xml version='1.0'?><stream:stream xmlns='{NS}' xmlns:stream='{NS_STREAMS}'"
            f" from='{self._requested}' id='{self._id}'>".encode()
        )

    def _stanza(self, element: etree._Element) -> list[Event]:
        if self.domain is None:
            return [self._handshake(element)]
        if element.tag not in _STANZAS:
            raise StreamError(StreamCondition.UNSUPPORTED_STANZA_TYPE, str(element.tag))
        try:
            sender, to = JID.parse(element.get("from", "")), JID.parse(element.get("to", ""))
        except InvalidJID:
            raise StreamError(StreamCondition.IMPROPER_ADDRESSING, "'from' and 'to' must be JIDs") from None
        if sender.domain != self.domain:
            raise StreamError(StreamCondition.INVALID_FROM, f"'from' must be at {self.domain}")
        return [StanzaIn(_renamed(element, NS, CLIENT_NS), to)]

    def _handshake(self, element: etree._Element) -> Event:
        secret = self._secrets[self._requested or ""]
        expected = handshake_digest(self._id, secret)
        if element.tag != HANDSHAKE or not hmac.compare_digest(
            (element.text or "").strip().lower(), expected
        ):
            raise StreamError(StreamCondition.NOT_AUTHORIZED, "handshake failed")
        self.domain = self._requested
        self._out.append(f"<handshake xmlns='{NS}'/>".encode())
        return Authenticated(self.domain or "")

    def _fail(self, error: StreamError) -> Failed:
        if not self.closed:
            if self._requested is None:  # §4.9.1.2: a header of ours before the error
                self._out.append(
                    f"<?xml version='1.0'?><stream:stream xmlns='{NS}' xmlns:stream='{NS_STREAMS}'"
                    f" id='{self._id}'>".encode()
                )
            self._out += [stream_error(error), STREAM_FOOTER]
            self.closed = True
        return Failed(error)


def _renamed(element: etree._Element, old: str, new: str) -> etree._Element:
    """A copy of ``element`` with every element of namespace ``old`` moved to ``new``."""
    prefix = f"{{{old}}}"
    root = etree.Element(_rename(str(element.tag), prefix, new), dict(element.attrib), nsmap={None: new})
    _copy(element, root, prefix, new)
    return root


def _copy(source: etree._Element, target: etree._Element, prefix: str, new: str) -> None:
    target.text = source.text
    for child in source:
        if isinstance(child.tag, str):
            tag = _rename(child.tag, prefix, new)
            namespace = etree.QName(tag).namespace
            # A payload in its own namespace declares it as its default, as sent.
            nsmap = {None: namespace} if namespace and namespace != etree.QName(target).namespace else None
            copy = etree.SubElement(target, tag, dict(child.attrib), nsmap=nsmap)
            _copy(child, copy, prefix, new)
            copy.tail = child.tail


def _rename(tag: str, prefix: str, new: str) -> str:
    return f"{{{new}}}{tag[len(prefix) :]}" if tag.startswith(prefix) else tag
