"""The web chat page (issue 13 item 4) in Debian's headless Chromium.

Two browsers subscribe to each other, see each other's presence and chat; a
browser chats with slixmpp over TCP and with the native client; a bad password
shows an error. With XMLCHAT_SCREENSHOTS=DIR set, the screenshot test writes
the page at desktop and phone width into DIR (``make screenshots``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from conftest import ServerProcess
from e2e.web_page import CHROMIUM, NO_CHROMIUM, PHONE, ChatPage, chromium
from e2e.xmpp_client_helpers import started_server
from e2e.xmpp_helpers import connect
from playwright.async_api import Browser, expect

from xmlchat.client.native import NativeClient

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
USERS = ("alice", "bob", "carol", "dave", "erin", "frank")


@pytest.fixture(scope="module")
def wserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from started_server(tmp_path_factory.mktemp("page"), USERS)


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
