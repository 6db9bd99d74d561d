"""The web chat page: static files from ``xmlchat/web/static`` at ``/`` and ``/web/``.

Hand-written ES modules, shipped as package data: nothing to build, nothing
fetched from elsewhere. The page talks XMPP over the WebSocket of the same
origin (``/xmpp-websocket``); ``docs/web-client.md`` walks through it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aiohttp import web

STATIC: Final = Path(__file__).resolve().parents[2] / "web" / "static"

# Scripts, styles and sockets from this origin only: nothing injected into a
# message can load code from elsewhere, and the page cannot be framed.
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidate, so an upgraded server serves its own page
}


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", _index)
    app.router.add_static("/web/", STATIC, show_index=False, follow_symlinks=False)
    app.on_response_prepare.append(_secure_static)


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)


async def _secure_static(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith("/web/"):
        response.headers.update(SECURITY_HEADERS)
