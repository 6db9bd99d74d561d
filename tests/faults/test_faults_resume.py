"""Issue 11, row g: the recipient's client is killed during XEP-0198 resumption.

bob (slixmpp with xep_0198, resumable) loses his link while alice keeps
sending; a second client process of his resumes the session (the server
sends again what bob had not acknowledged) and is SIGKILLed mid-way, having
shown nothing; bob then logs in afresh on the same resource. Everything
acknowledged to alice must reach him once.
"""

from __future__ import annotations

import asyncio
import re
import socket
import struct

import pytest
from conftest import ServerProcess
from e2e.xmpp_client_helpers import raw_login
from faults.fixtures import fault_server_fixture  # noqa: F401 - provides fault_server
from faults.ledger import Ledger
from faults.peers import Recipient, native_client, pump, settle
from polling import wait_for

pytestmark = pytest.mark.faults


async def test_g_client_killed_during_resumption(fault_server: ServerProcess) -> None:
    """Row g: 300 messages of 1 KB before the link dies, 300 while detached; the
    resuming client dies after the first bytes of the re-sent stanzas."""
    server = fault_server
    ledger = Ledger()
    bob = Recipient(server, "bob", "xmpp", ledger)
    await bob.login(resource="phone")
    assert bob.xmpp is not None
    sm = bob.xmpp.plugin["xep_0198"]
    assert sm.enabled_in and sm.sm_id, "resumable stream management"
    alice = native_client(server, "alice", reconnect=False)
    await alice.start()
    await pump(alice, "bob", (f"n{i:05}" for i in range(300)), 1024, ledger)
    await wait_for(lambda: len(ledger.received) >= 100, 10, what="bob reading")
    previd, handled = sm.sm_id, sm.handled
    assert bob.xmpp.transport is not None
    bob.xmpp.transport.abort()  # the link dies mid-stream
    await asyncio.wait_for(bob.xmpp.closed.wait(), 5)
    await wait_for(lambda: "detached; resumable" in server.log(), 10, what="the server saw it")
    await pump(alice, "bob", (f"d{i:05}" for i in range(300)), 1024, ledger)  # stored, acked
    await alice.close()

    # Another process of bob's resumes, reads the start of what is re-sent, is killed.
    resuming = raw_login(server, "bob", bind=False)
    resuming.send(f"<resume xmlns='urn:xmpp:sm:3' previd='{previd}' h='{handled}'/>")
    assert re.search(rb"<resumed [^>]*previd='%s'" % previd.encode(), resuming.read_until("<message"))
    # As SIGKILL leaves it: the kernel resets the connection (linger 0); nothing was shown.
    resuming.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    resuming.close()

    await bob.login(resource="phone")  # afresh, where it was: the detached session is replaced
    assert await settle(server, "bob", ledger, "marker-g", timeout=30, gone=bob.dropped)
    await bob.close()
    assert len(ledger.acked) == 601
    ledger.check()
