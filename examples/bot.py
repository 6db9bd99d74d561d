"""An auto-reply bot on the native client library.

    python examples/bot.py bot@localhost --password botpw --port 5291 --plain

Replies "echo: <text>" to anything, except the canned answers below (as in the
classic socket tutorials, where "1" gets "你猜!"). It reconnects by itself if
the server goes away, because NativeClient does.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl

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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("jid")
    parser.add_argument("--password", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5290)
    parser.add_argument("--plain", action="store_true", help="no TLS (plaintext listener)")
    parser.add_argument("--cafile", help="trust this certificate (the server's cert.pem)")
    args = parser.parse_args()
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
