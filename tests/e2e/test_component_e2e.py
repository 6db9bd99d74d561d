"""XEP-0114 end to end: the example echo bot runs as a component (slixmpp's
ComponentXMPP) beside XMPP users of the real server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import ServerFactory, ServerProcess
from e2e.test_bot import load_bot
from e2e.xmpp_helpers import TIMEOUT, connect
from slixmpp import JID as SlixJID

SECRET = "s3cret"
CONFIG = f"""
[listeners.component]
enabled = true
port = 0

[components.secrets]
"echo.localhost" = "{SECRET}"
"""


@pytest.fixture
def server(server_factory: ServerFactory) -> ServerProcess:
    return server_factory(CONFIG, users={n: f"{n}pw" for n in ("alice", "bob")})


@pytest.fixture
async def echo(server: ServerProcess) -> AsyncIterator[Any]:
    bot = load_bot()
    component = await bot.run_component("echo.localhost", SECRET, "127.0.0.1", server.ports["component"])
    yield component
    component.disconnect()


async def test_users_talk_to_the_echo_component(server: ServerProcess, echo: Any) -> None:
    alice = await connect(server, "alice", resource="pc", plugins=("xep_0030",))
    try:
        alice.client.send_message(mto=SlixJID("echo.localhost"), mbody="1", mtype="chat")
        reply = await alice.next_message()
        assert (str(reply["from"]), str(reply["body"])) == ("echo.localhost", "你猜!")
        alice.client.send_message(mto=SlixJID("anyone@echo.localhost"), mbody="hi", mtype="chat")
        reply = await alice.next_message()
        assert (str(reply["from"]), str(reply["body"])) == ("anyone@echo.localhost", "echo: hi")
        # The server lists the component among its items (XEP-0030 §4.1).
        items = await alice.client.plugin["xep_0030"].get_items(jid="localhost", timeout=TIMEOUT)
        assert "echo.localhost" in {str(item[0]) for item in items["disco_items"]["items"]}
    finally:
        await alice.close()


async def test_a_component_message_waits_offline_like_any_other(server: ServerProcess, echo: Any) -> None:
    alice = await connect(server, "alice", resource="pc")
    echo.send_message(
        mto="bob@localhost", mfrom="news@echo.localhost", mbody="while you were out", mtype="chat"
    )
    echo.send_message(mto="alice@localhost", mfrom="news@echo.localhost", mbody="bob is out", mtype="chat")
    # The component's stanzas are handled in order: once alice has hers, bob's is stored.
    assert str((await alice.next_message())["body"]) == "bob is out"
    await alice.close()
    bob = await connect(server, "bob", resource="pc")
    try:
        stored = await bob.next_message()
        assert (str(stored["from"]), str(stored["body"])) == ("news@echo.localhost", "while you were out")
    finally:
        await bob.close()


async def test_without_its_component_the_domain_is_unavailable(server: ServerProcess) -> None:
    alice = await connect(server, "alice", resource="pc")
    errors: asyncio.Queue[Any] = asyncio.Queue()
    alice.client.add_event_handler("message_error", errors.put_nowait)
    try:
        alice.client.send_message(mto=SlixJID("echo.localhost"), mbody="anyone?", mtype="chat")
        error = await asyncio.wait_for(errors.get(), TIMEOUT)
        assert (error["type"], error["error"]["condition"]) == ("error", "service-unavailable")
    finally:
        await alice.close()


async def test_a_wrong_secret_is_refused(server: ServerProcess) -> None:
    bot = load_bot()
    with pytest.raises(ConnectionError):
        await bot.run_component("echo.localhost", "wrong", "127.0.0.1", server.ports["component"])


async def test_a_quiet_component_is_pinged_not_dropped(server_factory: ServerFactory) -> None:
    """Past half the idle timeout the server pings (XEP-0199); the component
    answers and stays connected (a whitespace keepalive got no answer)."""
    quick = server_factory(CONFIG + "\n[limits]\nidle_timeout = 1.0\n")
    port = quick.ports["component"]
    component = await load_bot().run_component("echo.localhost", SECRET, "127.0.0.1", port)
    pings: asyncio.Queue[Any] = asyncio.Queue()

    def note_pings(stanza: Any) -> Any:  # an incoming filter: watches, the bot still answers
        if stanza.xml.find("{urn:xmpp:ping}ping") is not None:
            pings.put_nowait(stanza)
        return stanza

    component.add_filter("in", note_pings)
    try:
        async with asyncio.timeout(TIMEOUT):
            for _ in range(3):  # three pings: well past the one-second idle timeout
                await pings.get()
        assert not component.transport.is_closing()
    finally:
        component.disconnect()


async def test_the_admin_commands_see_past_a_component(server: ServerProcess, echo: Any) -> None:
    """A component is a connection without a session: who and stats list the
    users' sessions and do not trip over it."""
    alice = await connect(server, "alice", resource="pc")
    try:
        who = server.cli("who", "--json")
        assert who.returncode == 0, who.stderr
        assert [row["jid"] for row in json.loads(who.stdout)] == ["alice@localhost/pc"]
        stats = server.cli("stats", "--json")
        assert stats.returncode == 0, stats.stderr
    finally:
        await alice.close()


async def test_a_second_connection_replaces_the_first(server: ServerProcess, echo: Any) -> None:
    """As a resource is replaced (RFC 6120 §7.7.2.2): the newer connection wins."""
    gone: asyncio.Queue[Any] = asyncio.Queue()
    echo.add_event_handler("disconnected", gone.put_nowait)
    newer = await load_bot().run_component("echo.localhost", SECRET, "127.0.0.1", server.ports["component"])
    try:
        await asyncio.wait_for(gone.get(), TIMEOUT)
        alice = await connect(server, "alice", resource="pc")
        alice.client.send_message(mto=SlixJID("echo.localhost"), mbody="2", mtype="chat")
        assert str((await alice.next_message())["body"]) == "再猜!"  # answered by the newer one
        await alice.close()
    finally:
        newer.disconnect()


@pytest.fixture
def tight(server_factory: ServerFactory) -> ServerProcess:
    """One connection at a time may be logging in."""
    return server_factory(CONFIG + "\n[limits]\nmax_pending = 1\n", users={"alice": "alicepw"})


async def test_a_connected_component_is_no_longer_pending(tight: ServerProcess) -> None:
    """After its handshake a component leaves the pending connections, so it
    holds no place that clients still logging in need (limits.max_pending)."""
    port = tight.ports["component"]
    component = await load_bot().run_component("echo.localhost", SECRET, "127.0.0.1", port)
    try:
        alice = await connect(tight, "alice", resource="pc")
        alice.client.send_message(mto=SlixJID("echo.localhost"), mbody="ping", mtype="chat")
        assert str((await alice.next_message())["body"]) == "pong"
        await alice.close()
    finally:
        component.disconnect()
