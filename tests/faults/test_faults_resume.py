"""Issue 11, row g: the recipient's client is killed during XEP-0198 resumption.

bob (slixmpp with xep_0198, resumable) loses his link while alice keeps
sending; a second client process of his (``resume_client.py``, a real
process) resumes the session, the server sends again what bob had not
acknowledged, and the process is SIGKILLed mid-way, having acknowledged and
shown nothing; bob then logs in afresh on the same resource. Everything
acknowledged to alice must reach him once, including each message the killed
process had read.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest
from conftest import ServerProcess
from faults.fixtures import fault_server_fixture  # noqa: F401 - provides fault_server
from faults.ledger import Ledger
from faults.peers import Recipient, native_client, pump, settle
from polling import wait_for

pytestmark = pytest.mark.faults


async def test_g_client_killed_during_resumption(fault_server: ServerProcess) -> None:
    """Row g: 300 messages of 1 KB before the link dies, 300 while detached; the
    resuming client process is SIGKILLed once the server has re-sent it a
    message. One run: 601 acknowledged, 601 received once each; the killed
    process had read 1 to 86 of them (three runs)."""
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
    client = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).with_name("resume_client.py")),
        str(server.ports["xmpp_tls"]), server.cafile, "bob", "bobpw", previd, str(handled),
        stdout=asyncio.subprocess.PIPE,
    )
    assert client.stdout is not None
    lines: list[str] = []

    async def until_a_message() -> None:
        assert client.stdout is not None
        while not lines or not lines[-1].startswith("message "):
            line = await client.stdout.readline()
            assert line, f"the resuming client ended first: {lines}"
            lines.append(line.decode().strip())

    try:
        await asyncio.wait_for(until_a_message(), 20)
    finally:
        if client.returncode is None:
            client.kill()  # SIGKILL: the kernel closes its connection, unread data and all
        code = await client.wait()
    assert code == -signal.SIGKILL, code
    rest = (await client.stdout.read()).decode().split()  # lines it printed before the kill
    assert lines[0] == "resumed", lines
    read = [line.split()[1] for line in lines[1:]] + rest[1::2]
    assert read, "the server re-sent messages to the resuming process"

    await bob.login(resource="phone")  # afresh, where it was: the detached session is replaced
    assert await settle(server, "bob", ledger, "marker-g", timeout=30, gone=bob.dropped)
    await bob.close()
    assert len(ledger.acked) == 601
    ledger.check()
    # What the killed process read, it never acknowledged: bob has it from the store.
    assert all(ledger.has(id_) for id_ in read), [i for i in read if not ledger.has(i)]
