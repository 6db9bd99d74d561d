"""The native client library against a scripted server: framing and lifecycle."""

from __future__ import annotations

import asyncio

import pytest
from conftest import Start
from polling import wait_for

from xmlchat.client.native import ConnectionLost, LoginFailed, NativeClient

ROOT = b"<session xmlns='urn:xmlchat:native:1' version='1' server='localhost'>"
LOGIN_OK = b"<login-ok><address>alice@localhost/r</address></login-ok>"


def message(n: int) -> bytes:
    return (
        f"<message><id>m{n}</id><from>bob@localhost</from><to>alice@localhost</to>"
        f"<time>2026-11-22T10:00:00.000Z</time><body>hello {n}</body></message>"
    ).encode()


async def until_client_hangs_up(reader: asyncio.StreamReader) -> None:
    """Keep the connection open, answering nothing, until the client closes it."""
    while await reader.read(1024):
        pass


async def test_messages_in_the_same_read_as_login_ok_are_kept(scripted: Start) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        # Offline messages right behind login-ok, in one segment.
        writer.write(ROOT + LOGIN_OK + message(1) + message(2))
        await writer.drain()
        await until_client_hangs_up(reader)

    client = NativeClient("alice", "pw", port=await scripted(script), reconnect=False)
    await client.start()
    got = [await asyncio.wait_for(client.incoming.get(), 2) for _ in range(2)]
    assert [m.body for m in got] == ["hello 1", "hello 2"]
    await client.close()


async def test_stanzas_split_one_byte_at_a_time(scripted: Start) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        for byte in ROOT + LOGIN_OK + message(1):
            writer.write(bytes([byte]))
            await writer.drain()
        await until_client_hangs_up(reader)

    client = NativeClient("alice", "pw", port=await scripted(script), reconnect=False)
    await client.start()
    assert (await asyncio.wait_for(client.incoming.get(), 2)).body == "hello 1"
    await client.close()


async def test_login_failure_raises(scripted: Start) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(ROOT + b"<login-failed><condition>not-authorized</condition></login-failed>")
        await writer.drain()

    client = NativeClient("alice", "pw", port=await scripted(script), reconnect=False)
    with pytest.raises(LoginFailed):
        await client.start()


async def test_heartbeat_detects_a_dead_server(scripted: Start) -> None:
    pings = 0

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal pings
        await reader.read(1024)
        writer.write(ROOT + LOGIN_OK)
        while data := await reader.read(1024):  # never answers
            pings += data.count(b"<ping/>")

    states: list[str] = []
    client = NativeClient(
        "alice",
        "pw",
        port=await scripted(script),
        reconnect=False,
        heartbeat=0.2,
        timeout=0.5,
        on_state=lambda state, why: states.append(f"{state}: {why}"),
    )
    await client.start()
    await wait_for(lambda: client.state == "closed", what="the client gave up on the silent server")
    assert pings >= 1
    assert any("heartbeat" in s for s in states)
    await client.close()


async def test_send_after_the_connection_is_lost_raises_connection_lost(scripted: Start) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(ROOT + LOGIN_OK)
        await writer.drain()
        writer.close()  # the server hangs up

    client = NativeClient("alice", "pw", port=await scripted(script), reconnect=False, timeout=5)
    await client.start()
    await wait_for(lambda: client.state == "closed", what="the client saw the hang-up")
    # No session will come back (reconnect=False): fail now, not after the timeout.
    with pytest.raises(ConnectionLost):
        await asyncio.wait_for(client.send("bob", "nobody hears"), 1)
    await client.close()


async def test_a_send_waiting_for_its_ack_fails_when_the_connection_drops(scripted: Start) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(ROOT + LOGIN_OK)
        await writer.drain()
        received = b""
        while b"</message>" not in received and (data := await reader.read(1024)):
            received += data
        writer.close()  # takes the message, never acks it, hangs up

    client = NativeClient("alice", "pw", port=await scripted(script), reconnect=False, timeout=5)
    await client.start()
    with pytest.raises(ConnectionLost):
        await asyncio.wait_for(client.send("bob", "lost in transit"), 2)
    await client.close()
