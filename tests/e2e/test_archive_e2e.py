"""XEP-0313 message archives end to end: slixmpp's xep_0313 plugin (with
XEP-0059 paging) against the real server; XEP-0359 stanza ids on what is received.

Every wait has a deadline; every message is counted: no loss, no duplicate.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import ServerFactory, ServerProcess
from e2e.xmpp_helpers import TIMEOUT, XmppPeer, connect
from slixmpp import JID as SlixJID
from slixmpp.stanza import Message

ALICE, BOB, CAROL = "alice@localhost", "bob@localhost", "carol@localhost"
SID = "{urn:xmpp:sid:0}stanza-id"
N = 60  # each way: 120 messages in each archive


@pytest.fixture
def server(server_factory: ServerFactory) -> ServerProcess:
    """The archive is off by default (as Prosody's mod_mam is): on for these tests."""
    users = {n: f"{n}pw" for n in ("alice", "bob", "carol")}
    return server_factory("[archive]\nenabled = true\n", users=users)


async def _peer(server: ServerProcess, user: str) -> XmppPeer:
    peer = await connect(server, user, resource="pc")
    peer.client.register_plugin("xep_0313")
    return peer


async def _receive(peer: XmppPeer, n: int) -> list[Message]:
    """The next ``n`` chat messages with a body (MAM results have none at the top)."""
    received: list[Message] = []
    async with asyncio.timeout(TIMEOUT * 2):
        while len(received) < n:
            message = await peer.messages.get()
            if message.xml.find("{jabber:client}body") is not None:
                received.append(message)
    return received


async def _send(sender: XmppPeer, receiver: XmppPeer, to: str, prefix: str, n: int) -> list[Message]:
    for i in range(n):
        sender.client.send_message(mto=SlixJID(to), mbody=f"{prefix}{i}", mtype="chat")
    return await _receive(receiver, n)


async def _archive(peer: XmppPeer, **kwargs: Any) -> list[Message]:
    """Every result, paging forwards 50 at a time (slixmpp's RSM iterator)."""
    mam = peer.client.plugin["xep_0313"]
    return [m async for m in mam.iterate(rsm={"max": 50}, **kwargs)]


async def _pages_backwards(peer: XmppPeer, **kwargs: Any) -> list[list[Message]]:
    """Pages of 50 from the last one back (XEP-0059 §2.5): an empty <before/>,
    then <before>first id</before>. slixmpp's iterator stops after one page
    backwards (it takes first_index + page = count as the end either way), so
    the later pages are asked for one by one."""
    mam = peer.client.plugin["xep_0313"]
    pager = mam.retrieve(iterator=True, reverse=True, rsm={"max": 50}, **kwargs)
    first = await pager.next()
    pages = [list(first["mam"]["results"])]
    fin = first["mam_fin"]
    while not fin["complete"]:
        before = fin["rsm"]["first"]
        reply = await mam.retrieve(rsm={"max": 50, "before": before}, timeout=TIMEOUT, **kwargs)
        pages.append(list(reply["mam"]["results"]))
        fin = reply["mam_fin"]
    return pages


def _body(result: Message) -> str:
    return str(result["mam_result"]["forwarded"]["stanza"]["body"])


async def test_archive_both_directions_paged_forwards_and_backwards(server: ServerProcess) -> None:
    alice, bob = await _peer(server, ALICE), await _peer(server, BOB)
    carol = await _peer(server, CAROL)
    to_bob = await _send(alice, bob, BOB, "a", N)
    to_alice = await _send(bob, alice, ALICE, "b", N)
    from_carol = await _send(carol, alice, ALICE, "c", 5)
    expected = [f"a{i}" for i in range(N)] + [f"b{i}" for i in range(N)]
    assert [str(m["body"]) for m in to_bob + to_alice] == expected

    with_bob = await _archive(alice, with_jid=SlixJID(BOB))
    assert [_body(r) for r in with_bob] == expected
    pages = await _pages_backwards(alice, with_jid=SlixJID(BOB))
    assert [len(page) for page in pages] == [50, 50, 20]
    assert [_body(r) for page in reversed(pages) for r in page] == expected
    assert [_body(r) for r in await _archive(alice, with_jid=SlixJID(CAROL))] == [f"c{i}" for i in range(5)]
    assert len(await _archive(alice)) == 2 * N + 5

    # XEP-0359: each received message carries the id the recipient's archive gave it.
    bobs_archive = await _archive(bob)
    assert [_body(r) for r in bobs_archive] == expected
    stamped = [m.xml.find(SID) for m in to_bob]
    assert all(s is not None and s.get("by") == BOB for s in stamped)
    assert [s.get("id") for s in stamped if s is not None] == [
        r["mam_result"]["id"] for r in bobs_archive[:N]
    ]
    stamped = [m.xml.find(SID) for m in to_alice + from_carol]
    alices = {_body(r): r["mam_result"]["id"] for r in await _archive(alice)}
    assert [s.get("id") for s in stamped if s is not None] == [
        alices[str(m["body"])] for m in to_alice + from_carol
    ]
    for peer in (alice, bob, carol):
        await peer.close()


async def test_pages_of_fifty_with_rsm_sets(server: ServerProcess) -> None:
    alice, bob = await _peer(server, ALICE), await _peer(server, BOB)
    await _send(alice, bob, BOB, "a", N)
    await _send(bob, alice, ALICE, "b", N)
    mam = alice.client.plugin["xep_0313"]
    pages = [page async for page in mam.retrieve(iterator=True, rsm={"max": 50})]
    counts = [len(page["mam"]["results"]) for page in pages]
    assert counts == [50, 50, 20]
    sets = [page["mam_fin"]["rsm"] for page in pages]
    assert [(s["first_index"], s["count"]) for s in sets] == [("0", "120"), ("50", "120"), ("100", "120")]
    assert [page["mam_fin"].xml.get("complete") for page in pages] == [None, None, "true"]
    await alice.close()
    await bob.close()


async def test_too_large_a_page_is_a_policy_violation(server: ServerProcess) -> None:
    """RFC 6120 §8.3.3.12. slixmpp's Error stanza does not know this condition
    (its list predates RFC 6120) and fails to build an IqError, so the error is
    read from the wire through an inbound filter."""
    alice = await _peer(server, ALICE)
    errors: asyncio.Queue[Any] = asyncio.Queue()

    def capture(stanza: Any) -> Any:
        if stanza.xml.tag == "{jabber:client}iq" and stanza.xml.get("type") == "error":
            errors.put_nowait(stanza.xml)
        return stanza

    alice.client.add_filter("in", capture)
    request = asyncio.ensure_future(
        alice.client.plugin["xep_0313"].retrieve(rsm={"max": 101}, timeout=TIMEOUT)
    )
    error = await asyncio.wait_for(errors.get(), TIMEOUT)
    request.cancel()
    stanzas_ns = "urn:ietf:params:xml:ns:xmpp-stanzas"
    assert error.find(f"{{jabber:client}}error/{{{stanzas_ns}}}policy-violation") is not None
    await alice.close()
