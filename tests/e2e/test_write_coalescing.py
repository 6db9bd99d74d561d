"""A burst of messages costs one write per connection, on both protocols.

The real server in this process (so its transport's writes can be counted),
on a loopback port, driven by raw sockets: messages that arrive in one read
share one commit (routing/pipeline.py), so their acks leave the sender's
connection in one write and their deliveries the recipient's in one write.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from e2e.inprocess_peers import LOGINS, Peer, plaintext_server, until

from xmlchat.server.app import Server
from xmlchat.server.transport import StreamTransport

BURST = 20


class Counted:
    """Reads and writes per server-side connection, by its peer's port."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reads: Counter[int] = Counter()
        self.written: dict[int, list[bytes]] = {}
        read, write = StreamTransport.read, StreamTransport.write

        async def counted_read(transport: StreamTransport) -> bytes:
            data = await read(transport)
            self.reads[_port(transport)] += 1
            return data

        def counted_write(transport: StreamTransport, units: list[bytes]) -> None:
            self.written.setdefault(_port(transport), []).append(b"".join(units))
            write(transport, units)

        monkeypatch.setattr(StreamTransport, "read", counted_read)
        monkeypatch.setattr(StreamTransport, "write", counted_write)

    def carrying(self, port: int, what: bytes) -> int:
        """Writes to the connection from ``port`` that carried ``what``."""
        return sum(what in data for data in self.written.get(port, []))

    def reset(self) -> None:
        self.reads.clear()
        self.written.clear()


def _port(transport: StreamTransport) -> int:
    return int(transport.peer.rpartition(":")[2])


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Server]:
    async with plaintext_server(tmp_path) as server:
        yield server


def _port_of(peer: Peer) -> int:
    return int(peer[1].get_extra_info("sockname")[1])


@pytest.mark.parametrize("protocol", ["native", "xmpp", "xmpp-sm"])
async def test_a_burst_of_messages_is_one_write_per_connection(
    running: Server, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    counted = Counted(monkeypatch)
    login = LOGINS[protocol]
    port = running.port_of("native_plain" if protocol == "native" else "xmpp")
    alice, bob = await login(port, "alice"), await login(port, "bob")
    if protocol == "native":
        messages = [f"<message><id>m{i}</id><to>bob</to><body>{i}</body></message>" for i in range(BURST + 1)]
    else:
        chat = "<message to='bob@localhost' type='chat' id='m{0}'><body>{0}</body></message>"
        messages = [chat.format(i) for i in range(BURST + 1)]
    # One message first: once it arrived, bob's login (a native login-ok comes
    # before the session is available) and its replay of stored messages are over.
    alice[1].write(messages.pop().encode())
    await until(bob[0], b"</message>")
    if protocol == "native":
        await until(alice[0], b"</ack>")
    counted.reset()
    alice[1].write("".join(messages).encode())
    delivered = await until(bob[0], b"</message>", BURST)
    if protocol == "native":
        await until(alice[0], b"</ack>", BURST)
    # In order (RFC 6120 §10.1).
    bodies = [int(part.split(b"</body>")[0]) for part in delivered.split(b"<body>")[1:]]
    assert bodies == list(range(BURST))
    # One write per read of the burst (TCP may hand it over in more than one).
    reads = counted.reads[_port_of(alice)]
    assert 1 <= counted.carrying(_port_of(bob), b"<body>") <= reads
    if protocol == "native":
        assert 1 <= counted.carrying(_port_of(alice), b"<ack") <= reads
    for _, writer in (alice, bob):
        writer.close()
