"""TLS: the server certificate and SSL contexts.

With no certificate configured, a self-signed one is generated into the data
directory on first start (as Prosody's and ejabberd's packages do at install),
so TLS is on from the first run. Clients pin it or use ``--insecure``.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import datetime
import ipaddress
import logging
import os
import ssl
import threading
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from xmlchat.config import Config
from xmlchat.metrics import Metrics
from xmlchat.server.transport import StreamTransport

log = logging.getLogger(__name__)


class CertificateError(ValueError):
    """The configured certificate or key cannot be used."""


def certificate_paths(config: Config) -> tuple[Path, Path]:
    if config.tls.cert_file or config.tls.key_file:
        if not (config.tls.cert_file and config.tls.key_file):
            raise CertificateError("set both tls.cert_file and tls.key_file, or neither")
        return Path(config.tls.cert_file), Path(config.tls.key_file)
    return config.data_path / "tls" / "cert.pem", config.data_path / "tls" / "key.pem"


def ensure_certificate(config: Config) -> tuple[Path, Path]:
    """Return (cert, key) paths, generating a self-signed pair if none is
    configured, and again when the generated one names other hosts than the
    configuration now does (clients check the name: RFC 6125)."""
    cert, key = certificate_paths(config)
    configured = bool(config.tls.cert_file)
    if configured:
        missing = [path for path in (cert, key) if not path.exists()]
        if missing:
            raise CertificateError(f"{missing[0]}: no such file")
        return cert, key
    if not cert.exists() or not key.exists():
        generate_self_signed(config.hosts, cert, key)
        log.info("generated a self-signed certificate for %s in %s", ", ".join(config.hosts), cert)
    elif (named := dns_names(cert)) != set(config.hosts):
        generate_self_signed(config.hosts, cert, key)
        log.warning(
            "the hosts changed (%s, was %s): generated a new self-signed certificate in %s; "
            "clients that pinned the old one must trust the new one",
            ", ".join(config.hosts),
            ", ".join(sorted(named)) or "none",
            cert,
        )
    return cert, key


def dns_names(cert_path: Path) -> set[str]:
    """The DNS names of a certificate's subjectAltName (none if it has none or cannot be read)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return set()
    return set(alt.get_values_for_type(x509.DNSName))


def generate_self_signed(hosts: tuple[str, ...], cert_path: Path, key_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(h) for h in hosts]
    alt_names += [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # The key is written owner-only before any byte of it lands on disk.
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def server_end_point(cert_path: Path) -> bytes:
    """RFC 5929 §4.1 tls-server-end-point: a hash of our certificate, with the
    certificate's own signature hash (SHA-256 for MD5 or SHA-1)."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    algorithm = cert.signature_hash_algorithm
    if algorithm is None or isinstance(algorithm, hashes.MD5 | hashes.SHA1):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(cert.public_bytes(serialization.Encoding.DER))
    return digest.finalize()


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as e:
        raise CertificateError(f"cannot load {cert} / {key}: {e}") from e
    return ctx


def client_context(cafile: str | None = None, insecure: bool = False) -> ssl.SSLContext:
    """For the bundled clients: verify against ``cafile`` (e.g. the server's own
    generated cert.pem, i.e. pinning) or the system store; ``insecure`` skips it."""
    ctx = ssl.create_default_context(cafile=cafile)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


# asyncio gives every TLS connection a read buffer of SSLProtocol.max_size,
# 256 KiB, allocated (and touched) when the handshake starts: most of the 312 KiB
# a pending handshake was measured to cost (docs/security.md). 32 KiB still
# holds two whole TLS records (RFC 8446 §5.1: at most 16 KiB plus overhead); a
# larger read simply takes more turns of the loop.
TLS_READ_BUFFER_BYTES = 32 * 1024

# One read buffer per thread (per event loop), shared by its TLS connections.
_read_buffers = threading.local()


def bound_tls_read_buffers() -> None:
    """Make asyncio's TLS read buffer :data:`TLS_READ_BUFFER_BYTES`, and one
    per thread instead of one per connection (32 KiB of every idle TLS
    session): the socket transport fills it (``get_buffer``, ``recv_into``)
    and ``buffer_updated`` copies it into the connection's incoming BIO in
    the same callback, so no connection's bytes stay in it while another
    reads. For every TLS connection this process makes from now on."""
    protocol = asyncio.sslproto.SSLProtocol
    protocol.max_size = TLS_READ_BUFFER_BYTES
    if getattr(protocol, "_xmlchat_shared_buffer", False):
        return
    original = protocol.__init__

    def __init__(self: asyncio.sslproto.SSLProtocol, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        view: memoryview | None = getattr(_read_buffers, "view", None)
        if view is None or len(view) != self.max_size:
            view = _read_buffers.view = memoryview(bytearray(self.max_size))
        self._ssl_buffer, self._ssl_buffer_view = view.obj, view  # type: ignore[attr-defined]

    protocol.__init__ = __init__  # type: ignore[method-assign]
    protocol._xmlchat_shared_buffer = True  # type: ignore[attr-defined]


async def handshake(
    transport: StreamTransport, context: ssl.SSLContext, timeout: float, metrics: Metrics
) -> bool:
    """A direct-TLS client's handshake, within ``timeout`` seconds
    (``limits.tls_handshake_timeout``); False, the connection dropped, if it failed."""
    try:
        await transport.start_tls(context, timeout)
        return True
    except asyncio.CancelledError:
        # Only the loop's end cancels a handshake (the server stopping). The
        # task ends normally: Python 3.11's asyncio logs a cancelled
        # client_connected_cb task as an error, and aborting the transport
        # mid-handshake instead trips start_tls itself.
        transport.abort()
        return False
    except (OSError, ssl.SSLError) as e:
        # asyncio aborts a handshake that times out with ConnectionAbortedError.
        reason = "timeout" if isinstance(e, ConnectionAbortedError) else "error"
        if reason == "timeout":
            metrics.limit_hit("tls_handshake_timeout")
        log.info("TLS handshake from %s failed (%s): %s", transport.address, reason, e)
        transport.abort()
        return False
