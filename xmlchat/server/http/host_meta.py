"""XEP-0156 discovery: ``/.well-known/host-meta`` (XRD, RFC 6415) and ``host-meta.json``.

They name the BOSH and WebSocket endpoints of this server, so a web client
given only ``alice@example.org`` finds where to connect.
"""

from __future__ import annotations

import json
from typing import Final

from aiohttp import web

from xmlchat.config import Config

XRD_NS: Final = "http://docs.oasis-open.org/ns/xri/xrd-1.0"
REL_BOSH: Final = "urn:xmpp:alt-connections:xbosh"
REL_WEBSOCKET: Final = "urn:xmpp:alt-connections:websocket"


def _links(config: Config, request: web.Request) -> list[tuple[str, str]]:
    base = config.http.public_url.rstrip("/")
    if not base:
        secure = request.secure or config.http.consider_secure
        base = f"{'https' if secure else 'http'}://{request.host}"
    # ws: for http:, wss: for https: (RFC 6455 §3)
    ws_base = "ws" + base.removeprefix("http")
    return [(REL_BOSH, f"{base}/http-bind"), (REL_WEBSOCKET, f"{ws_base}/xmpp-websocket")]


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def xrd(config: Config, request: web.Request) -> web.Response:
    links = "".join(f'  <Link rel="{rel}" href="{_attr(href)}"/>\n' for rel, href in _links(config, request))
    body = f"<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='{XRD_NS}'>\n{links}</XRD>\n"
    return web.Response(text=body, content_type="application/xrd+xml")


def jrd(config: Config, request: web.Request) -> web.Response:
    links = [{"rel": rel, "href": href} for rel, href in _links(config, request)]
    return web.Response(text=json.dumps({"links": links}), content_type="application/json")
