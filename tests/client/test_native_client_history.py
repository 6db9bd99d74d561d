"""The client library's history call against a scripted server (docs/native-protocol.md, "History")."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from conftest import Start

from xmlchat.client.native import ArchivedMessage, ConnectionLost, NativeClient, ServerError

ROOT = b"<session xmlns='urn:xmlchat:native:1' version='1' server='localhost'>"
LOGIN_OK = b"<login-ok><address>alice@localhost/r</address></login-ok>"
PAGE = (
    b"<history-result><id>c1</id><complete>false</complete>"
    b"<message><id>m1</id><archive-id>A1</archive-id><from>alice@localhost</from><to>bob@localhost</to>"
    b"<time>2026-11-22T10:00:00.123Z</time><body>lunch? &amp;</body></message>"
    b"<message><archive-id>A2</archive-id><from>bob@localhost</from><to>alice@localhost</to>"
    b"<time>2026-11-22T10:00:01.002Z</time><body></body></message></history-result>"
)

async def test_pages_and_errors_are_matched_by_request_id(scripted: Start) -> None:
    received: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"</login>")
        writer.write(ROOT + LOGIN_OK)
        received.append(await reader.readuntil(b"</history>"))
        # An error naming another id is not this request's answer; then the page.
        writer.write(b"<error><condition>bad-request</condition><id>zz</id></error>")
        writer.write(b"<history-result><id>c9</id><complete>true</complete></history-result>" + PAGE)
        received.append(await reader.readuntil(b"</history>"))
        writer.write(b"<error><condition>item-not-found</condition><text>no such</text><id>c2</id></error>")
        received.append(await reader.readuntil(b"</history>"))
        writer.close()

    client = NativeClient("alice", "pw", port=await scripted(script), reconnect=False)
    await client.start()
    page = await client.history("bob", 2)
    t = datetime(2026, 11, 22, 10, 0, 0, 123000, tzinfo=UTC)
    assert page.messages == [
        ArchivedMessage("A1", "m1", "alice@localhost", "bob@localhost", t, "lunch? &"),
        ArchivedMessage(
            "A2", None, "bob@localhost", "alice@localhost", t.replace(second=1, microsecond=2000), ""
        ),
    ]
    assert not page.complete
    with pytest.raises(ServerError) as refused:
        await client.history(before="nope")
    assert refused.value.condition == "item-not-found" and refused.value.ref == "c2"
    with pytest.raises(ConnectionLost):
        await client.history()  # the server hangs up: no answer will come
    await client.close()
    assert received == [
        b"<history><id>c1</id><with>bob</with><max>2</max></history>",
        b"<history><id>c2</id><max>50</max><before>nope</before></history>",
        b"<history><id>c3</id><max>50</max></history>",
    ]


async def test_a_max_the_protocol_refuses_is_not_sent() -> None:
    client = NativeClient("alice", "pw", reconnect=False)
    for bad in (0, 101):
        with pytest.raises(ValueError, match="1 to 100"):
            await client.history(max=bad)
