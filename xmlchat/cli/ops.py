"""``check`` and ``health``: for operators, before starting and while running.

xmlchat check [--config F]     validate the configuration, the certificate and the
                               listeners' addresses; exit 0 if it would start, 1 if not
                               (against a running server: its listeners must answer)
xmlchat health [--timeout S]   ask the running server for a sign of life on each
                               enabled listener; exit 0 if all answer, 1 otherwise
                               (Docker's HEALTHCHECK convention: 0 healthy, 1 unhealthy)

Both take --host and --port (and --listener) to look elsewhere than the configuration says.
How each kind of listener is asked for a sign of life: :mod:`xmlchat.cli.probes`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import errno
import os
import socket
from typing import Any, Final

from cryptography import x509

from xmlchat import config_rules
from xmlchat.cli import listeners, probes
from xmlchat.config import Config, Listener
from xmlchat.server import tls

# A certificate this close to expiry is reported (Let's Encrypt renews at 30 days left).
EXPIRY_WARNING_DAYS: Final = 14


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
    from xmlchat.server.listening import check_plaintext_address

    where = f"{listener.address}:{listener.port}" if listener.port else f"{listener.address}:(any free port)"
    protocol = probes.served_protocol(name)
    if protocol is None:
        report.warn(f"listener {name}: {where} tls={listener.tls}: not available in this build, skipped")
        return
    if listener.tls == "none" and name == "native_plain":
        try:
            check_plaintext_address(listener, config.native.allow_plaintext_on_network)
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
    found = probes.probes(config, {name: listener})
    if not found:
        report.warn(f"listener {name}: not available in this build, skipped")
        return
    probe, problem, ms = asyncio.run(probes.probe_one(found[0], config, 5.0))
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


# ---- health


def _health(args: argparse.Namespace, config: Config) -> int:
    # The running server (if it answers on this data directory) says which
    # ports listeners configured on port 0 got.
    running = listeners.running_server(config)
    chosen = listeners.selected(config, args, running)
    if running is not None:
        chosen = {name: running.serves(name, listener) or listener for name, listener in chosen.items()}
    todo = probes.probes(config, chosen)
    if not todo:
        print("FAIL  no enabled listener to probe", flush=True)
        return 1
    results = asyncio.run(probes.probe_all(todo, config, args.timeout))
    for probe, problem, ms in results:
        print(
            f"FAIL  {probe}: {problem}" if problem else f"ok    {probe}: answered in {ms:.0f} ms", flush=True
        )
    return 1 if any(problem for _, problem, _ in results) else 0
