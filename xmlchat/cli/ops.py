"""``check`` and ``health``: for operators, before starting and while running.

xmlchat check [--config F]     validate the configuration, the certificate and the
                               listeners' addresses; exit 0 if it would start, 1 if not
                               (against a running server: its listeners must answer)
xmlchat health [--timeout S]   ask the running server for a sign of life on each
                               enabled listener; exit 0 if all answer, 1 otherwise
                               (Docker's HEALTHCHECK convention: 0 healthy, 1 unhealthy)

Both take --host and --port (and --listener) to look elsewhere than the configuration says.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import errno
import os
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509
from lxml import etree

from xmlchat import config_rules
from xmlchat.cli import listeners
from xmlchat.config import Config, Listener
from xmlchat.errors import StreamError
from xmlchat.protocol.native import NS as NATIVE_NS
from xmlchat.protocol.native import VERSION as NATIVE_VERSION
from xmlchat.server import tls
from xmlchat.xml.stream import StanzaReceived, StanzaStream, StreamClosed, StreamLimits

STREAMS_NS: Final = "http://etherx.jabber.org/streams"
# A certificate this close to expiry is reported (Let's Encrypt renews at 30 days left).
EXPIRY_WARNING_DAYS: Final = 14
# What health reads before giving up on an answer: the header plus a few stanzas.
MAX_PROBE_BYTES: Final = 64 * 1024


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    check = sub.add_parser(
        "check", parents=[common], help="validate configuration, certificate and listeners (exit 0/1)"
    )
    check.set_defaults(run=_check, config_error_status=1)
    listeners.add_options(check)
    health = sub.add_parser("health", parents=[common], help="probe the running server (exit 0/1)")
    health.add_argument("--timeout", type=float, default=5.0, metavar="S", help="per listener (default 5)")
    listeners.add_options(health)
    health.set_defaults(run=_health, config_error_status=1)


# ---- check


class _Report:
    def __init__(self) -> None:
        self.failed = False

    def ok(self, what: str) -> None:
        print(f"ok    {what}", flush=True)

    def warn(self, what: str) -> None:
        print(f"warn  {what}", flush=True)

    def fail(self, what: str) -> None:
        self.failed = True
        print(f"FAIL  {what}", flush=True)


def _check(args: argparse.Namespace, config: Config) -> int:
    report = _Report()
    source = args.config or "no file (defaults and XMLCHAT_* environment)"
    report.ok(f"config: {source}; hosts {', '.join(config.hosts)}")
    for problem in config_rules.problems(config):
        report.fail(f"config: {problem}")
    _check_data_dir(config, report)
    running = listeners.running_server(config)
    if running is not None:
        report.ok(f"server: running (pid {running.pid}) on this data directory")
    chosen = listeners.selected(config, args, running)
    if any(listener.tls != "none" for listener in chosen.values()):
        _check_certificate(config, report)
    else:
        report.ok("certificate: not needed (no TLS listener enabled)")
    for name, listener in chosen.items():
        served = running.serves(name, listener) if running is not None else None
        if served is not None:
            _check_served(name, served, config, report)
        else:
            _check_listener(name, listener, config, report)
    if not chosen:
        report.fail("listeners: none enabled")
    if config.metrics.enabled:
        _check_metrics(config, report)
    return 1 if report.failed else 0


def _check_data_dir(config: Config, report: _Report) -> None:
    path = config.data_path.resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        report.fail(f"data directory {path}: {e.strerror}")
        return
    if not os.access(path, os.W_OK | os.X_OK):
        report.fail(f"data directory {path}: not writable by this user")
    else:
        report.ok(f"data directory: {path}")


def _check_certificate(config: Config, report: _Report) -> None:
    try:
        cert_path, key_path = tls.ensure_certificate(config)
        tls.server_context(cert_path, key_path)  # the key matches and both parse
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (tls.CertificateError, ValueError, OSError) as e:
        report.fail(f"certificate: {e}")
        return
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    names = _alt_names(cert)
    what = (
        f"certificate: {cert_path}: subject {cert.subject.rfc4514_string()}"
        f"{'; names ' + ', '.join(names) if names else ''}; expires {cert.not_valid_after_utc:%Y-%m-%d}"
    )
    if left.total_seconds() <= 0:
        report.fail(f"{what}: EXPIRED")
    elif left.days < EXPIRY_WARNING_DAYS:
        report.warn(f"{what}: only {left.days} day(s) left")
    else:
        report.ok(f"{what} ({left.days} days left)")
    missing = [host for host in config.hosts if names and host not in names]
    if missing:
        report.warn(f"certificate: does not name {', '.join(missing)}; clients that verify will refuse it")


def _alt_names(cert: x509.Certificate) -> list[str]:
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [str(name) for name in extension.value.get_values_for_type(x509.DNSName)]


def _check_listener(name: str, listener: Listener, config: Config, report: _Report) -> None:
    from xmlchat.server.app import HTTP_LISTENERS, PROTOCOLS, _check_plaintext_address

    where = f"{listener.address}:{listener.port}" if listener.port else f"{listener.address}:(any free port)"
    if name in HTTP_LISTENERS:
        protocol = "http"
    elif name not in PROTOCOLS:
        report.warn(f"listener {name}: {where} tls={listener.tls}: not available in this build, skipped")
        return
    else:
        protocol = PROTOCOLS[name][0]
    if listener.tls == "none" and name == "native_plain":
        try:
            _check_plaintext_address(listener, config.native.allow_plaintext_on_network)
        except ValueError as e:
            report.fail(f"listener {name}: {e}")
            return
    problem = bind_problem(listener.address, listener.port)
    if problem:
        report.fail(f"listener {name}: {protocol} {where}: {problem}")
    else:
        report.ok(f"listener {name}: {protocol} {where} tls={listener.tls}")


def _check_served(name: str, listener: Listener, config: Config, report: _Report) -> None:
    """A port the running server holds: it must answer there, as health asks."""
    found = probes(config, {name: listener})
    if not found:
        report.warn(f"listener {name}: not available in this build, skipped")
        return
    probe, problem, ms = asyncio.run(_probe_one(found[0], config, 5.0))
    if problem:
        report.fail(f"listener {name}: {probe}: served by the running server, but {problem}")
    else:
        report.ok(f"listener {name}: {probe}: served by the running server, answered in {ms:.0f} ms")


def _check_metrics(config: Config, report: _Report) -> None:
    where = f"{config.metrics.address}:{config.metrics.port}"
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        report.fail("metrics: enabled but prometheus-client is missing: pip install 'xmlchat[metrics]'")
        return
    problem = bind_problem(config.metrics.address, config.metrics.port)
    if problem:
        report.fail(f"metrics: http {where}: {problem}")
    else:
        report.ok(f"metrics: http://{where}/metrics")


def bind_problem(address: str, port: int) -> str | None:
    """Why the server could not listen on ``address:port``, or None if it could.

    Binds and closes at once, with SO_REUSEADDR as asyncio's start_server sets
    it, so a port held only by TIME_WAIT connections is not reported.
    """
    try:
        infos = socket.getaddrinfo(address or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        return f"cannot resolve {address!r}: {e.strerror}"
    for family, type_, proto, _, sockaddr in infos:
        with socket.socket(family, type_, proto) as sock:
            if os.name == "posix":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(sockaddr)
            except OSError as e:
                return _bind_error(e, port)
    return None


def _bind_error(e: OSError, port: int) -> str:
    if e.errno == errno.EADDRINUSE:
        return f"port {port} is already in use (another xmlchat running?)"
    if e.errno == errno.EACCES:
        return f"permission denied (port {port} needs privileges below 1024)"
    if e.errno == errno.EADDRNOTAVAIL:
        return "address not available on this machine"
    return e.strerror or str(e)


def enabled_listeners(config: Config) -> dict[str, Listener]:
    return {
        name: listener
        for name in config.listeners.__dataclass_fields__
        if (listener := getattr(config.listeners, name)).enabled
    }


# ---- health


class ProbeFailed(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Probe:
    name: str
    protocol: str  # "native" or "xmpp"
    host: str
    port: int
    tls: str

    def __str__(self) -> str:
        return f"{self.name} {self.protocol} {self.host}:{self.port} tls={self.tls}"


def probes(config: Config, chosen: dict[str, Listener] | None = None) -> list[Probe]:
    """One probe per listener (default: every enabled one) this build serves,
    at a connectable address."""
    from xmlchat.server.app import PROTOCOLS

    out = []
    for name, listener in (enabled_listeners(config) if chosen is None else chosen).items():
        if name in PROTOCOLS and listener.port:
            out.append(
                Probe(name, PROTOCOLS[name][0], _connectable(listener.address), listener.port, listener.tls)
            )
    return out


def _connectable(address: str) -> str:
    # A wildcard bind is reached over loopback (the probe runs beside the server).
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(address, address)


def _health(args: argparse.Namespace, config: Config) -> int:
    # The running server (if it answers on this data directory) says which
    # ports listeners configured on port 0 got.
    running = listeners.running_server(config)
    chosen = listeners.selected(config, args, running)
    if running is not None:
        chosen = {name: running.serves(name, listener) or listener for name, listener in chosen.items()}
    todo = probes(config, chosen)
    if not todo:
        print("FAIL  no enabled listener to probe", flush=True)
        return 1
    results = asyncio.run(_probe_all(todo, config, args.timeout))
    for probe, problem, ms in results:
        print(
            f"FAIL  {probe}: {problem}" if problem else f"ok    {probe}: answered in {ms:.0f} ms", flush=True
        )
    return 1 if any(problem for _, problem, _ in results) else 0


async def _probe_all(
    todo: list[Probe], config: Config, timeout: float
) -> list[tuple[Probe, str | None, float]]:
    return list(await asyncio.gather(*(_probe_one(p, config, timeout) for p in todo)))


async def _probe_one(probe: Probe, config: Config, timeout: float) -> tuple[Probe, str | None, float]:
    started = time.monotonic()
    try:
        await asyncio.wait_for(probe_listener(probe, config.domain), timeout)
    except TimeoutError:
        return probe, f"no answer within {timeout:g} s", 0.0
    except (OSError, ssl.SSLError) as e:
        return probe, e.strerror or str(e) or type(e).__name__, 0.0
    except ProbeFailed as e:
        return probe, str(e), 0.0
    except StreamError as e:
        return probe, f"unreadable answer: {e}", 0.0
    return probe, None, (time.monotonic() - started) * 1000


async def probe_listener(probe: Probe, domain: str) -> None:
    """Connect and exchange one round trip; raise ProbeFailed if the answer is wrong.

    Native: ``<session><ping/>`` must get ``<pong/>``. XMPP: a stream header
    must get ``<stream:features>`` (RFC 6120 §4.3.2), with or without STARTTLS.
    Certificates are not verified: the probe checks liveness, not identity.
    """
    context = tls.client_context(insecure=True) if probe.tls == "direct" else None
    reader, writer = await asyncio.open_connection(probe.host, probe.port, ssl=context)
    try:
        if probe.protocol == "native":
            writer.write(f"<session xmlns='{NATIVE_NS}' version='{NATIVE_VERSION}'><ping/>".encode())
            await _expect(reader, f"{{{NATIVE_NS}}}pong", f"{{{NATIVE_NS}}}error")
            writer.write(b"</session>")
        else:
            writer.write(
                f"<?xml version='1.0'?><stream:stream to='{domain}' version='1.0' "
                f"xmlns='jabber:client' xmlns:stream='{STREAMS_NS}'>".encode()
            )
            await _expect(reader, f"{{{STREAMS_NS}}}features", f"{{{STREAMS_NS}}}error")
            writer.write(b"</stream:stream>")
        await writer.drain()
    finally:
        writer.close()


async def _expect(reader: asyncio.StreamReader, wanted: str, error: str) -> None:
    stream = StanzaStream(StreamLimits(max_stanza_bytes=MAX_PROBE_BYTES))
    received = 0
    while received < MAX_PROBE_BYTES:
        data = await reader.read(4096)
        if not data:
            raise ProbeFailed("connection closed without an answer")
        received += len(data)
        for event in stream.feed(data):
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
