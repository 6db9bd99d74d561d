"""XMPP end to end: messages between slixmpp, native and xmpppy clients, and the
xmpp-send / xmpp-chat command line, against the real server process.

One server serves the whole module (users are made in-process).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import xmpp
from conftest import ServerProcess
from e2e.xmpp_client_helpers import next_item, online, started_server

from xmlchat.client.native import NativeClient
from xmlchat.client.xmpp import ChatMessage, StanzaFailed

USERS = ("alice", "bob", "carol", "dave", "erin", "frank")
CHINESE = "你好，世界！🙂 <&>"


@pytest.fixture(scope="module")
def xserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from started_server(tmp_path_factory.mktemp("xmpp"), USERS)


# ---- messages


async def test_messages_xmpp_to_xmpp_both_ways(xserver: ServerProcess) -> None:
    async with online(xserver, "alice", "a") as alice, online(xserver, "bob", "b") as bob:
        sent = alice.send_chat("bob@localhost", CHINESE)
        got = await next_item(bob.incoming)
        assert isinstance(got, ChatMessage)
        assert (got.id, got.sender, got.body, got.delayed) == (sent, "alice@localhost/a", CHINESE, False)
        sent = bob.send_chat("alice@localhost/a", "and back")
        got = await next_item(alice.incoming)
        assert isinstance(got, ChatMessage)
        assert (got.id, got.sender, got.to, got.body) == (
            sent,
            "bob@localhost/b",
            "alice@localhost/a",
            "and back",
        )


async def test_messages_native_and_xmpp_both_ways(xserver: ServerProcess) -> None:
    native = NativeClient("carol", "carolpw", port=xserver.ports["native"], ssl=xserver.client_ssl())
    await native.start()
    try:
        async with online(xserver, "dave", "d") as dave:
            ack = await native.send("dave", CHINESE)
            got = await next_item(dave.incoming)
            assert isinstance(got, ChatMessage)
            assert (got.id, got.body, got.type) == (ack.id, CHINESE, "chat")
            assert got.sender.startswith("carol@localhost/")
            before = datetime.now(UTC)
            sent = dave.send_chat("carol@localhost", "from xmpp")
            back = await asyncio.wait_for(native.incoming.get(), 5)
            assert (back.id, back.sender, back.body) == (sent, "dave@localhost", "from xmpp")
            assert before - timedelta(seconds=1) <= back.time <= datetime.now(UTC)  # the server's clock
    finally:
        await native.close()


async def test_offline_messages_reach_xmpp_with_delay_stamps(xserver: ServerProcess) -> None:
    native = NativeClient("carol", "carolpw", port=xserver.ports["native"], ssl=xserver.client_ssl())
    await native.start()
    try:
        ack = await native.send("erin", "stored 1 (native)")
        async with online(xserver, "alice", "o") as alice:
            sent = alice.send_chat("erin@localhost", "stored 2 (xmpp)")
            await alice.sync()  # the server has handled it: stored
        async with online(xserver, "erin") as erin:  # XEP-0160: sent at initial presence
            first, second = [await next_item(erin.incoming) for _ in range(2)]
            assert isinstance(first, ChatMessage) and isinstance(second, ChatMessage)
            assert (first.id, first.body, first.delayed) == (ack.id, "stored 1 (native)", True)
            assert abs(first.time - ack.time) < timedelta(milliseconds=1)  # XEP-0203 stamp = accepted
            assert (second.id, second.body, second.delayed) == (sent, "stored 2 (xmpp)", True)
            assert first.time <= second.time
            erin.send_chat("carol@localhost", "live again")
            assert (await asyncio.wait_for(native.incoming.get(), 5)).body == "live again"
    finally:
        await native.close()


async def test_an_error_comes_back_for_an_unknown_recipient(xserver: ServerProcess) -> None:
    async with online(xserver, "alice") as alice:
        sent = alice.send_chat("nobody@localhost", "hello?")
        error = await next_item(alice.errors)
        assert isinstance(error, StanzaFailed)
        assert (error.condition, error.ref) == ("service-unavailable", sent)


# ---- interop: xmpppy, a synchronous library, in a thread


def _xmpppy_session(
    port: int, inbox: queue.Queue[tuple[str, str]], outbox: queue.Queue[tuple[str, str]]
) -> None:
    """Log in as carol/xmpppy (STARTTLS, then PLAIN), report what arrives,
    send what is asked, until asked for ("", "")."""
    client = xmpp.Client("localhost", debug=[])
    if (
        client.connect(("127.0.0.1", port), use_srv=False) != "tls"
        or client.auth("carol", "carolpw", "xmpppy") != "sasl"
    ):
        inbox.put(("login failed", ""))
        return
    client.RegisterHandler("message", lambda _, msg: inbox.put((str(msg.getFrom()), msg.getBody() or "")))
    client.sendInitPresence(requestRoster=0)
    inbox.put(("ready", client.SASL.startsasl))
    while True:
        client.Process(0.05)
        with contextlib.suppress(queue.Empty):
            to, body = outbox.get_nowait()
            if not to:
                break
            client.send(xmpp.Message(to, body, typ="chat"))
    client.disconnect()


async def test_interop_with_xmpppy(xserver: ServerProcess) -> None:
    inbox: queue.Queue[tuple[str, str]] = queue.Queue()
    outbox: queue.Queue[tuple[str, str]] = queue.Queue()
    thread = threading.Thread(
        target=_xmpppy_session, args=(xserver.ports["xmpp"], inbox, outbox), daemon=True
    )
    thread.start()
    loop = asyncio.get_running_loop()

    async def from_xmpppy() -> tuple[str, str]:
        return await asyncio.wait_for(loop.run_in_executor(None, inbox.get, True, 10), 11)

    try:
        assert await from_xmpppy() == ("ready", "success")
        async with online(xserver, "dave", "x") as dave:
            dave.send_chat("carol@localhost/xmpppy", CHINESE)
            assert await from_xmpppy() == ("dave@localhost/x", CHINESE)
            outbox.put(("dave@localhost/x", "from xmpppy"))
            got = await next_item(dave.incoming)
            assert isinstance(got, ChatMessage)
            assert (got.sender, got.body) == ("carol@localhost/xmpppy", "from xmpppy")
    finally:
        outbox.put(("", ""))
        await loop.run_in_executor(None, thread.join, 10)


# ---- the command line: xmlchat xmpp-send / xmpp-chat


def test_cli_xmpp_send(xserver: ServerProcess) -> None:
    port = f"127.0.0.1:{xserver.ports['xmpp']}"
    ok = xserver.cli("xmpp-send", "alice", "carol", "from the cli", "--password", "alicepw", "--server", port)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("sent (id ")
    unknown = xserver.cli("xmpp-send", "alice", "nobody", "x", "--password", "alicepw", "--server", port)
    assert unknown.returncode == 1 and "service-unavailable" in unknown.stderr
    wrong = xserver.cli("xmpp-send", "alice", "carol", "x", "--password", "nope", "--server", port)
    assert wrong.returncode == 1 and "not-authorized" in wrong.stderr
    # The default trust is the data directory's certificate (pinning); direct TLS works too.
    direct = f"127.0.0.1:{xserver.ports['xmpp_tls']}"
    ok = xserver.cli(
        "xmpp-send", "alice", "carol", "direct", "--password", "alicepw", "--server", direct, "--direct-tls"
    )
    assert ok.returncode == 0, ok.stderr


async def test_cli_xmpp_chat(xserver: ServerProcess) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "xmlchat", "xmpp-chat", "bob", "--resource", "cli", "--password", "bobpw",
        "--server", f"127.0.0.1:{xserver.ports['xmpp']}", "--config", str(xserver.config_path),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "XMLCHAT_DATA_DIR": str(xserver.data_dir)},
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None

    async def line() -> str:
        return (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()  # type: ignore[union-attr]

    try:
        assert (await line()).startswith("logged in as bob@localhost/cli (xmpp);")
        async with online(xserver, "alice", "gui") as alice:
            alice.send_chat("bob@localhost", CHINESE)
            assert (await line()).endswith(f"] alice@localhost: {CHINESE}\n")
            # Piped stdin works too: lines as typed, to the conversation /to chose.
            proc.stdin.write("/to alice\nalice: 你好 back\n/roster\n".encode())
            assert (await line()).strip() == "~ talking to alice"
            got = await next_item(alice.incoming)
            assert (got.sender, got.body) == ("bob@localhost/cli", "alice: 你好 back")  # type: ignore[attr-defined]
            assert "(empty roster: /add NAME)" in await line()
            # RFC 6121 §3.1: bob subscribes; alice's slixmpp approves and subscribes back.
            proc.stdin.write(b"/add alice\n")
            assert (await line()).strip() == "subscription request sent to alice@localhost"
            # alice's request back is asked about, not approved behind bob's back.
            while not (shown := await line()).startswith("? alice@localhost asks"):
                pass
            assert shown.strip().endswith("/allow alice or /deny alice")
            proc.stdin.write(b"/allow alice\n")
            deadline = time.monotonic() + 10
            while True:  # 'to', then 'both'
                proc.stdin.write(b"/roster\n")
                while not (entry := (await line()).strip()).startswith("alice@localhost "):
                    pass
                if entry.endswith("both)") or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)  # poll interval
            assert entry == "alice@localhost online (subscription both)"
            proc.stdin.write(b"/quit\n")
            assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
