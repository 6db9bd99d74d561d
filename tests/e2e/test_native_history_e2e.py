"""The native ``<history>`` end to end (docs/native-protocol.md, "History"):
the real server with the archive on, native clients and slixmpp.

Every wait has a deadline; every message is counted: no loss, no duplicate.
"""

from __future__ import annotations

import asyncio

import pytest
from conftest import ServerFactory, ServerProcess
from e2e.xmpp_helpers import TIMEOUT, XmppPeer, connect
from slixmpp import JID as SlixJID

from xmlchat.client.native import ArchivedMessage, NativeClient, ServerError

ALICE, BOB, CAROL = "alice@localhost", "bob@localhost", "carol@localhost"
USERS = {n: f"{n}pw" for n in ("alice", "bob", "carol")}
ARCHIVE_ON = "[archive]\nenabled = true\n"


@pytest.fixture
def server(server_factory: ServerFactory) -> ServerProcess:
    return server_factory(ARCHIVE_ON, users=USERS)


@pytest.fixture
def archive_off(server_factory: ServerFactory) -> ServerProcess:
    return server_factory(users=USERS)  # the default: no archive


@pytest.fixture
def small_stanzas(server_factory: ServerFactory) -> ServerProcess:
    return server_factory(ARCHIVE_ON + "[limits]\nmax_stanza_bytes = 8192\n", users=USERS)


def native_client(server: ServerProcess, user: str) -> NativeClient:
    return NativeClient(
        user, f"{user}pw", port=server.ports["native"], ssl=server.client_ssl(), reconnect=False
    )


async def _xmpp_to(sender: XmppPeer, receiver: NativeClient, prefix: str, n: int) -> None:
    """``n`` chat messages over XMPP, each seen by the native receiver: archived."""
    for i in range(n):
        sender.client.send_message(mto=SlixJID(ALICE), mbody=f"{prefix}{i}", mtype="chat")
    async with asyncio.timeout(TIMEOUT * 2):
        bodies = [(await receiver.incoming.get()).body for _ in range(n)]
    assert bodies == [f"{prefix}{i}" for i in range(n)]


async def _pages_back(client: NativeClient, with_: str | None, max: int = 50) -> list[list[ArchivedMessage]]:
    """Every page, newest first, following ``before`` until ``complete``."""
    page = await client.history(with_, max)
    pages = [page.messages]
    while not page.complete:
        page = await client.history(with_, max, before=page.messages[0].archive_id)
        pages.append(page.messages)
    return pages


async def test_paging_back_through_120_messages_gives_each_once_in_order(server: ServerProcess) -> None:
    alice, bob_native = native_client(server, "alice"), native_client(server, "bob")
    carol = native_client(server, "carol")
    for c in (alice, bob_native, carol):
        await c.start()
    bob_xmpp = await connect(server, "bob", resource="pc")
    acks = [await alice.send("bob", f"a{i}") for i in range(40)]  # acked: archived
    await _xmpp_to(bob_xmpp, alice, "x", 40)
    acks += [await bob_native.send("alice", f"n{i}") for i in range(40)]
    await carol.send("alice", "from carol")
    expected = [f"a{i}" for i in range(40)] + [f"x{i}" for i in range(40)] + [f"n{i}" for i in range(40)]

    pages = await _pages_back(alice, "bob")
    assert [len(p) for p in pages] == [50, 50, 20]
    walked = [m for page in reversed(pages) for m in page]
    assert [m.body for m in walked] == expected
    assert len({m.archive_id for m in walked}) == 120
    assert [m.id for m in walked[:40]] == [a.id for a in acks[:40]]  # the ids acked
    assert [m.id for m in walked[80:]] == [a.id for a in acks[40:]]
    assert {(m.sender, m.to) for m in walked[:40]} == {(ALICE, BOB)}
    assert {(m.sender, m.to) for m in walked[40:]} == {(BOB, ALICE)}
    times = [m.time for m in walked]
    assert times == sorted(times)
    # Without <with>: every conversation; carol's message is the newest.
    everything = await alice.history(max=2)
    assert [m.body for m in everything.messages] == ["n39", "from carol"] and not everything.complete
    assert [m.body for m in (await alice.history("carol@localhost")).messages] == ["from carol"]

    for c in (alice, bob_native, carol):
        await c.close()
    await bob_xmpp.close()


async def test_unknown_before_and_bad_requests_are_errors_with_the_request_id(server: ServerProcess) -> None:
    alice = native_client(server, "alice")
    await alice.start()
    with pytest.raises(ServerError) as caught:
        await alice.history("bob", before="no-such-id")
    assert caught.value.condition == "item-not-found" and caught.value.ref
    page = await alice.history("bob")  # an empty archive: one empty, complete page
    assert page.messages == [] and page.complete
    with pytest.raises(ServerError) as caught:
        await alice.history("bob@")
    assert caught.value.condition == "jid-malformed"
    await alice.close()


async def test_history_with_the_archive_off_is_feature_not_implemented(archive_off: ServerProcess) -> None:
    alice = native_client(archive_off, "alice")
    await alice.start()
    await alice.send("alice", "to myself")  # the session stays usable
    with pytest.raises(ServerError) as caught:
        await alice.history()
    assert caught.value.condition == "feature-not-implemented" and caught.value.ref
    assert (await alice.send("bob", "still here")).id
    await alice.close()


async def test_pages_larger_than_the_stanza_limit_are_cut_and_paging_still_sees_all(
    small_stanzas: ServerProcess,
) -> None:
    """A page holds what fits in limits.max_stanza_bytes: the newest messages,
    complete false; paging on with before gets the rest, each once."""
    alice, bob = native_client(small_stanzas, "alice"), native_client(small_stanzas, "bob")
    await alice.start()
    await bob.start()
    bodies = [f"{i:03d}" + "x" * 1000 for i in range(30)]
    for body in bodies:
        await alice.send("bob", body)
    pages = await _pages_back(alice, "bob")
    assert all(len(p) < 8 for p in pages) and len(pages) > 4
    assert [m.body for page in reversed(pages) for m in page] == bodies
    await alice.close()
    await bob.close()
