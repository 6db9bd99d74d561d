"""Issue 11, rows c and d: recipients that read slowly, and a large offline replay.

The acknowledged sender is native (alice); the recipient runs on the native
protocol and on XMPP. Row c's slow reader is bob's own client behind a proxy
that passes 200 KB/s from the server.
"""

from __future__ import annotations

import asyncio

import pytest
from conftest import ServerProcess
from faults.fixtures import fault_server_fixture  # noqa: F401 - provides fault_server
from faults.ledger import Ledger
from faults.peers import PROTOCOLS, Protocol, Recipient, native_client, pump, settle

from xmlchat.compare.proxy import CountingProxy

pytestmark = pytest.mark.faults


@pytest.mark.parametrize("fault_server", [{"max_offline_messages": 10_000}], indirect=True)
@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_c_slow_reader(fault_server: ServerProcess, protocol: Protocol) -> None:
    """Row c: 3,000 messages of 1 KB to a bob whose link carries 200 KB/s; his
    client acknowledges what it reads (native receipts, XEP-0198). He quits once
    alice has her last ack, and logs in again on a fast link.

    Before the store took over for slow readers: native: cut after ~6,600
    acked, 150 read, LOST 6,443; xmpp: cut after ~6,800 acked, 122 read, LOST
    6,663. Then, never cut but a reader without acknowledgements that quit
    lost what the kernel had taken for it (3,651 and 3,781 of 6,000). Now a
    message leaves the store only once bob's client acknowledged it."""
    server = fault_server
    ledger = Ledger()
    port = server.ports["native" if protocol == "native" else "xmpp"]
    async with CountingProxy("127.0.0.1", port, down_rate=200_000) as slow_link:
        bob = Recipient(server, "bob", protocol, ledger)
        await bob.login(via=slow_link.port)
        alice = native_client(server, "alice", reconnect=False)
        await alice.start()
        ids = (f"n{i:05}" for i in range(3_000))
        await asyncio.wait_for(pump(alice, "bob", ids, 1024, ledger, window=64), 60)
        await alice.close()
        assert not bob.dropped(), "the server cut a reader that kept reading"
        read_slowly = len(ledger.received)
        await bob.close()
    assert len(ledger.acked) == 3_000
    assert 0 < read_slowly < 3_000  # it read, slowly: the rest waited in the store
    await bob.login()
    await settle(server, "bob", ledger, "marker-c", timeout=30, gone=bob.dropped)
    await bob.close()
    ledger.check()


async def offline_replay(server: ServerProcess, protocol: Protocol, count: int, size: int) -> Ledger:
    ledger = Ledger()
    alice = native_client(server, "alice", reconnect=False)
    await alice.start()
    await pump(alice, "bob", (f"n{i:05}" for i in range(count)), size, ledger, window=64)
    await alice.close()
    assert len(ledger.acked) == count
    bob = Recipient(server, "bob", protocol, ledger)
    await bob.login()
    await settle(server, "bob", ledger, "marker-d", timeout=30, gone=bob.dropped)
    await bob.close()
    return ledger


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_d_thousand_offline_messages_over_4mb(fault_server: ServerProcess, protocol: Protocol) -> None:
    """Row d: 1,000 offline messages of 4.2 KB (4.3 MB); bob logs in and reads normally.

    Before paged replay: native and xmpp LOST 1,001 of 1,001 acked (with the
    marker): the replay overflowed the 4 MB send buffer, the session was cut, the
    store emptied anyway (XMPP: the login itself failed, its roster answer queued
    behind). Now a page at a time, each deleted once the client has taken it."""
    ledger = await offline_replay(fault_server, protocol, 1000, 4200)
    ledger.check()


@pytest.mark.slow
@pytest.mark.parametrize("fault_server", [{"max_offline_messages": 10_000}], indirect=True)
@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_d_ten_thousand_offline_messages_10mb(fault_server: ServerProcess, protocol: Protocol) -> None:
    """Row d, the issue's target: 10,000 offline messages of 1 KB (10 MB); the
    offline queue limit raised to hold them.

    Before paged replay: native and xmpp LOST 10,001 of 10,001 acked, as row d."""
    ledger = await offline_replay(fault_server, protocol, 10_000, 1024)
    ledger.check()
