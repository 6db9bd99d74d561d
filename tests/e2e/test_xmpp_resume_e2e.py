"""XEP-0198 §5 resumption end to end, over raw sockets and slixmpp's
xep_0198: a lost session stays routable while detached, a new stream resumes
it and gets what its client had not acknowledged; an unknown or expired id
fails with item-not-found; what was never acknowledged stays stored."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from conftest import ServerProcess
from e2e.rawsock import RawPeer
from e2e.xmpp_client_helpers import next_item, online, raw_login, started_server
from polling import wait_for

from xmlchat.client.native import NativeClient
from xmlchat.client.xmpp import DEFAULT_PLUGINS, ChatMessage

SM = "urn:xmpp:sm:3"


@pytest.fixture(scope="module")
def resume_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    users = ("alice", "bob", "carol", "dave")
    yield from started_server(tmp_path_factory.mktemp("resume"), users, "[delivery]\nresume_timeout = 2\n")


def resumable(server: ServerProcess, user: str) -> tuple[RawPeer, str]:
    peer = raw_login(server, user)
    peer.send(f"<enable xmlns='{SM}' resume='true'/><presence/>")
    enabled = peer.read_until("<enabled")
    enabled += peer.read_until("/>")
    match = re.search(rb"<enabled xmlns='urn:xmpp:sm:3' id='([^']+)' resume='true' max='2'/>", enabled)
    assert match, enabled
    return peer, match.group(1).decode()


def resume(server: ServerProcess, user: str, previd: str, h: int) -> RawPeer:
    """A new stream that authenticates and asks to resume (no bind)."""
    peer = raw_login(server, user, bind=False)
    peer.send(f"<resume xmlns='{SM}' previd='{previd}' h='{h}'/>")
    return peer


async def sender(server: ServerProcess) -> NativeClient:
    port = server.ports["native"]
    client = NativeClient("bob", "bobpw", port=port, ssl=server.client_ssl(), reconnect=False)
    await client.start()
    return client


async def test_a_lost_session_is_resumed_with_what_its_client_had_not_acknowledged(
    resume_server: ServerProcess,
) -> None:
    alice, previd = resumable(resume_server, "alice")
    bob = await sender(resume_server)
    await bob.send("alice", "one")
    assert b"one" in alice.read_until("one")
    alice.sock.close()  # lost: no </stream>, nothing acknowledged
    await wait_for(lambda: "detached; resumable" in resume_server.log(), 5, what="the server saw it")
    await bob.send("alice", "two")  # stored and acked while alice is detached
    again = resume(resume_server, "alice", previd, 0)
    answer = again.read_until("two")
    assert re.search(rb"<resumed xmlns='urn:xmpp:sm:3' previd='%s' h='\d+'/>" % previd.encode(), answer)
    assert answer.index(b"one") < answer.index(b"two")  # sent again, in order
    # The resumed stream is the session: bound, counting, routable.
    again.send(f"<r xmlns='{SM}'/>")
    assert b"<a xmlns='urn:xmpp:sm:3' h=" in again.read_until("<a ")
    await bob.send("alice", "three")
    assert b"three" in again.read_until("three")
    await bob.close()
    again.close()


async def test_an_unknown_id_fails_and_bind_still_works(resume_server: ServerProcess) -> None:
    peer = resume(resume_server, "carol", "no-such-id", 0)
    assert b"<item-not-found" in peer.read_until("</failed>")
    peer.send("<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
    assert b"carol@localhost/" in peer.read_until("</iq>")
    peer.close()


async def test_another_users_id_is_refused(resume_server: ServerProcess) -> None:
    alice, previd = resumable(resume_server, "alice")
    alice.sock.close()
    await wait_for(lambda: resume_server.log().count("detached; resumable") >= 2, 5, what="detached")
    thief = resume(resume_server, "carol", previd, 0)
    assert b"<item-not-found" in thief.read_until("</failed>")
    thief.close()


async def test_after_the_timeout_resumption_fails_and_the_messages_wait_in_the_store(
    resume_server: ServerProcess,
) -> None:
    dave, previd = resumable(resume_server, "dave")
    bob = await sender(resume_server)
    await bob.send("dave", "while away")
    assert b"while away" in dave.read_until("while away")  # shown, never acknowledged
    dave.sock.close()
    expired = "resumption of dave@localhost/raw timed out"
    await wait_for(lambda: expired in resume_server.log(), 10, what="the 2 s timeout")
    late = resume(resume_server, "dave", previd, 0)
    assert b"<item-not-found" in late.read_until("</failed>")
    late.close()
    async with online(resume_server, "dave") as client:  # a new session: the store replays it
        got = await next_item(client.incoming)
        assert isinstance(got, ChatMessage) and got.body == "while away"
    await bob.close()


async def test_slixmpp_resumes_after_its_connection_drops(resume_server: ServerProcess) -> None:
    bob = await sender(resume_server)
    async with online(resume_server, "carol", "r", plugins=(*DEFAULT_PLUGINS, "xep_0198")) as carol:
        sm = carol.plugin["xep_0198"]
        assert sm.enabled_in and sm.sm_id
        await bob.send("carol", "before")
        assert (await next_item(carol.incoming)).body == "before"  # type: ignore[attr-defined]
        resumed = carol.wait_until("session_resumed", 10)
        carol.transport.abort()  # the link dies
        await carol.closed.wait()
        carol.connect("127.0.0.1", resume_server.ports["xmpp"])  # xep_0198 sends <resume/>
        await resumed
        await bob.send("carol", "after")
        assert (await next_item(carol.incoming)).body == "after"  # type: ignore[attr-defined]
    await bob.close()

