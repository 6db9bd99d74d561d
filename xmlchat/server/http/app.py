"""The HTTP listener (aiohttp): WebSockets, BOSH and XEP-0156 host-meta.

=========================  ==================================================
``/xmpp-websocket``        XMPP over WebSocket, RFC 7395 (subprotocol ``xmpp``)
``/native-websocket``      the native protocol over WebSocket
``/http-bind``             BOSH, XEP-0124/XEP-0206
``/.well-known/host-meta`` XEP-0156 discovery (XRD, and ``host-meta.json``)
``/`` and ``/web/``        the web chat page (``page.py``)
=========================  ==================================================

A WebSocket or BOSH session is a :class:`~xmlchat.server.connection.Connection`
like a TCP one, with the same front ends and modules; only its
:class:`~xmlchat.server.transport.Transport` differs. One application serves
both listeners; a request's own TLS (or ``http.consider_secure``) decides
whether its session counts as encrypted.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from xmlchat.config import Config
from xmlchat.server.connection import Connection, ConnectionContext
from xmlchat.server.http import host_meta, page
from xmlchat.server.http.bosh import BoshEndpoint
from xmlchat.server.http.websocket import NATIVE_SUBPROTOCOL, XMPP_SUBPROTOCOL, WebSocketTransport
from xmlchat.server.native import NativeConnection
from xmlchat.server.peers import PeerLimit
from xmlchat.server.xmpp import XmppConnection

log = logging.getLogger(__name__)

# A WebSocket frame may exceed the stanza limit by this much and still get
# the protocol's own answer (policy-violation, stanza-too-big) from the
# parser; beyond it the WebSocket layer refuses it (close 1009).
FRAME_HEADROOM: Final = 64 * 1024

Serve = Callable[[Connection[Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class HttpSide:
    """What the HTTP listener is given by the composition root."""

    config: Config  # as started: the listeners
    plain: ConnectionContext  # for requests over plain HTTP; its config follows reloads
    secure: ConnectionContext  # for requests over TLS (channel binding, …)
    serve: Serve  # runs a connection among the server's others (sweeper, shutdown)
    peers: PeerLimit


class HttpFrontEnd:
    def __init__(self, side: HttpSide) -> None:
        self.side = side
        self.bosh = BoshEndpoint(side, self.context, self.encrypted)
        self.app = web.Application(client_max_size=side.config.http.max_body_bytes, middlewares=[self._cors])
        self.app.router.add_get("/xmpp-websocket", self._xmpp_websocket)
        self.app.router.add_get("/native-websocket", self._native_websocket)
        self.app.router.add_route("POST", "/http-bind", self.bosh.handle)
        self.app.router.add_route("OPTIONS", "/http-bind", self._preflight)
        self.app.router.add_get("/.well-known/host-meta", lambda r: self._host_meta(r, host_meta.xrd))
        self.app.router.add_get("/.well-known/host-meta.json", lambda r: self._host_meta(r, host_meta.jrd))
        page.add_routes(self.app)
        self.runner: web.AppRunner | None = None
        self._sites: list[web.TCPSite] = []

    async def start(self) -> None:
        http = self.config.http
        self.runner = web.AppRunner(
            self.app,
            handle_signals=False,
            access_log=None,
            max_line_size=http.max_header_bytes,
            max_field_size=http.max_header_bytes,
            shutdown_timeout=1.0,
        )
        await self.runner.setup()

    async def listen(self, address: str, port: int, tls: ssl.SSLContext | None) -> list[tuple[str, int]]:
        assert self.runner is not None
        site = web.TCPSite(self.runner, address, port, ssl_context=tls)
        before = set(self.runner.addresses)
        await site.start()
        self._sites.append(site)
        return [tuple(a[:2]) for a in self.runner.addresses if a not in before]

    async def close_listeners(self) -> None:
        """Accept nothing more; the sessions open are closed with the others."""
        for site in self._sites:
            await site.stop()

    async def stop(self) -> None:
        await self.bosh.stop()
        if self.runner is not None:
            await self.runner.cleanup()

    @property
    def config(self) -> Config:
        """The settings as of now: a reload changes the limits."""
        return self.side.plain.config

    # ---- what each request gets

    def encrypted(self, request: web.Request) -> bool:
        return request.secure or self.config.http.consider_secure

    def context(self, request: web.Request) -> ConnectionContext:
        return self.side.secure if request.secure else self.side.plain

    def refusal(self, request: web.Request) -> web.Response | None:
        """Why an XMPP session may not start here, as a response; None if it may."""
        if self.config.xmpp.require_encryption and not self.encrypted(request):
            # As on TCP: no login without TLS. Prosody answers the same way.
            return web.Response(status=403, text="encryption required: use https, see http.consider_secure")
        return None

    # ---- WebSockets

    async def _xmpp_websocket(self, request: web.Request) -> web.StreamResponse:
        refused = self.refusal(request)
        if refused is not None:
            return refused
        return await self._websocket(request, XMPP_SUBPROTOCOL, XmppConnection)

    async def _native_websocket(self, request: web.Request) -> web.StreamResponse:
        # As the plaintext native listener: passwords in clear only on loopback,
        # unless native.allow_plaintext_on_network says otherwise.
        on_network = self.config.native.allow_plaintext_on_network
        if not (self.encrypted(request) or _loopback(request.remote) or on_network):
            return web.Response(status=403, text="the native protocol over plain HTTP is for loopback only")
        return await self._websocket(request, NATIVE_SUBPROTOCOL, NativeConnection)

    async def _websocket(
        self, request: web.Request, subprotocol: str, factory: Callable[..., Connection[Any]]
    ) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and not _allowed(origin, self.config.http.websocket_origins):
            return web.Response(status=403, text="origin not allowed")
        limits = self.config.limits
        ws = web.WebSocketResponse(
            protocols=(subprotocol,),
            compress=False,  # compression beside secrets invites CRIME-style attacks
            max_msg_size=limits.max_stanza_bytes + FRAME_HEADROOM,
            autoping=True,
        )
        ready = ws.can_prepare(request)
        if not ready.ok:
            return web.Response(status=400, text="a WebSocket upgrade is expected here")
        if ready.protocol != subprotocol:
            # RFC 7395 §3.1: the 'xmpp' subprotocol is required.
            return web.Response(status=400, text=f"the '{subprotocol}' WebSocket subprotocol is required")
        address = request.remote or "?"
        if not self.side.peers.admit(address):
            return web.Response(status=503, text="too many connections from this address")
        try:
            await ws.prepare(request)
            transport = WebSocketTransport(ws, request, self.encrypted(request))
            await self.side.serve(factory(self.context(request), transport))
            await transport.finished()
        finally:
            self.side.peers.release(address)
        return ws

    # ---- host-meta and CORS

    async def _host_meta(
        self, request: web.Request, render: Callable[[Config, web.Request], web.Response]
    ) -> web.Response:
        return render(self.config, request)

    async def _preflight(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    @web.middleware
    async def _cors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)
        origin = request.headers.get("Origin")
        if origin is not None and not response.prepared and _allowed(origin, self.config.http.cors_origins):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
            response.headers["Access-Control-Max-Age"] = "86400"
            response.headers["Vary"] = "Origin"
        return response


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _allowed(origin: str, allowed: tuple[str, ...]) -> bool:
    return "*" in allowed or origin.rstrip("/") in {a.rstrip("/") for a in allowed}
