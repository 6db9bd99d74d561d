"""An auto-reply bot on the native client library, or as an XEP-0114 component.

    python examples/bot.py bot@localhost --password botpw --port 5291 --plain
    python examples/bot.py echo.localhost --component --password s3cret --port 5347

Replies "echo: <text>" to anything, except the canned answers below (as in the
classic socket tutorials, where "1" gets "你猜!"). As a user it reconnects by
itself if the server goes away, because NativeClient does. As a component
(slixmpp's ComponentXMPP) it answers whatever is sent to its domain or any
address at it (``echo.localhost``, ``anyone@echo.localhost``), from there.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
from typing import Any

import slixmpp

from xmlchat.client.native import NativeClient

CANNED = {"1": "你猜!", "2": "再猜!", "ping": "pong", "time": "it is always chat o'clock"}


def reply_to(text: str) -> str:
    return CANNED.get(text.strip(), f"echo: {text}")


async def run_bot(client: NativeClient, stop: asyncio.Event | None = None) -> None:
    """Answer every incoming message until ``stop`` is set."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        get = asyncio.ensure_future(client.incoming.get())
        halt = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({get, halt}, return_when=asyncio.FIRST_COMPLETED)
        if get not in done:
            get.cancel()
            break
        halt.cancel()
        message = get.result()
        await client.send(message.sender, reply_to(message.body))


class EchoComponent(slixmpp.ComponentXMPP):
    """The same replies, from a component's domain (XEP-0114)."""

    def __init__(self, domain: str, secret: str, host: str, port: int) -> None:
        super().__init__(domain, secret, host, port)  # type: ignore[no-untyped-call]
        self.register_plugin("xep_0199")  # answers the server's keepalive pings
        self.add_event_handler("message", self._reply)

    def _reply(self, message: Any) -> None:
        if message["type"] in ("chat", "normal") and message["body"]:
            reply = reply_to(message["body"])
            self.send_message(mto=message["from"], mfrom=message["to"], mbody=reply, mtype=message["type"])


async def run_component(domain: str, secret: str, host: str, port: int) -> EchoComponent:
    """Connect and finish the handshake; the component then answers by itself."""
    component = EchoComponent(domain, secret, host, port)
    ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def settle(failure: BaseException | None) -> None:
        if not ready.done():
            ready.set_exception(failure) if failure else ready.set_result(None)

    component.add_event_handler("session_start", lambda _: settle(None))
    component.add_event_handler("disconnected", lambda _: settle(ConnectionError("handshake refused")))
    component.connect(host, port)
    await ready
    return component


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("jid")
    parser.add_argument("--password", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5290)
    parser.add_argument("--plain", action="store_true", help="no TLS (plaintext listener)")
    parser.add_argument("--cafile", help="trust this certificate (the server's cert.pem)")
    parser.add_argument("--component", action="store_true", help="jid is a component domain (XEP-0114)")
    args = parser.parse_args()
    if args.component:
        component = await run_component(args.jid, args.password, args.host, args.port)
        print(f"component online as {args.jid}", flush=True)
        await component.disconnected
        return
    context = None if args.plain else ssl.create_default_context(cafile=args.cafile)
    client = NativeClient(args.jid, args.password, host=args.host, port=args.port, ssl=context)
    await client.start()
    print(f"bot online as {client.address}", flush=True)
    try:
        await run_bot(client)
    finally:
        await client.close()


if __name__ == "__main__":
    asyncio.run(main())
