"""The client library's blocking calls against a scripted server (docs/native-protocol.md, "Blocking")."""

from __future__ import annotations

import asyncio

import pytest
from conftest import Start

from xmlchat.client.native import NativeClient, ServerError

ROOT = b"<session xmlns='urn:xmlchat:native:1' version='1' server='localhost'>"
LOGIN_OK = b"<login-ok><address>alice@localhost/r</address></login-ok>"

async def test_requests_are_answered_by_id_and_pushes_are_not_answers(scripted: Start) -> None:
    received: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"</login>")
        writer.write(ROOT + LOGIN_OK)
        received.append(await reader.readuntil(b"</blocklist-get>"))
        writer.write(b"<blocklist><id>c1</id></blocklist>")
        received.append(await reader.readuntil(b"</block>"))
        # Another session's change is pushed before our answer: it is not the answer.
        writer.write(
            b"<blocklist><jid>eve@localhost</jid></blocklist>"
            b"<blocklist><id>c2</id><jid>bob@localhost</jid><jid>carol@localhost</jid>"
            b"<jid>eve@localhost</jid></blocklist>"
        )
        received.append(await reader.readuntil(b"</unblock>"))
        writer.write(
            b"<error><condition>jid-malformed</condition><text>bad address</text><id>c3</id></error>"
        )
        received.append(await reader.readuntil(b"</unblock>"))
        writer.write(b"<blocklist><id>c4</id></blocklist>")
        await reader.read()

    client = NativeClient("alice", "pw", port=await scripted(script), reconnect=False)
    await client.start()
    assert await client.blocklist() == []
    assert await client.block("bob", "carol@localhost") == [
        "bob@localhost",
        "carol@localhost",
        "eve@localhost",
    ]
    with pytest.raises(ServerError) as refused:
        await client.unblock("@")
    assert refused.value.condition == "jid-malformed" and refused.value.ref == "c3"
    assert await client.unblock() == []
    await client.close()
    assert received == [
        b"<blocklist-get><id>c1</id></blocklist-get>",
        b"<block><id>c2</id><jid>bob</jid><jid>carol@localhost</jid></block>",
        b"<unblock><id>c3</id><jid>@</jid></unblock>",
        b"<unblock><id>c4</id></unblock>",
    ]


async def test_with_a_callback_the_list_is_fetched_at_login_and_pushes_arrive(scripted: Start) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"</login>")
        writer.write(ROOT + LOGIN_OK)
        await reader.readuntil(b"<blocklist-get/>")  # asked for, so the server will push
        writer.write(b"<blocklist><jid>eve@localhost</jid></blocklist>")
        writer.write(b"<blocklist/>")  # another session unblocked everyone
        await reader.read()

    lists: list[list[str]] = []
    both = asyncio.Event()

    def on_blocklist(jids: list[str]) -> None:
        lists.append(jids)
        if len(lists) == 2:
            both.set()

    client = NativeClient(
        "alice", "pw", port=await scripted(script), reconnect=False, on_blocklist=on_blocklist
    )
    await client.start()
    await asyncio.wait_for(both.wait(), 5)
    assert lists == [["eve@localhost"], []]
    await client.close()


async def test_requests_the_protocol_refuses_are_not_sent() -> None:
    client = NativeClient("alice", "pw", reconnect=False)
    with pytest.raises(ValueError, match="at least one"):
        await client.block()
    with pytest.raises(ValueError, match="at most 100"):
        await client.unblock(*(f"u{n}" for n in range(101)))
