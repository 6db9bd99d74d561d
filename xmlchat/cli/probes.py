"""How ``health`` (and ``check``, against a running server) asks a listener
for a sign of life: one round trip in the listener's own protocol.

- native: ``<session><ping/>`` must get ``<pong/>``;
- XMPP: a stream header must get ``<stream:features>`` (RFC 6120 §4.3.2),
  with or without STARTTLS;
- XEP-0114 components: a stream header must get the server's header back
  (§3: a component stream has no features);
- HTTP (WebSocket, BOSH, the web page): XEP-0156's ``/.well-known/host-meta``,
  served by the same application, must answer 200.

Certificates are not verified: a probe checks liveness, not identity.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from typing import Final

from lxml import etree

from xmlchat.config import Config, Listener
from xmlchat.errors import StreamError
from xmlchat.protocol.native import NS as NATIVE_NS
from xmlchat.protocol.native import VERSION as NATIVE_VERSION
from xmlchat.server import tls
from xmlchat.xml.stream import StanzaReceived, StanzaStream, StreamClosed, StreamLimits, StreamOpened

STREAMS_NS: Final = "http://etherx.jabber.org/streams"
# What a probe reads before giving up on an answer: the header plus a few stanzas.
MAX_PROBE_BYTES: Final = 64 * 1024
# The longest HTTP status line a probe reads.
MAX_STATUS_LINE: Final = 1024


class ProbeFailed(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Probe:
    name: str
    protocol: str  # "native", "xmpp", "component" or "http"
    host: str
    port: int
    tls: str

    def __str__(self) -> str:
        return f"{self.name} {self.protocol} {self.host}:{self.port} tls={self.tls}"


def served_protocol(name: str) -> str | None:
    """What the listener ``name`` speaks ("native", "xmpp", "component", "http"),
    None if this build does not serve it."""
    from xmlchat.server.app import HTTP_LISTENERS, PROTOCOLS

    if name in HTTP_LISTENERS:
        return "http"
    return PROTOCOLS[name][0] if name in PROTOCOLS else None


def probes(config: Config, chosen: dict[str, Listener]) -> list[Probe]:
    """One probe per listener in ``chosen`` this build serves, at a connectable address."""
    out = []
    for name, listener in chosen.items():
        protocol = served_protocol(name)
        if protocol is not None and listener.port:
            out.append(Probe(name, protocol, connectable(listener.address), listener.port, listener.tls))
    return out


def connectable(address: str) -> str:
    # A wildcard bind is reached over loopback (the probe runs beside the server).
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(address, address)


async def probe_all(
    todo: list[Probe], config: Config, timeout: float
) -> list[tuple[Probe, str | None, float]]:
    return list(await asyncio.gather(*(probe_one(p, config, timeout) for p in todo)))


async def probe_one(probe: Probe, config: Config, timeout: float) -> tuple[Probe, str | None, float]:
    """``(probe, why it failed or None, milliseconds to the answer)``."""
    started = time.monotonic()
    try:
        await asyncio.wait_for(probe_listener(probe, _addressed(probe, config)), timeout)
    except TimeoutError:
        return probe, f"no answer within {timeout:g} s", 0.0
    except (OSError, ssl.SSLError) as e:
        return probe, e.strerror or str(e) or type(e).__name__, 0.0
    except ProbeFailed as e:
        return probe, str(e), 0.0
    except StreamError as e:
        return probe, f"unreadable answer: {e}", 0.0
    return probe, None, (time.monotonic() - started) * 1000


def _addressed(probe: Probe, config: Config) -> str:
    """The domain a probe's stream header names: a component's own, so the
    server answers with its header rather than host-unknown (XEP-0114 §3)."""
    if probe.protocol == "component":
        return next(iter(config.components.secrets), config.domain)
    return config.domain


async def probe_listener(probe: Probe, domain: str) -> None:
    """Connect and exchange one round trip; raise ProbeFailed if the answer is wrong."""
    context = tls.client_context(insecure=True) if probe.tls == "direct" else None
    reader, writer = await asyncio.open_connection(probe.host, probe.port, ssl=context)
    try:
        if probe.protocol == "http":
            await _http(reader, writer, domain)
        elif probe.protocol == "native":
            writer.write(f"<session xmlns='{NATIVE_NS}' version='{NATIVE_VERSION}'><ping/>".encode())
            await _expect(reader, f"{{{NATIVE_NS}}}pong", f"{{{NATIVE_NS}}}error")
            writer.write(b"</session>")
        else:
            namespace = "jabber:component:accept" if probe.protocol == "component" else "jabber:client"
            writer.write(
                f"<?xml version='1.0'?><stream:stream to='{domain}' version='1.0' "
                f"xmlns='{namespace}' xmlns:stream='{STREAMS_NS}'>".encode()
            )
            wanted = None if probe.protocol == "component" else f"{{{STREAMS_NS}}}features"
            await _expect(reader, wanted, f"{{{STREAMS_NS}}}error")
            writer.write(b"</stream:stream>")
        await writer.drain()
    finally:
        writer.close()


async def _http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, domain: str) -> None:
    writer.write(
        f"GET /.well-known/host-meta HTTP/1.1\r\nHost: {domain}\r\nConnection: close\r\n\r\n".encode()
    )
    try:
        status = await reader.readuntil(b"\r\n")
    except asyncio.IncompleteReadError as e:
        raise ProbeFailed("connection closed without an answer") from e
    except asyncio.LimitOverrunError as e:
        raise ProbeFailed("unreadable answer: no HTTP status line") from e
    line = status[:MAX_STATUS_LINE].decode("latin-1").strip()
    if not line.startswith("HTTP/"):
        raise ProbeFailed("unreadable answer: no HTTP status line")
    if line.split(" ", 2)[1:2] != ["200"]:
        raise ProbeFailed(f"answered {line}")


async def _expect(reader: asyncio.StreamReader, wanted: str | None, error: str) -> None:
    """Read until the element ``wanted`` arrives (None: the stream header itself)."""
    stream = StanzaStream(StreamLimits(max_stanza_bytes=MAX_PROBE_BYTES))
    received = 0
    while received < MAX_PROBE_BYTES:
        data = await reader.read(4096)
        if not data:
            raise ProbeFailed("connection closed without an answer")
        received += len(data)
        for event in stream.feed(data):
            if isinstance(event, StreamOpened) and wanted is None:
                return
            if isinstance(event, StreamClosed):
                raise ProbeFailed("stream closed without an answer")
            if isinstance(event, StanzaReceived):
                if event.element.tag == wanted:
                    return
                if event.element.tag == error:
                    raise ProbeFailed(f"error from the server: {_condition(event.element)}")
    raise ProbeFailed("no answer in the first bytes")


def _condition(error: etree._Element) -> str:
    """Native ``<error><condition>c</condition>``; XMPP ``<stream:error><c xmlns=.../>``."""
    for child in error:
        name = etree.QName(child).localname
        if name == "condition":
            return child.text or "unknown"
        if name != "text":
            return name
    return "unknown"
