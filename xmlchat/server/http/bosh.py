"""BOSH at ``/http-bind`` (XEP-0124, XEP-0206): the session table and the request handler.

A session is created by a body without ``sid`` (§7); it runs an
:class:`~xmlchat.server.xmpp.XmppConnection` whose transport is the
:class:`~.bosh_session.BoshSession`, started with an ``<open/>`` made from
the body's ``to`` and ``xml:lang``. ``xmpp:restart`` (XEP-0206 §5) feeds
another ``<open/>``; ``type='terminate'`` feeds ``<close/>`` after the
payload. Session ids come from :mod:`secrets` (§7: unguessable).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from aiohttp import web
from lxml import etree

from xmlchat.config import Config
from xmlchat.protocol import bosh
from xmlchat.protocol.xmpp.framing import CLOSE_ELEMENT, NS_FRAMING, OPEN
from xmlchat.server.connection import ConnectionContext
from xmlchat.server.http.bosh_session import BoshSession, Terminated, Terms
from xmlchat.server.xmpp import XmppConnection
from xmlchat.xml.stream import StreamLimits

if TYPE_CHECKING:
    from xmlchat.server.http.app import HttpSide

log = logging.getLogger(__name__)

CONTENT_TYPE: Final = "text/xml; charset=utf-8"
BOSH_VERSION: Final = "1.11"  # XEP-0124 §7 'ver'


class BoshEndpoint:
    def __init__(
        self,
        side: HttpSide,
        context: Callable[[web.Request], ConnectionContext],
        encrypted: Callable[[web.Request], bool],
    ) -> None:
        self.side = side
        self._context = context
        self._encrypted = encrypted
        self.sessions: dict[str, BoshSession] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def config(self) -> Config:
        return self.side.plain.config  # a reload changes the limits

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            limits = self.config.limits
            sizes = StreamLimits(limits.max_stanza_bytes, limits.max_depth)
            body = bosh.parse_request(await request.read(), sizes)
            sid = body.get("sid")
            rid = body.number("rid")
            if rid is None:
                raise bosh.BadRequest("'rid' is required")
            if sid is None:
                return await self._create(request, body, rid)
        except bosh.BadRequest as e:
            log.info("BOSH bad request: %s", e)
            return _terminate("bad-request", status=400)
        session = self.sessions.get(sid)
        if session is None:
            return _terminate("item-not-found")
        units = list(body.payload)
        if body.restart:
            units = [_open(body.get("to") or session.host, body.get(bosh.XML_LANG))]
        elif body.terminate:
            units.append(CLOSE_ELEMENT)
        try:
            answer = await session.request(rid, body, units)
        except Terminated as t:
            return _terminate(t.condition)
        return web.Response(body=answer, content_type="text/xml", charset="utf-8")

    async def _create(self, request: web.Request, body: bosh.Request, rid: int) -> web.StreamResponse:
        refused = self.side_refusal(request)
        if refused is not None:
            return refused
        http = self.config.http
        to = body.get("to")
        if not to:
            raise bosh.BadRequest("'to' is required to create a session")
        if len(self.sessions) >= http.bosh_max_sessions:
            return _terminate("policy-violation")  # too many sessions: try later
        address = request.remote or "?"
        if not self.side.peers.admit(address):
            return _terminate("policy-violation")
        wait = min(float(body.number("wait") or http.bosh_max_wait), http.bosh_max_wait)
        asked = body.number("hold")
        hold = min(1 if asked is None else asked, http.bosh_max_hold)
        terms = Terms(wait=wait, hold=hold, inactivity=http.bosh_inactivity, polling=http.bosh_polling)
        sid = secrets.token_urlsafe(24)
        creation = {
            "sid": sid,
            "wait": str(int(wait)),
            "requests": str(terms.requests),
            "hold": str(terms.hold),
            "inactivity": str(int(terms.inactivity)),
            "polling": str(int(terms.polling)),
            "ver": BOSH_VERSION,
            "from": to,
            bosh.VERSION: "1.0",
            f"{{{bosh.NS_XBOSH}}}restartlogic": "true",
        }
        peer = request.transport.get_extra_info("peername") if request.transport else None
        session = BoshSession(
            sid, rid, terms, creation, f"{address}:{peer[1] if peer else 0}", self._encrypted(request)
        )
        self.sessions[sid] = session
        connection = XmppConnection(self._context(request), session)

        async def serve() -> None:
            try:
                await self.side.serve(connection)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(session.over.wait(), terms.inactivity + terms.wait)
            finally:
                self.sessions.pop(sid, None)
                self.side.peers.release(address)

        task = asyncio.create_task(serve(), name=f"bosh-{sid[:6]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            answer = await session.request(rid, body, [_open(to, body.get(bosh.XML_LANG))])
        except Terminated as t:
            return _terminate(t.condition)
        return web.Response(body=answer, content_type="text/xml", charset="utf-8")

    def side_refusal(self, request: web.Request) -> web.Response | None:
        if self.config.xmpp.require_encryption and not self._encrypted(request):
            return web.Response(status=403, text="encryption required: use https, see http.consider_secure")
        return None

    async def stop(self) -> None:
        for session in list(self.sessions.values()):
            session.abort()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)


def _open(to: str, lang: str | None) -> bytes:
    """The ``<open/>`` a session creation or restart stands for (RFC 7395 framing)."""
    element = etree.Element(OPEN, nsmap={None: NS_FRAMING})
    element.set("to", to)
    element.set("version", "1.0")
    if lang:
        element.set(bosh.XML_LANG, lang)
    return etree.tostring(element)


def _terminate(condition: str, status: int = 200) -> web.Response:
    """A terminal binding condition (XEP-0124 §17): HTTP 200 and the condition in the body."""
    data = bosh.response({"type": "terminate", "condition": condition}, [])
    return web.Response(status=status, body=data, content_type="text/xml", charset="utf-8")
