"""The web chat page from a test's side: Debian's Chromium driven by Playwright.

    async with chromium() as browser:
        alice = await ChatPage.open(browser, server)
        await alice.login("alice@localhost", "alicepw")
        await alice.chat_with("bob@localhost")
        await alice.send("hi")
        await alice.sees_message("hello", sender="them")

Every wait is Playwright's own (an event or a polled condition with a
deadline), never a sleep.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from conftest import ServerProcess
from playwright.async_api import Browser, Locator, Page, WebSocketRoute, async_playwright, expect

# Debian's package; Playwright's own browser downloads are never used.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NO_CHROMIUM = "no Chromium installed: apt-get install chromium (Debian), see the README"
TIMEOUT_MS = 15_000  # two cores shared with other test runs: generous, and still a deadline
# Back after a drop: a server restart, then retries 1, 2, 4, 8 … s apart (capped at 30 s).
RECONNECT_TIMEOUT_MS = 60_000
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    assert CHROMIUM is not None, NO_CHROMIUM
    async with async_playwright() as playwright:
        # --no-sandbox: the sandbox needs user namespaces a container may not grant.
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


class ChatPage:
    """One user's page, in its own browser context (its own storage and sockets)."""

    def __init__(self, page: Page) -> None:
        self.page = page

    @classmethod
    async def open(
        cls, browser: Browser, server: ServerProcess, viewport: dict[str, int] = DESKTOP, tls: bool = True
    ) -> ChatPage:
        # The https listener's certificate is the server's self-signed one.
        context = await browser.new_context(ignore_https_errors=True, viewport=viewport)  # type: ignore[arg-type]
        context.set_default_timeout(TIMEOUT_MS)
        page = await context.new_page()
        url = (
            f"https://localhost:{server.ports['https']}/"
            if tls
            else f"http://localhost:{server.ports['http']}/"
        )
        await page.goto(url)
        return cls(page)

    async def shows_login_error(self, text: str, timeout: int = TIMEOUT_MS) -> None:
        await expect(self.page.locator("#login-error")).to_contain_text(text, timeout=timeout)
        assert await self.page.locator("#main").is_hidden()

    async def login(self, address: str, password: str) -> None:
        await self.submit_login(address, password)
        await expect(self.page.locator("#main")).to_be_visible(timeout=TIMEOUT_MS)

    async def submit_login(self, address: str, password: str) -> None:
        await self.page.fill("#jid", address)
        await self.page.fill("#password", password)
        await self.page.click("#login-button")

    async def add_contact(self, jid: str) -> None:
        await self.page.fill("#add-jid", jid)
        await self.page.click("#add-contact button")
        await expect(self.contact(jid)).to_have_count(1, timeout=TIMEOUT_MS)

    async def accept_request(self, jid: str) -> None:
        request = self.page.locator("#requests li", has_text=jid)
        await request.get_by_role("button", name="Accept").click()
        await expect(request).to_have_count(0, timeout=TIMEOUT_MS)

    def contact(self, jid: str, presence: str | None = None) -> Locator:
        state = f"[data-presence='{presence}']" if presence else ""
        return self.page.locator(f"#roster li[data-jid='{jid}']{state}")

    async def sees_presence(self, jid: str, presence: str) -> None:
        await expect(self.contact(jid, presence)).to_have_count(1, timeout=TIMEOUT_MS)

    async def chat_with(self, jid: str) -> None:
        await self.contact(jid).click()
        await expect(self.page.locator("#chat-title")).to_have_text(jid, timeout=TIMEOUT_MS)

    async def join_room(self, name: str) -> None:
        await self.page.fill("#room-name", name)
        await self.page.click("#join-room button")
        room = self.page.locator(f"#rooms li[data-room^='{name}@'][data-joined='true']")
        await expect(room).to_have_count(1, timeout=TIMEOUT_MS)

    async def sees_occupants(self, text: str) -> None:
        await expect(self.page.locator("#occupants")).to_have_text(text, timeout=TIMEOUT_MS)

    async def send(self, text: str) -> None:
        await self.page.fill("#text", text)
        await self.page.press("#text", "Enter")
        await self.sees_message(text, sender="me")

    async def sees_message(self, text: str, sender: str = "them") -> None:
        message = self.page.locator(f"#messages li.message.{sender}", has_text=text)
        await expect(message).to_have_count(1, timeout=TIMEOUT_MS)

    async def shows_reconnecting(self) -> None:
        status = self.page.locator("#connection-status[data-state='reconnecting']")
        await expect(status).to_be_visible(timeout=TIMEOUT_MS)
        await expect(status).to_contain_text("Reconnecting")
        await expect(self.page.locator("#main")).to_be_visible()  # the chat stays on screen

    async def is_back(self) -> None:
        """Logged in again: the status is gone and the composer is back."""
        await expect(self.page.locator("#connection-status")).to_be_hidden(timeout=RECONNECT_TIMEOUT_MS)
        await expect(self.page.locator("#main")).to_be_visible()
        await expect(self.page.locator("#text")).to_be_enabled()

    async def close(self) -> None:
        await self.page.context.close()


class WebSocketGate:
    """Lets the page's WebSockets through to the server, or refuses them while
    shut (the page then sees a connection that closes at once, as when the
    server is down), so a test decides when a reconnecting page can get back.

        gate = await WebSocketGate.install(alice)
        gate.shut()   # every attempt fails until gate.open()
    """

    def __init__(self) -> None:
        self.is_open = True
        self.refused = 0  # attempts refused while shut

    @classmethod
    async def install(cls, chat: ChatPage) -> WebSocketGate:
        gate = cls()
        await chat.page.route_web_socket("**/xmpp-websocket", gate._route)
        return gate

    def shut(self) -> None:
        self.is_open = False

    def open(self) -> None:
        self.is_open = True

    async def _route(self, ws: WebSocketRoute) -> None:
        if self.is_open:
            ws.connect_to_server()  # unhandled messages flow both ways untouched
        else:
            self.refused += 1
            await ws.close(code=1011, reason="the test's gate is shut")
