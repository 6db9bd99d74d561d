"""Shared by the c2s stream core tests (tests/protocol/test_c2s_*.py): a driver
that plays transport and server, a scripted login, and readers for server output."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import scramp
from lxml import etree

from xmlchat.errors import StreamError
from xmlchat.protocol.xmpp import (
    BindRequest,
    C2SStream,
    Event,
    NeedCredentials,
    NeedPasswordCheck,
    StanzaIn,
    StartTls,
    State,
    StreamFailed,
    StreamManagementEnabled,
)
from xmlchat.storage import ScramCredentials

SALT = base64.b64decode("OWJhMWE1ZGItOGJhMC00MTlkLThkYTctYmZhZTI1MzVhMzkz")  # Prosody's, from the transcripts
PASSWORD = "alicepw"

HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"
)
FOOTER = b"</stream:stream>"


def make_credentials(iterations: int = 10000) -> dict[str, ScramCredentials]:
    out = {}
    for mech in ("SCRAM-SHA-1", "SCRAM-SHA-256"):
        salt, stored, server, i = scramp.ScramMechanism(mech).make_auth_info(
            PASSWORD, iteration_count=iterations, salt=SALT
        )
        out[mech] = ScramCredentials(mech, salt, i, stored, server)
    return out


CREDENTIALS = make_credentials()


def counter(prefix: str) -> Callable[[], str]:
    n = iter(range(1, 1_000_000))
    return lambda: f"{prefix}{next(n)}"


def make_core(**kwargs: Any) -> C2SStream:
    kwargs.setdefault("tls_available", True)
    kwargs.setdefault("id_factory", counter("id"))
    return C2SStream(["localhost"], **kwargs)


@dataclass
class Driver:
    """Plays the transport and the server: answers every request at once."""

    core: C2SStream
    password: str = PASSWORD
    channel_binding: dict[str, bytes] | None = None
    events: list[Event] = field(default_factory=list)
    # As the server does once XEP-0198 is on: each stanza passed on is reported
    # handled (a message: stored) at once, unless the test holds them.
    hold_stanzas: bool = False
    sm_on: bool = False
    out: bytearray = field(default_factory=bytearray)
    # The same output as the core's units (a message framing's messages), until taken.
    units: list[bytes] = field(default_factory=list)

    def feed(self, data: bytes) -> list[Event]:
        return self.handle(self.core.receive_data(data))

    def handle(self, events: list[Event]) -> list[Event]:
        work, handled = list(events), []
        while work:
            event = work.pop(0)
            handled.append(event)
            if isinstance(event, StartTls):
                self._collect()  # the <proceed/> goes out in clear
                work[:0] = self.core.tls_started(self.channel_binding)
            elif isinstance(event, NeedCredentials):
                creds = CREDENTIALS[event.mechanism] if event.username == "alice" else None
                work[:0] = self.core.provide_credentials(creds)
            elif isinstance(event, NeedPasswordCheck):
                work[:0] = self.core.password_checked(
                    event.username == "alice" and event.password == self.password
                )
            elif isinstance(event, StreamManagementEnabled):
                self.sm_on = True
            elif isinstance(event, StanzaIn) and self.sm_on and not self.hold_stanzas:
                assert self.core.sm is not None
                self.core.sm.stanza_handled()
            elif isinstance(event, BindRequest):
                user = self.core.user
                assert user is not None
                work[:0] = self.core.bound(user.with_resource(event.resource or "generated"))
        self.events += handled
        self._collect()
        return handled

    def _collect(self) -> None:
        units = self.core.frames_to_send()
        self.units += units
        self.out += b"".join(units)

    def take(self) -> bytes:
        self._collect()
        out = bytes(self.out)
        self.out.clear()
        return out

    def take_units(self) -> list[etree._Element]:
        """The units queued since the last take, each parsed on its own (as a browser would)."""
        self._collect()
        units, self.units = self.units, []
        self.out.clear()
        return [etree.fromstring(unit) for unit in units]


def login(core: C2SStream | None = None, *, resource: str = "res") -> Driver:
    """A bound session (PLAIN over TLS): returns the driver with its output drained."""
    driver = Driver(core or make_core())
    driver.feed(HEADER + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    driver.feed(HEADER + auth_plain("alice", PASSWORD))
    driver.feed(HEADER + bind_iq(resource))
    assert driver.core.state is State.BOUND
    driver.take()
    driver.events.clear()
    return driver


def auth_plain(user: str, password: str, authzid: str = "") -> bytes:
    blob = base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()
    return f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{blob}</auth>".encode()


def bind_iq(resource: str | None, iq_id: str = "b1") -> bytes:
    inner = f"<resource>{resource}</resource>" if resource is not None else ""
    return (
        f"<iq type='set' id='{iq_id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>{inner}</bind></iq>"
    ).encode()


_HEADER_RE = re.compile(rb"(<\?xml[^>]*\?>)?<stream:stream\b[^>]*>")


def items(data: bytes) -> list[Any]:
    """Top-level items of server output, comparable: headers, elements, the footer."""
    out: list[Any] = []
    for part in re.split(rb"((?:<\?xml[^>]*\?>)?<stream:stream\b[^>]*>|</stream:stream>)", data):
        if not part:
            continue
        if part == FOOTER:
            out.append("footer")
        elif _HEADER_RE.fullmatch(part):
            root = etree.fromstring(part + FOOTER)
            out.append(("header", dict(root.attrib)))
        else:
            wrapped = (
                b"<w xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>" + part + b"</w>"
            )
            out.extend(canon(el) for el in etree.fromstring(wrapped))
    return out


def canon(el: etree._Element) -> Any:
    return (el.tag, sorted(el.attrib.items()), (el.text or "").strip(), [canon(c) for c in el])


def stream_error_condition(data: bytes) -> str:
    for item in items(data):
        if item[0] == "{http://etherx.jabber.org/streams}error":
            return etree.QName(item[3][0][0]).localname
    raise AssertionError(f"no stream error in {data!r}")


def failed(events: list[Event]) -> StreamError:
    assert isinstance(events[-1], StreamFailed), events
    return events[-1].error


def tls_driver(**kwargs: Any) -> Driver:
    driver = Driver(make_core(**kwargs))
    driver.feed(HEADER + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    driver.feed(HEADER)
    driver.take()
    driver.events.clear()
    return driver


def features_of_output(data: bytes) -> list[str]:
    features = [i for i in items(data) if isinstance(i, tuple) and i[0].endswith("}features")]
    return [etree.QName(c[0]).localname for c in features[-1][3]]
