"""The web chat page (issue 13 item 4) in Debian's headless Chromium.

Two browsers subscribe to each other, see each other's presence and chat; a
browser chats with slixmpp over TCP and with the native client; a bad password
shows an error. A page whose connection drops reconnects by itself, joins
its rooms again, and stays out when it was logged out, kicked or its password
changed. With XMLCHAT_SCREENSHOTS=DIR set, the screenshot test writes
the page at desktop and phone width into DIR (``make screenshots``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from conftest import ServerProcess
from e2e.web_page import (
    CHROMIUM,
    NO_CHROMIUM,
    PHONE,
    RECONNECT_TIMEOUT_MS,
    ChatPage,
    WebSocketGate,
    chromium,
)
from e2e.xmpp_client_helpers import started_server
from e2e.xmpp_helpers import connect
from faults.peers import pin_ports
from playwright.async_api import Browser, expect
from polling import wait_until

from xmlchat.client.native import NativeClient

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
USERS = ("alice", "bob", "carol", "dave", "erin", "frank")


@pytest.fixture(scope="module")
def wserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from started_server(tmp_path_factory.mktemp("page"), USERS)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own: restarting it or kicking from it disturbs no other test's pages.
    Its ports are pinned: restarted, it is where the page left it (else each start picks new ones)."""
    for server in started_server(tmp_path, USERS):
        pin_ports(server)
        yield server


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as browser:
        yield browser


async def test_the_page_is_served_with_a_strict_policy(wserver: ServerProcess) -> None:
    connector = aiohttp.TCPConnector(ssl=wserver.client_ssl())
    async with aiohttp.ClientSession(connector=connector) as http:
        base = f"https://localhost:{wserver.ports['https']}"
        async with http.get(f"{base}/") as index:
            assert index.status == 200
            assert '<meta name="viewport"' in await index.text()
            assert "script-src 'self'" in index.headers["Content-Security-Policy"]
        async with http.get(f"{base}/web/app.js") as script:
            assert script.status == 200 and "javascript" in script.content_type
            assert script.headers["X-Content-Type-Options"] == "nosniff"
        async with http.get(f"{base}/web/") as listing:
            assert listing.status in (403, 404)  # no directory listing
        async with http.get(f"{base}/web/%2e%2e/config.py") as escape:
            assert escape.status in (403, 404)


@needs_chromium
async def test_two_browsers_subscribe_see_presence_and_chat(wserver: ServerProcess, browser: Browser) -> None:
    alice, bob = await ChatPage.open(browser, wserver), await ChatPage.open(browser, wserver)
    await alice.login("alice@localhost", "alicepw")
    await bob.login("bob@localhost", "bobpw")

    await alice.add_contact("bob@localhost")  # roster set + presence subscribe
    await bob.accept_request("alice@localhost")  # subscribed, and a subscribe back
    await alice.accept_request("bob@localhost")
    await alice.sees_presence("bob@localhost", "available")
    await bob.sees_presence("alice@localhost", "available")

    await alice.chat_with("bob@localhost")
    await alice.send("hi bob, <b>not bold</b> & fine")
    await bob.chat_with("alice@localhost")
    await bob.sees_message("hi bob, <b>not bold</b> & fine")  # escaped both ways, shown as text
    await bob.send("hello alice")
    await alice.sees_message("hello alice")

    await bob.page.click("#logout")
    await alice.sees_presence("bob@localhost", "unavailable")


@needs_chromium
async def test_a_browser_chats_with_slixmpp_over_tcp(wserver: ServerProcess, browser: Browser) -> None:
    carol = await ChatPage.open(browser, wserver)
    await carol.login("carol@localhost", "carolpw")
    dave = await connect(wserver, "dave")
    try:
        dave.client.send_message(mto="carol@localhost", mbody="hello from tcp", mtype="chat")
        await carol.chat_with("dave@localhost")  # a stranger's message adds the conversation
        await carol.sees_message("hello from tcp")
        await carol.send("hello from the browser")
        got = await dave.next_message()
        assert got["body"] == "hello from the browser"
        assert str(got["from"]).startswith("carol@localhost/web-")  # the page's bound resource
    finally:
        await dave.close()


@needs_chromium
async def test_a_browser_chats_with_a_native_client(wserver: ServerProcess, browser: Browser) -> None:
    erin = NativeClient("erin", "erinpw", port=wserver.ports["native"], ssl=wserver.client_ssl())
    await erin.start()
    frank = await ChatPage.open(browser, wserver)
    try:
        await frank.login("frank@localhost", "frankpw")
        await frank.add_contact("erin@localhost")
        await frank.chat_with("erin@localhost")
        await frank.send("hello native")
        got = await erin.incoming.get()
        assert (got.sender, got.body) == ("frank@localhost", "hello native")
        await erin.send("frank@localhost", "hello browser")
        await frank.sees_message("hello browser")
    finally:
        await erin.close()


@needs_chromium
async def test_two_browsers_join_talk_in_and_leave_a_room(wserver: ServerProcess, browser: Browser) -> None:
    alice, bob = await ChatPage.open(browser, wserver), await ChatPage.open(browser, wserver)
    await alice.login("alice@localhost", "alicepw")
    await bob.login("bob@localhost", "bobpw")
    await alice.join_room("lobby")
    await bob.join_room("lobby")
    await alice.sees_occupants("alice, bob")

    await alice.send("hello room")  # shown when the room sends it back (XEP-0045 §7.4)
    await bob.sees_message("alice" + "hello room")  # the sender's nick, then the text
    await bob.send("hi alice")
    await alice.sees_message("bob" + "hi alice")

    await bob.page.click("#leave")
    await alice.sees_occupants("alice")
    await expect(bob.page.locator("#rooms li")).to_have_count(0)


@needs_chromium
async def test_a_bad_password_shows_an_error(wserver: ServerProcess, browser: Browser) -> None:
    page = await ChatPage.open(browser, wserver)
    await page.submit_login("alice@localhost", "wrong")
    await page.shows_login_error("Wrong address or password")
    await page.submit_login("alice@localhost", "alicepw")  # the form works again after a failure
    await expect(page.page.locator("#main")).to_be_visible()


@needs_chromium
async def test_over_plain_http_the_page_says_to_use_https(wserver: ServerProcess, browser: Browser) -> None:
    # xmpp.require_encryption: XMPP over the plain listener is refused (403), and
    # the page explains why instead of failing silently.
    page = await ChatPage.open(browser, wserver, tls=False)
    await page.submit_login("alice@localhost", "alicepw")
    await page.shows_login_error("use https")


async def stored_for(server: ServerProcess, jid: str, body: str) -> None:
    """Until ``xmlchat queue`` shows ``body`` waiting in the store for ``jid``."""

    async def waiting() -> bool:
        queue = await asyncio.to_thread(server.cli, "queue", jid)
        return body in queue.stdout

    await wait_until(waiting, timeout=20, what=f"{body!r} stored for {jid}")


@needs_chromium
async def test_a_page_reconnects_after_the_server_restarts(
    own_server: ServerProcess, browser: Browser
) -> None:
    alice = await ChatPage.open(browser, own_server)
    gate = await WebSocketGate.install(alice)
    await alice.login("alice@localhost", "alicepw")
    bob = await connect(own_server, "bob")
    try:
        bob.client.send_message(mto="alice@localhost", mbody="before the restart", mtype="chat")
        await alice.chat_with("bob@localhost")
        await alice.sees_message("before the restart")
        await bob.close()

        gate.shut()  # the page's retries fail until the message below waits for it in the store
        await asyncio.to_thread(own_server.restart)  # system-shutdown: come back later
        await alice.shows_reconnecting()
        await expect(alice.page.locator("#text")).to_be_disabled()  # nothing typed now is lost
        bob = await connect(own_server, "bob")
        bob.client.send_message(mto="alice@localhost", mbody="while you were away", mtype="chat")
        await stored_for(own_server, "alice@localhost", "while you were away")
        gate.open()

        await alice.is_back()  # nothing typed: the same address and password
        await alice.sees_message("before the restart")  # the conversation stayed on screen
        await alice.sees_message("while you were away")  # offline storage, delivered at login
        await alice.send("back again")
        got = await bob.next_message(timeout=15)
        assert got["body"] == "back again"
        bob.client.send_message(mto="alice@localhost", mbody="welcome back", mtype="chat")
        await alice.sees_message("welcome back")
        await alice.sees_message("while you were away")  # still exactly once
        assert gate.refused > 0  # it did retry while the gate was shut
    finally:
        await bob.close()


@needs_chromium
async def test_a_room_joined_before_a_drop_is_joined_again(
    own_server: ServerProcess, browser: Browser
) -> None:
    alice = await ChatPage.open(browser, own_server)
    gate = await WebSocketGate.install(alice)
    await alice.login("alice@localhost", "alicepw")
    await alice.join_room("lobby")
    await alice.sees_occupants("alice")
    room = alice.page.locator("#rooms li[data-room='lobby@conference.localhost']")

    gate.shut()
    await asyncio.to_thread(own_server.restart)
    await alice.shows_reconnecting()
    await expect(room).to_have_attribute("data-joined", "false")  # out of the room while away
    await alice.sees_occupants("")
    gate.open()

    await alice.is_back()
    await expect(room).to_have_attribute("data-joined", "true", timeout=15_000)  # XEP-0045 §7.2
    await alice.sees_occupants("alice")  # the same nick
    await alice.send("still here")  # shown when the room sends it back: really in it


@needs_chromium
async def test_the_reconnect_policy(wserver: ServerProcess, browser: Browser) -> None:
    page = (await ChatPage.open(browser, wserver)).page
    policy = await page.evaluate("""async () => {
        const { backoffDelay, reconnectVerdict } = await import("/web/reconnect.js");
        const delays = (random) => [1, 2, 3, 4, 5, 6, 7, 20].map((n) => backoffDelay(n, () => random));
        const after = (condition) => reconnectVerdict({ streamError: condition && { condition, text: "" } });
        return {
            middle: delays(0.5), low: delays(0), high: delays(0.999999),
            again: [null, "system-shutdown", "connection-timeout", "reset"].map(after),
            final: ["conflict", "not-authorized", "policy-violation", "host-unknown"].map(after),
            logout: reconnectVerdict({ byUser: true }),
        };
    }""")
    assert policy["middle"] == [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]  # capped at 30 s
    assert policy["low"][:3] == [750, 1500, 3000] and policy["high"][:3] == [1250, 2500, 5000]  # jitter
    assert max(policy["high"]) == 30000
    assert policy["again"] == [None] * 4  # a drop or a shutdown: come back
    assert all(policy["final"]) and policy["logout"] == ""  # a reason for the login form instead


@needs_chromium
async def test_log_out_and_a_kick_do_not_reconnect(own_server: ServerProcess, browser: Browser) -> None:
    alice = await ChatPage.open(browser, own_server)
    await alice.login("alice@localhost", "alicepw")
    await alice.page.click("#logout")
    await expect(alice.page.locator("#login")).to_be_visible()
    await expect(alice.page.locator("#connection-status")).to_be_hidden()

    await alice.login("alice@localhost", "alicepw")
    kick = ("kick", "alice@localhost", "--reason", "flooding the lobby")
    kicked = await asyncio.to_thread(own_server.cli, *kick)
    assert kicked.returncode == 0, kicked.stderr
    # policy-violation (RFC 6120 §4.9.3.14): the operator wants this session gone.
    await alice.shows_login_error("flooding the lobby")
    await expect(alice.page.locator("#connection-status")).to_be_hidden()


@needs_chromium
async def test_a_password_changed_while_away_ends_at_the_login_form(
    own_server: ServerProcess, browser: Browser
) -> None:
    alice = await ChatPage.open(browser, own_server)
    await alice.login("alice@localhost", "alicepw")
    await asyncio.to_thread(own_server.stop)
    await alice.shows_reconnecting()
    changed = await asyncio.to_thread(own_server.cli, "passwd", "alice@localhost", "--password", "newpw")
    assert changed.returncode == 0, changed.stderr  # straight into the store: the server is down
    await asyncio.to_thread(own_server.start)
    await alice.shows_login_error("password was not accepted", timeout=RECONNECT_TIMEOUT_MS)
    await alice.login("alice@localhost", "newpw")  # the form works with the new one


@needs_chromium
@pytest.mark.skipif(not os.environ.get("XMLCHAT_SCREENSHOTS"), reason="XMLCHAT_SCREENSHOTS=DIR writes them")
async def test_screenshots(wserver: ServerProcess, browser: Browser) -> None:
    out = Path(os.environ["XMLCHAT_SCREENSHOTS"])
    out.mkdir(parents=True, exist_ok=True)
    alice = await ChatPage.open(browser, wserver)
    await alice.page.screenshot(path=out / "login.png")
    await alice.login("alice@localhost", "alicepw")
    bob = await connect(wserver, "bob")
    try:
        await alice.add_contact("bob@localhost")
        bob.send_presence("subscribed", to="alice@localhost")
        await alice.sees_presence("bob@localhost", "available")
        bob.client.send_message(mto="alice@localhost", mbody="Lunch at noon?", mtype="chat")
        await alice.chat_with("bob@localhost")
        await alice.sees_message("Lunch at noon?")
        await alice.join_room("lobby")
        await alice.chat_with("bob@localhost")
        await alice.send("Yes, see you there.")
        await alice.page.screenshot(path=out / "desktop.png")
        phone = await ChatPage.open(browser, wserver, viewport=PHONE)
        await phone.login("alice@localhost", "alicepw")
        await phone.page.screenshot(path=out / "phone-contacts.png")
        await phone.chat_with("bob@localhost")
        bob.client.send_message(mto="alice@localhost", mbody="On my phone too.", mtype="chat")
        await phone.sees_message("On my phone too.")
        await phone.page.screenshot(path=out / "phone-chat.png")
    finally:
        await bob.close()
