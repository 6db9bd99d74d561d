"""Durable acknowledgements end to end (docs/delivery.md): a re-send under a
known id is acknowledged and shown once, across a restart; a XEP-0198 <a/>
counts a message only once it is stored, so a SIGKILL right after it loses
nothing."""

from __future__ import annotations

import re
import signal
import sqlite3
import time

from conftest import ServerProcess
from e2e.rawsock import native_login
from e2e.xmpp_client_helpers import next_item, online, raw_login

from xmlchat.client.native import NativeClient, RecentMessages
from xmlchat.client.xmpp import ChatMessage


def native(server: ServerProcess, user: str) -> NativeClient:
    port = server.ports["native"]
    return NativeClient(user, f"{user}pw", port=port, ssl=server.client_ssl(), reconnect=False)


async def test_a_resend_is_acked_again_and_shown_once_even_after_a_restart(server: ServerProcess) -> None:
    bob = native(server, "bob")
    await bob.start()
    alice = native(server, "alice")
    await alice.start()
    first = await alice.send("bob", "lunch?", "x1")
    assert (await next_item(bob.incoming)).body == "lunch?"  # type: ignore[attr-defined]
    # The ack was lost (say): the app sends again under the same id, from a new client.
    again = native(server, "alice")
    await again.start()
    assert (await again.send("bob", "lunch?", "x1")).id == first.id
    # The same id with another text is another message (a client counting ids from 1 again).
    await again.send("bob", "dinner?", "x1")
    assert (await next_item(bob.incoming)).body == "dinner?"  # type: ignore[attr-defined]
    for client in (alice, again, bob):
        await client.close()

    server.stop(signal.SIGTERM)
    server.start()
    after = native(server, "alice")
    await after.start()
    await after.send("bob", "lunch?", "x1")  # known across the restart: acked, not stored
    await after.send("bob", "marker", "x2")
    await after.close()
    bob = native(server, "bob")
    await bob.start()
    assert (await next_item(bob.incoming)).body == "marker"  # type: ignore[attr-defined]
    await bob.close()


async def test_an_sm_ack_means_stored_so_sigkill_after_it_loses_nothing(server: ServerProcess) -> None:
    peer = raw_login(server, "alice")
    peer.send("<enable xmlns='urn:xmpp:sm:3'/>")
    assert b"<enabled" in peer.read_until("<enabled")
    peer.received = b""
    bodies = [f"kept {i}" for i in range(20)]
    messages = (
        f"<message to='bob@localhost' type='chat' id='k{i}'><body>{b}</body></message>"
        for i, b in enumerate(bodies)
    )
    peer.send("".join(messages) + "<r xmlns='urn:xmpp:sm:3'/>")
    answer = peer.read_until("h=")
    answer += peer.read_until("/>")
    match = re.search(rb"<a xmlns='urn:xmpp:sm:3' h='(\d+)'/>", answer)
    assert match and int(match.group(1)) == len(bodies), answer
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    peer.close()
    server.start()
    recent = RecentMessages()
    async with online(server, "bob", recent=recent) as bob:
        got = [await next_item(bob.incoming) for _ in bodies]
    assert [g.body for g in got if isinstance(g, ChatMessage)] == bodies


async def test_a_native_resume_token_takes_the_stale_session_over(server: ServerProcess) -> None:
    """The old connection is not yet seen to be dead; a login with its token
    replaces it and gets what it had not confirmed (docs/native-protocol.md)."""
    stale = native_login(server.ports["native_plain"], "alice", "alicepw", receipts=True)
    token = re.search(rb"<resume>([^<]+)</resume>", stale.received)
    assert token, stale.received
    bob = native(server, "bob")
    await bob.start()
    await bob.send("alice", "never confirmed")
    assert b"never confirmed" in stale.read_until("never confirmed")  # read, not confirmed
    alice = native(server, "alice")
    alice.resume_token = token.group(1).decode()
    await alice.start()
    assert alice.address is not None and alice.address.endswith(stale_resource(token.group(1)))
    assert (await next_item(alice.incoming)).body == "never confirmed"  # type: ignore[attr-defined]
    assert b"conflict" in stale.read_until("conflict")  # replaced (RFC 6120 §7.7.2.2)
    for client in (alice, bob):
        await client.close()
    stale.close()


def stale_resource(token: bytes) -> str:
    return "/" + token.decode().rpartition("~")[0]


def test_a_burst_in_one_write_is_acked_and_delivered_in_the_order_sent(server: ServerProcess) -> None:
    """The messages of one read share a commit (routing/pipeline.py), yet each
    answer and each delivery keeps the client's order, an error among them too."""
    bob = native_login(server.ports["native_plain"], "bob", "bobpw")
    alice = native_login(server.ports["native_plain"], "alice", "alicepw")
    # b3: to nobody (refused after a store read); b6: a spoofed sender (refused at once,
    # before b0-b5 are even committed: its answer must still wait for theirs).
    wrong = {3: "<to>nobody</to>", 6: "<from>carol</from><to>bob</to>"}
    alice.send("".join(
        f"<message><id>b{i}</id>{wrong.get(i, '<to>bob</to>')}<body>burst {i}</body></message>"
        for i in range(10)
    ))
    answers = alice.read_until("<id>b9</id>").decode()
    order = re.findall(r"<(ack|error)>.*?<id>(b\d)</id>", answers, re.S)
    assert order == [("error" if i in wrong else "ack", f"b{i}") for i in range(10)], answers
    assert "<condition>service-unavailable</condition>" in answers
    assert "<condition>forbidden</condition>" in answers
    shown = bob.read_until("burst 9").decode()
    assert re.findall(r"burst (\d)", shown) == [str(i) for i in range(10) if i not in wrong], shown
    alice.close()
    bob.close()


def test_an_sm_burst_with_a_refused_message_answers_that_one_and_counts_all(server: ServerProcess) -> None:
    """XEP-0198 §4: h counts a stanza once handled; a pipelined burst is
    handled in order, its refused message answered with an error of its own id."""
    peer = raw_login(server, "alice")
    peer.send("<enable xmlns='urn:xmpp:sm:3'/>")
    assert b"<enabled" in peer.read_until("<enabled")
    peer.received = b""
    to = {2: "nobody@localhost"}
    peer.send("".join(
        f"<message to='{to.get(i, 'bob@localhost')}' type='chat' id='p{i}'><body>p {i}</body></message>"
        for i in range(5)
    ) + "<r xmlns='urn:xmpp:sm:3'/>")
    a = re.compile(rb"<a xmlns='urn:xmpp:sm:3' h='(\d+)'/>")
    deadline = time.monotonic() + 10
    while not a.search(answer := peer.read_until("<a ", timeout=1)) and time.monotonic() < deadline:
        pass
    errors = re.findall(rb"<message [^>]*type=.error.[^>]*>", answer)
    assert len(errors) == 1 and b"id='p2'" in errors[0].replace(b'"', b"'"), answer
    assert answer.index(errors[0]) < answer.index(b"<a "), answer
    match = a.search(answer)
    assert match and int(match.group(1)) == 5, answer
    peer.close()


def test_only_a_client_given_id_is_kept_for_re_sends(server: ServerProcess) -> None:
    """An id the server assigned (a native message without <id>) is one the
    client never saw before its ack, so it cannot re-send under it: no
    (sender, id) record is written for it (docs/delivery.md, "Re-sends")."""
    bob = native_login(server.ports["native_plain"], "bob", "bobpw")
    alice = native_login(server.ports["native_plain"], "alice", "alicepw")
    alice.send("<message><id>c1</id><to>bob</to><body>given</body></message>"
               "<message><to>bob</to><body>assigned</body></message>")
    shown = re.findall(r"<message><id>([^<]+)</id>", bob.read_until("assigned").decode())
    assert len(shown) == 2 and shown[0] == "c1", bob.received
    # The sender's ack carries the id the server assigned, as the recipient saw it.
    assert f"<ack><id>{shown[1]}</id>".encode() in alice.read_until(f"<ack><id>{shown[1]}</id>")
    alice.close()
    bob.close()
    assert server.stop(signal.SIGTERM) == 0
    with sqlite3.connect(server.data_dir / "xmlchat.sqlite3") as db:
        kept = [row[0].split()[0] for row in db.execute("SELECT id FROM recent_ids")]
    assert kept == ["c1"], kept
