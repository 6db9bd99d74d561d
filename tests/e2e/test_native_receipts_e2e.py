"""Native receipts end to end: a stored message leaves the store only once the
client has confirmed it with <received> (docs/native-protocol.md, "Receipts")."""

from __future__ import annotations

import asyncio
import re

from conftest import ServerProcess
from e2e.rawsock import NATIVE_OPEN, RawPeer

from xmlchat.client.native import NativeClient


def client(server: ServerProcess, user: str) -> NativeClient:
    return NativeClient(user, f"{user}pw", port=server.ports["native_plain"], reconnect=False)


async def test_unconfirmed_stored_messages_are_sent_again(server: ServerProcess) -> None:
    alice = client(server, "alice")
    await alice.start()
    for n in range(3):
        await alice.send("bob", f"stored {n}", f"s{n}")  # bob is offline: acked once stored
    peer = RawPeer(server.ports["native_plain"])
    peer.send(f"{NATIVE_OPEN}<login><user>bob</user><password>bobpw</password><receipts/></login>")
    got = peer.read_until("<seq>3</seq>").decode()
    assert re.findall(r"<seq>(\d+)</seq>", got) == ["1", "2", "3"]
    peer.send("<received><seq>2</seq></received><ping/>")  # not the third: the page stays
    peer.read_until("<pong/>")
    peer.close()
    bob = client(server, "bob")
    await bob.start()
    again = [await asyncio.wait_for(bob.incoming.get(), 5) for _ in range(3)]
    assert [m.id for m in again] == ["s0", "s1", "s2"]
    await bob.close()
    await alice.close()


async def test_received_above_what_was_sent_ends_the_session(server: ServerProcess) -> None:
    peer = RawPeer(server.ports["native_plain"])
    peer.send(f"{NATIVE_OPEN}<login><user>carol</user><password>carolpw</password><receipts/></login>")
    peer.read_until("</login-ok>")
    peer.send("<received><seq>1</seq></received>")
    closing = peer.read_until_closed().decode()
    assert "<condition>undefined-condition</condition>" in closing and closing.endswith("</session>")
