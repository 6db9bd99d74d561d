"""The native protocol end to end: the real server process, real sockets."""

from __future__ import annotations

import asyncio
import re
import signal

import pytest
from conftest import ServerFactory, ServerProcess
from e2e.rawsock import NATIVE_OPEN, RawPeer, native_login
from polling import wait_for

from xmlchat.client.native import ConnectionLost, LoginFailed, NativeClient, ServerError

CHINESE = "你好，世界！这是一条中文消息。🙂"


def client(server: ServerProcess, user: str, tls: bool = True, **kwargs: object) -> NativeClient:
    if tls:
        return NativeClient(
            user,
            f"{user}pw",
            port=server.ports["native"],
            ssl=server.client_ssl(),
            **kwargs,  # type: ignore[arg-type]
        )
    return NativeClient(user, f"{user}pw", port=server.ports["native_plain"], **kwargs)  # type: ignore[arg-type]


async def test_login_reports_full_address_and_failure_reason(server: ServerProcess) -> None:
    alice = client(server, "alice", resource="laptop")
    await alice.start()
    assert alice.address == "alice@localhost/laptop"
    await alice.close()
    wrong = NativeClient("alice", "nope", port=server.ports["native"], ssl=server.client_ssl())
    with pytest.raises(LoginFailed) as failure:
        await wrong.start()
    assert failure.value.condition == "not-authorized"


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain"])
async def test_messages_both_ways_chinese_and_100k(server: ServerProcess, tls: bool) -> None:
    alice, bob = client(server, "alice", tls), client(server, "bob", tls)
    await alice.start()
    await bob.start()
    ack = await alice.send("bob", CHINESE)
    got = await asyncio.wait_for(bob.incoming.get(), 5)
    assert (got.sender, got.to, got.body, got.id) == ("alice@localhost", "bob@localhost", CHINESE, ack.id)
    assert got.time == ack.time  # the server's timestamp travels with the message
    big = (CHINESE * 10_000).encode()[:100_000].decode(errors="ignore")  # a 100 KB body
    await bob.send("alice@localhost", big)
    got = await asyncio.wait_for(alice.incoming.get(), 5)
    assert got.body == big and got.sender == "bob@localhost"
    await alice.close()
    await bob.close()


async def test_every_session_of_a_user_receives(server: ServerProcess) -> None:
    phone, laptop = client(server, "bob", resource="phone"), client(server, "bob", resource="laptop")
    alice = client(server, "alice")
    for c in (phone, laptop, alice):
        await c.start()
    await alice.send("bob", "to all of you")
    for c in (phone, laptop):
        assert (await asyncio.wait_for(c.incoming.get(), 5)).body == "to all of you"
    for c in (phone, laptop, alice):
        await c.close()


async def test_offline_messages_survive_restart_in_order(server: ServerProcess) -> None:
    alice = client(server, "alice")
    await alice.start()
    acks = [await alice.send("bob", f"offline {i} {CHINESE}") for i in range(20)]
    await alice.close()
    server.restart()
    bob = client(server, "bob")
    await bob.start()
    got = [await asyncio.wait_for(bob.incoming.get(), 5) for _ in range(20)]
    assert [m.body for m in got] == [f"offline {i} {CHINESE}" for i in range(20)]
    assert [m.time for m in got] == [a.time for a in acks]  # original timestamps
    await bob.close()
    # Delivered once: a second login gets nothing more.
    again = client(server, "bob")
    await again.start()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(again.incoming.get(), 0.5)
    await again.close()


async def test_live_message_during_offline_replay_keeps_order(server: ServerProcess) -> None:
    alice = client(server, "alice")
    await alice.start()
    for i in range(50):
        await alice.send("bob", f"m{i}")
    bob = client(server, "bob")
    start = asyncio.create_task(bob.start())
    sends = [await alice.send("bob", f"m{i}") for i in range(50, 60)]
    await start
    got = [(await asyncio.wait_for(bob.incoming.get(), 5)).body for _ in range(60)]
    assert got == [f"m{i}" for i in range(60)], got
    assert len(sends) == 10
    await alice.close()
    await bob.close()


async def test_unknown_recipient_and_spoofed_from_are_refused(server: ServerProcess) -> None:
    alice, bob = client(server, "alice"), client(server, "bob")
    await alice.start()
    await bob.start()
    with pytest.raises(ServerError) as unknown:
        await alice.send("nobody", "hello?")
    assert unknown.value.condition == "service-unavailable"
    peer = native_login(server.ports["native_plain"], "carol", "carolpw")
    peer.send("<message><id>s1</id><from>alice@localhost</from><to>bob</to><body>I am alice</body></message>")
    reply = peer.read_until("</error>").decode()
    assert "<condition>forbidden</condition>" in reply and "<id>s1</id>" in reply
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(bob.incoming.get(), 0.5)
    peer.close()
    await alice.close()
    await bob.close()


async def test_schema_invalid_stanza_gets_error_and_hurts_no_one(server: ServerProcess) -> None:
    alice, bob = client(server, "alice"), client(server, "bob")
    await alice.start()
    await bob.start()
    peer = native_login(server.ports["native_plain"], "carol", "carolpw")
    peer.send("<message><id>x1</id><to>bob</to><body>hi</body><extra/></message>")
    reply = peer.read_until("</error>").decode()
    assert re.search(
        r"<error><condition>bad-request</condition><text>schema: .*</text><id>x1</id></error>", reply
    )
    # The connection stays usable and so does everyone else's.
    peer.send("<message><to>bob</to><body>still here</body></message>")
    assert (await asyncio.wait_for(bob.incoming.get(), 5)).body == "still here"
    await alice.send("bob", "unaffected")
    assert (await asyncio.wait_for(bob.incoming.get(), 5)).body == "unaffected"
    peer.close()
    await alice.close()
    await bob.close()


@pytest.mark.parametrize(
    ("payload", "condition"),
    [
        (b"<message><to>bob</to><body>a</body></mess>", "not-well-formed"),
        (b"<!-- hello --><ping/>", "restricted-xml"),
        (b"<message><to>bob</to><body>&xxe;</body></message>", "restricted-xml"),
        (b"<message><to>bob</to><body>\xff\xfe</body></message>", "unsupported-encoding"),
        (b"<message><to>bob</to><body>" + b"A" * 400_000 + b"</body></message>", "policy-violation"),
    ],
    ids=["not-well-formed", "comment", "entity", "bad-utf8", "too-big"],
)
async def test_fatal_input_closes_only_that_connection(
    server: ServerProcess, payload: bytes, condition: str
) -> None:
    bob = client(server, "bob")
    await bob.start()
    peer = native_login(server.ports["native_plain"], "carol", "carolpw")
    peer.send(payload)
    data = peer.read_until_closed().decode(errors="replace")
    assert f"<error><condition>{condition}</condition>" in data and data.endswith("</session>")
    assert peer.closed
    carol = client(server, "carol")
    await carol.start()
    await carol.send("bob", "after the storm")
    assert (await asyncio.wait_for(bob.incoming.get(), 5)).body == "after the storm"
    await carol.close()
    await bob.close()


def test_stanzas_before_login_are_refused(server: ServerProcess) -> None:
    peer = RawPeer(server.ports["native_plain"])
    peer.send(NATIVE_OPEN + "<message><to>bob</to><body>hi</body></message><ping/>")
    data = peer.read_until("<pong/>").decode()
    assert "<error><condition>not-authorized</condition>" in data and "<pong/>" in data
    peer.close()


def test_wrong_root_is_a_stream_error(server: ServerProcess) -> None:
    peer = RawPeer(server.ports["native_plain"])
    peer.send("<stream xmlns='urn:other'>")
    data = peer.read_until_closed().decode()
    assert "<condition>invalid-namespace</condition>" in data and peer.closed


def test_too_many_failed_logins_close_the_connection(server: ServerProcess) -> None:
    peer = RawPeer(server.ports["native_plain"])
    bad = "<login><user>alice</user><password>wrong</password></login>"
    peer.send(NATIVE_OPEN + bad * 3)
    data = peer.read_until_closed().decode()
    assert data.count("<login-failed>") == 3 and "<condition>policy-violation</condition>" in data


def test_heartbeat_timeout_closes_a_silent_connection(server_factory: ServerFactory) -> None:
    server = server_factory("[limits]\nidle_timeout = 1.0\n", users={"alice": "alicepw"})
    silent = native_login(server.ports["native_plain"], "alice", "alicepw")
    lively = native_login(server.ports["native_plain"], "alice", "alicepw")
    data = silent.read_until("<ping/>", timeout=3)
    assert b"<ping/>" in data  # the server asks first...
    for _ in range(6):  # ...the lively one answers and stays
        lively.send("<pong/>")
        lively.read_until("NEVER", timeout=0.3)
    data = silent.read_until_closed(timeout=3).decode()
    assert "<condition>connection-timeout</condition>" in data and silent.closed
    assert not lively.closed


async def test_client_reconnects_after_server_restart(server: ServerProcess) -> None:
    states: list[str] = []
    alice = client(
        server, "alice", min_backoff=0.1, max_backoff=0.5, on_state=lambda s, why: states.append(s)
    )
    bob = client(server, "bob", min_backoff=0.1, max_backoff=0.5)
    await alice.start()
    await bob.start()
    server.stop(signal.SIGTERM)
    await wait_for(lambda: alice.state in ("disconnected", "waiting"), what="alice noticed the stop")
    server.start()  # same data dir; ports are new, so point the clients at them
    for c in (alice, bob):
        c.port = server.ports["native"]
        c.ssl = server.client_ssl()
    await alice.wait_online(15)
    await bob.wait_online(15)
    assert alice.connects == 2 and "waiting" in states
    await alice.send("bob", "back again")
    assert (await asyncio.wait_for(bob.incoming.get(), 5)).body == "back again"
    await alice.close()
    await bob.close()


async def test_graceful_shutdown_tells_clients(server: ServerProcess) -> None:
    peer = native_login(server.ports["native_plain"], "alice", "alicepw")
    assert server.stop(signal.SIGINT) == 0
    data = peer.read_until_closed().decode()
    assert "<condition>system-shutdown</condition>" in data and data.endswith("</session>")


async def test_send_raises_when_connection_is_lost(server: ServerProcess) -> None:
    alice = client(server, "alice", reconnect=False)
    await alice.start()
    server.stop()
    await wait_for(lambda: alice.state == "closed", what="alice saw the server go")
    # Not TimeoutError: with reconnect=False no session is coming, so send
    # must say the connection is gone rather than wait out its timeout.
    with pytest.raises(ConnectionLost):
        await asyncio.wait_for(alice.send("bob", "nobody hears"), alice.timeout / 2)
    await alice.close()


async def test_contacts_and_presence(server: ServerProcess) -> None:
    seen: list[tuple[str, bool]] = []
    alice = client(server, "alice", on_presence=lambda p: seen.append((p.user, p.online)))
    await alice.start()
    assert await alice.contacts() == []
    assert await alice.add_contact("bob") == [("bob@localhost", False)]
    bob = client(server, "bob")
    await bob.start()
    assert await bob.contacts() == [("alice@localhost", True)]
    await wait_for(lambda: ("bob@localhost", True) in seen, what="bob's presence reached alice")
    # A second session of bob's comes and goes; a raw socket, so the test can
    # see the server end it (it has then sent any presence the leaving causes).
    phone = native_login(server.ports["native_plain"], "bob", "bobpw")
    phone.send("</session>")
    phone.read_until_closed()
    # alice's answer is written after anything queued for her before it.
    assert await alice.contacts() == [("bob@localhost", True)]
    assert seen[-1] == ("bob@localhost", True)  # bob's first session is still there
    await bob.close()
    await wait_for(lambda: seen[-1] == ("bob@localhost", False), what="bob's offline presence")
    assert await alice.remove_contact("bob") == []
    await alice.close()
