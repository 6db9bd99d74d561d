"""A client process that resumes an XEP-0198 session and is then SIGKILLed
(fault row g, tests/faults/test_faults_resume.py).

    python resume_client.py PORT CAFILE USER PASSWORD PREVID H

Over direct TLS: SASL PLAIN, stream restart, ``<resume previd h/>`` (§5).
It prints ``resumed`` once the server answered ``<resumed/>``, then one
``message ID`` line per message the server sent again (flushed at once), and
acknowledges nothing: it shows nothing, as a client killed before it could.
It reads until its parent kills it.
"""

from __future__ import annotations

import base64
import re
import socket
import ssl
import sys

STREAM_OPEN = (
    "<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
)
MESSAGE_ID = re.compile(rb"<message [^>]*\bid=['\"]([^'\"]+)['\"][^>]*>.*?</message>", re.S)


def main() -> None:
    port, cafile, user, password, previd, h = sys.argv[1:7]
    context = ssl.create_default_context(cafile=cafile)
    raw = socket.create_connection(("127.0.0.1", int(port)), timeout=30)
    sock = context.wrap_socket(raw, server_hostname="localhost")
    received = b""

    def until(marker: bytes) -> None:
        nonlocal received
        while marker not in received:
            data = sock.recv(65536)
            if not data:
                raise SystemExit(f"closed before {marker!r}: {received[-500:]!r}")
            received += data

    sock.sendall(STREAM_OPEN.encode())
    until(b"</stream:features>")
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    sock.sendall(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>".encode())
    until(b"<success")
    received = b""
    sock.sendall(STREAM_OPEN.encode())
    until(b"</stream:features>")
    received = b""
    sock.sendall(f"<resume xmlns='urn:xmpp:sm:3' previd='{previd}' h='{h}'/>".encode())
    until(b"<resumed ")
    print("resumed", flush=True)
    seen = 0
    sock.settimeout(None)
    while True:
        for match in list(MESSAGE_ID.finditer(received))[seen:]:
            print(f"message {match.group(1).decode()}", flush=True)
            seen += 1
        data = sock.recv(65536)
        if not data:
            return
        received += data


if __name__ == "__main__":
    main()
