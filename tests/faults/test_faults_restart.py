"""Issue 11, row f: a graceful restart (SIGTERM) while a sender keeps sending.

alice's native client reconnects by itself (the server comes back on the same
ports). The library re-sends nothing: a send whose ``<ack/>`` never came
raises ``ConnectionLost``. The sender here then does what an application
must, sending it again under the same id once online; a message the server
had routed before the ack was lost then reaches bob twice, unless the server
recognises the id. bob is on the native protocol (his client reconnects too)
or on XMPP (he logs in again after the restart).
"""

from __future__ import annotations

import asyncio
import signal

import pytest
from conftest import ServerProcess
from faults.fixtures import fault_server_fixture  # noqa: F401 - provides fault_server
from faults.ledger import Ledger
from faults.peers import PROTOCOLS, Protocol, Recipient, native_client, pump, settle
from polling import wait_for

pytestmark = pytest.mark.faults


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_f_restart_while_sending(fault_server: ServerProcess, protocol: Protocol, stop: int) -> None:
    """Row f: 1,500 messages of 1 KB, 32 in flight; SIGTERM (row f) or SIGKILL
    (row h) after 300 acks, start again.

    Usually 1,501 acked, none lost, none duplicated, none re-sent: the graceful
    stop lets what is being handled finish (Connection.quiesce) before closing.
    Before the server dropped re-sends, about one run in ten an ack still died
    with the connection, the client re-sent 32 messages, and about 16 of them,
    already delivered, were shown twice. Now the re-send's (sender, id) is
    found in the store (committed with the first copy) and only acked again.
    With SIGKILL nothing is finished: every message in flight is sent again, and
    those the dead server had committed are recognised the same way."""
    server = fault_server
    ledger = Ledger()
    bob = Recipient(server, "bob", protocol, ledger)
    await bob.login(reconnect=True)
    alice = native_client(server, "alice", min_backoff=0.1, max_backoff=0.5)
    await alice.start()
    ids = (f"n{i:05}" for i in range(1500))
    sending = asyncio.create_task(pump(alice, "bob", ids, 1024, ledger, retry=True))
    await wait_for(lambda: len(ledger.acked) >= 300, 20, what="acks before the restart")
    assert server.stop(stop) == (0 if stop == signal.SIGTERM else -stop)
    server.start()
    if protocol == "xmpp":
        await bob.close()
        await bob.login()
    await asyncio.wait_for(sending, 40)
    assert alice.connects == 2
    await alice.close()
    assert await settle(server, "bob", ledger, "marker-f", gone=bob.dropped)
    await bob.close()
    assert len(ledger.acked) == 1501
    ledger.check()
