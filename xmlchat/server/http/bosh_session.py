"""One BOSH session (XEP-0124) as the transport of an XMPP connection.

Requests come in with ``rid`` s; their payloads reach the connection in rid
order, whatever order the HTTP requests arrive in (§14). Each request is held
until there is something to say, ``wait`` runs out, or a newer request
pushes it past ``hold``; its response is kept, so a client that lost one asks
again with the same rid and gets the same bytes (§14.3). What the connection
writes waits in :attr:`_out` until a request is there to carry it: that is
this transport's send buffer, so a client that stops polling is cut off at
``limits.max_send_buffer_bytes`` exactly as a TCP reader that stops reading.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

from lxml import etree

from xmlchat.protocol import bosh
from xmlchat.protocol.xmpp.framing import CLOSE_ELEMENT
from xmlchat.server.transport import Transport

_OPEN_PREFIX: Final = b"<open "  # MessageFraming.header's output, never a stanza
_STREAM_ERROR: Final = b"<stream:error"


class Terminated(Exception):
    """The session ended: answer with this terminal condition (XEP-0124 §17)."""

    def __init__(self, condition: str) -> None:
        super().__init__(condition)
        self.condition = condition


@dataclass(slots=True)
class Held:
    rid: int
    answer: asyncio.Future[bytes]
    timer: asyncio.TimerHandle | None = None


@dataclass(frozen=True, slots=True)
class Terms:
    """What the session creation settled (§7): the client's asks, capped by the server."""

    wait: float
    hold: int
    inactivity: float
    polling: float

    @property
    def requests(self) -> int:
        return self.hold + 1  # §7: one more than hold, so a client can always send


@dataclass(slots=True)
class _Order:
    """The rid bookkeeping (§14)."""

    next_rid: int
    early: dict[int, bosh.Request] = field(default_factory=dict)  # ahead of next_rid
    answered: OrderedDict[int, bytes] = field(default_factory=OrderedDict)
    waiting: dict[int, asyncio.Future[bytes]] = field(default_factory=dict)


class BoshSession(Transport):
    kind = "bosh"
    messages = True

    def __init__(
        self, sid: str, first_rid: int, terms: Terms, creation: dict[str, str], peer: str, encrypted: bool
    ) -> None:
        """``creation``: the attributes of the session creation response (§7)."""
        super().__init__(peer, encrypted)
        self.sid = sid
        self.terms = terms
        self._first_rid = first_rid
        self._creation = creation
        self.host = creation.get("from", "")
        self._order = _Order(next_rid=first_rid)
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._held: list[Held] = []
        self._out: list[bytes] = []
        self._out_size = 0
        self._taken = asyncio.Event()
        self._closing = False
        self._ended = False  # the terminate body has gone out: no more requests
        # Set once the session is over for the client too: the terminate body
        # went out, or it stopped asking. Until then its sid stays known, so the
        # last words (a stream error) reach it even after the stream ended.
        self.over = asyncio.Event()
        self._error = False
        self._in_flight = 0  # HTTP requests waiting for an answer
        self._last_empty = 0.0
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._idle_timer: asyncio.TimerHandle | None = None
        self._start_idle_timer()

    # ---- requests

    async def request(self, rid: int, body: bosh.Request, units: list[bytes]) -> bytes:
        """Take one request (units: what to feed the stream); return its response."""
        # §11: no more HTTP requests waiting at once than 'requests', counting
        # repeats of a rid (the rid window alone bounds only distinct rids).
        if self._in_flight >= self.terms.requests and not self._ended:
            raise self._terminated("policy-violation")
        self._in_flight += 1
        try:
            return await self._request(rid, body, units)
        finally:
            self._in_flight -= 1

    async def _request(self, rid: int, body: bosh.Request, units: list[bytes]) -> bytes:
        order = self._order
        if rid < order.next_rid or rid in order.early:
            return await self._again(rid)  # even the terminate body, once more
        if self._ended:
            raise Terminated("item-not-found")
        if rid >= order.next_rid + self.terms.requests:
            raise self._terminated("item-not-found")  # §14: beyond the window
        answer: asyncio.Future[bytes] = self._loop.create_future()
        order.waiting[rid] = answer
        order.early[rid] = bosh.Request(body.attrib, units)
        while order.next_rid in order.early:
            self._take(order.next_rid, order.early.pop(order.next_rid))
            order.next_rid += 1
        return await asyncio.shield(answer)

    async def _again(self, rid: int) -> bytes:
        """A rid seen before: the same answer (§14.3), or item-not-found if gone."""
        order = self._order
        if rid in order.answered:
            return order.answered[rid]
        if rid in order.waiting:
            return await asyncio.shield(order.waiting[rid])
        raise self._terminated("item-not-found")  # §14.3: too old to answer again

    def _take(self, rid: int, request: bosh.Request) -> None:
        """The request whose turn it is: feed its units, hold it."""
        now = self._loop.time()
        if request.payload:
            self._inbox.put_nowait(b"".join(request.payload))
        elif self.terms.hold == 0 and now - self._last_empty < self.terms.polling:
            self._finish("policy-violation")  # §12: polling too often
            return
        else:
            self._last_empty = now
        held = Held(rid, self._order.waiting[rid])
        held.timer = self._loop.call_later(self.terms.wait, self._answer, held)
        self._held.append(held)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        while len(self._held) > self.terms.hold or (self._held and (self._out or self._closing)):
            self._answer(self._held[0])

    # ---- answers

    def _answer(self, held: Held) -> None:
        if held in self._held:
            self._held.remove(held)
        if held.timer is not None:
            held.timer.cancel()
        if held.answer.done():
            return
        units, self._out, self._out_size = self._out, [], 0
        attrib = dict(self._creation) if held.rid == self._first_rid else {}
        if self._closing:
            attrib["type"] = "terminate"
            if self._error:
                attrib["condition"] = "remote-stream-error"
            self._ended = True
            self.over.set()
        data = bosh.response(attrib, units)
        order = self._order
        order.answered[held.rid] = data
        order.waiting.pop(held.rid, None)
        while len(order.answered) > self.terms.requests:
            order.answered.popitem(last=False)
        held.answer.set_result(data)
        self._taken.set()
        if not self._held and not self._ended:
            self._start_idle_timer()

    def _answer_all(self) -> None:
        for held in list(self._held):
            self._answer(held)

    def _start_idle_timer(self) -> None:
        # §7: no request held for 'inactivity' seconds ends the session.
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._idle_timer = self._loop.call_later(self.terms.inactivity, self._finish, "")

    def _terminated(self, condition: str) -> Terminated:
        self._finish(condition)
        return Terminated(condition)

    def _finish(self, condition: str) -> None:
        """End the session from this side (inactivity, a policy violation)."""
        self._closing = self._ended = True
        self.over.set()
        self._inbox.put_nowait(b"")
        for held in list(self._held):
            if not held.answer.done():
                held.answer.set_exception(Terminated(condition or "item-not-found"))
            self._held.remove(held)
        for future in self._order.waiting.values():
            if not future.done():
                future.set_exception(Terminated(condition or "item-not-found"))
        self._taken.set()

    # ---- Transport

    async def read(self) -> bytes:
        return await self._inbox.get()

    def write(self, units: list[bytes]) -> None:
        for unit in units:
            if unit.startswith(_OPEN_PREFIX):
                # XEP-0206 §3: the creation response says what <open/> would;
                # its stream id is the 'authid' (our own bytes, safe to parse).
                self._creation.setdefault("authid", str(etree.fromstring(unit).get("id", "")))
                continue
            if unit == CLOSE_ELEMENT:
                self._closing = True
                continue
            if unit.startswith(_STREAM_ERROR):
                self._error = True
            self._out.append(unit)
            self._out_size += len(unit)
        self._taken.clear()
        if self._held:
            self._answer(self._held[0])
        if self._closing:
            self._answer_all()

    def buffered(self) -> int:
        return self._out_size

    async def drain(self) -> None:
        while self._out and not self._ended:
            self._taken.clear()
            await self._taken.wait()
        if self._ended and self._out:
            raise ConnectionResetError("BOSH session ended")

    def is_closing(self) -> bool:
        return self._closing or self._ended

    def close(self) -> None:
        self._closing = True
        self._answer_all()
        self._inbox.put_nowait(b"")

    def keepalive(self) -> None:
        """Nothing to do: a held request answered empty at 'wait' is BOSH's sign of life."""

    def abort(self) -> None:
        self._out.clear()
        self._out_size = 0
        self._finish("")

