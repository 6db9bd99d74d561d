"""Trusting a server's certificate: the data directory's, a file, or its
fingerprint pinned on first use (as ssh's ``known_hosts``).

A self-signed certificate cannot be verified against the system's CAs. The
clients trust, in order: ``--cafile FILE``; the certificate the server
generated in the data directory (when client and server share it); with
``--trust-on-first-use``, the certificate whose SHA-256 fingerprint was
recorded for ``host:port`` in ``known_hosts`` the first time (recorded then,
refused loudly if it ever changes). :func:`explain` turns a verification
failure into what to do about it.
"""

from __future__ import annotations

import hashlib
import os
import ssl
from pathlib import Path
from typing import Final

KNOWN_HOSTS_NAME: Final = "known_hosts"


class FingerprintChanged(Exception):
    """The server's certificate is not the one pinned for it."""


def known_hosts_path() -> Path:
    """``$XDG_CONFIG_HOME/xmlchat/known_hosts``, else ``~/.config/xmlchat/known_hosts``."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "xmlchat" / KNOWN_HOSTS_NAME


def fingerprint(der: bytes) -> str:
    """``SHA256:`` and the colon-separated hex digest, as browsers show it."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return "SHA256:" + ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def pinned_context(
    host: str, port: int, known_hosts: Path, timeout: float = 10.0
) -> tuple[ssl.SSLContext, str]:
    """A context trusting exactly the certificate pinned for ``host:port``
    (pinning the one the server shows now, the first time). Returns it and a
    line saying what happened. Raises :class:`FingerprintChanged`."""
    pem = ssl.get_server_certificate((host, port), timeout=timeout)
    seen = fingerprint(ssl.PEM_cert_to_DER_cert(pem))
    name = f"{host}:{port}"
    pins = _read(known_hosts)
    if name in pins and pins[name] != seen:
        raise FingerprintChanged(
            f"the certificate of {name} CHANGED since it was pinned: it was {pins[name]}, "
            f"it is now {seen}. Someone may be intercepting the connection; if the server's "
            f"certificate really was replaced, delete the {name} line of {known_hosts}"
        )
    said = f"{name}: certificate {seen} matches {known_hosts}"
    if name not in pins:
        known_hosts.parent.mkdir(parents=True, exist_ok=True)
        with open(known_hosts, "a", encoding="utf-8") as f:
            f.write(f"{name} {seen}\n")
        said = f"{name}: trusting certificate {seen} from now on (pinned in {known_hosts})"
    context = ssl.create_default_context(cadata=pem)
    context.check_hostname = False  # the pinned certificate itself is the identity
    return context, said


def _read(known_hosts: Path) -> dict[str, str]:
    try:
        lines = known_hosts.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    pins = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#"):
            pins[parts[0]] = parts[1]
    return pins


def explain(reason: str, host: str, port: int, local_cert: Path) -> str:
    """What a user who cannot verify the server's certificate should do.
    ``local_cert``: where this machine's data directory keeps a generated one."""
    if local_cert.exists():
        where = f"{local_cert} (tried) is not this server's certificate"
    else:
        where = f"a server using this data directory would print {local_cert}"
    return (
        f"cannot verify the certificate of {host}:{port} ({reason}).\n"
        "  If this is your own xmlchat server with its generated certificate, trust it with\n"
        "    --cafile PATH, PATH being the `certificate:` line `xmlchat serve` printed at start\n"
        f"    ({where}),\n"
        "  or pin it the first time, as ssh does: --trust-on-first-use.\n"
        "  Only --insecure skips the check."
    )
