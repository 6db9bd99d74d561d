"""A byte-counting TCP proxy for loopback measurements.

Every byte a client and a server exchange passes through here unchanged: TLS
records, XML, whitespace. Each accepted connection is a :class:`Flow` that
counts the bytes of each direction and logs every chunk with its time, so a
scenario can cut the log at a mark ("the client is ready") and count round
trips in it.

**Round trips.** On loopback a reply arrives within microseconds, so the order
of chunks cannot tell a client that *waited* for an answer from one that just
wrote twice (TLS 1.3: the server's session ticket can slip in between the
client's Finished and its first application data). With ``delay`` set, the
proxy holds each server-to-client chunk that long before passing it on: data
the client wrote without waiting reaches the proxy well before the held
answer is delivered, data it wrote *because of* the answer comes after.
:func:`round_trips` then counts client flights that were answered. TCP's own
handshake (SYN, SYN-ACK) happens before the proxy sees a byte and is not
counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

Direction = Literal["up", "down"]  # up: client to server; down: server to client

READ_SIZE: Final = 65536
SLOW_READ_SIZE: Final = 4096  # a slow link passes small chunks


@dataclass(frozen=True, slots=True)
class Chunk:
    """One read on one side: ``time`` is when it reached the proxy (up) or was
    handed to the client (down), on the :func:`time.perf_counter` clock."""

    time: float
    direction: Direction
    size: int
    data: bytes = b""  # only when the proxy records


@dataclass
class Flow:
    """One proxied TCP connection."""

    opened: float
    up: int = 0
    down: int = 0
    chunks: list[Chunk] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    def bytes_until(self, mark: float) -> tuple[int, int]:
        """(up, down) bytes logged at or before ``mark``."""
        up = sum(c.size for c in self.chunks if c.time <= mark and c.direction == "up")
        down = sum(c.size for c in self.chunks if c.time <= mark and c.direction == "down")
        return up, down

    def round_trips_until(self, mark: float) -> int:
        return round_trips(c for c in self.chunks if c.time <= mark)

    def abort(self) -> None:
        """Drop the connection on both sides at once, as a dead network would."""
        for writer in self._writers:
            transport = writer.transport
            transport.abort()


def round_trips(chunks: Iterable[Chunk]) -> int:
    """Client flights answered by the server: runs of ``up`` chunks each
    followed by a run of ``down`` chunks, in time order."""
    count = 0
    previous: Direction | None = None
    for chunk in sorted(chunks, key=lambda c: c.time):
        if chunk.direction == "down" and previous == "up":
            count += 1
        previous = chunk.direction
    return count


class CountingProxy:
    """Listens on ``127.0.0.1`` (a free port) and forwards to ``target``."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        delay: float = 0.0,
        record: bool = False,
        down_rate: float = 0.0,
    ) -> None:
        self.target_host, self.target_port = target_host, target_port
        self.delay, self.record = delay, record
        # Bytes per second passed from server to client (0: as fast as they come):
        # a slow link, for a client that reads slowly.
        self.down_rate = down_rate
        self.flows: list[Flow] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._new_flow = asyncio.Condition()

    async def __aenter__(self) -> CountingProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for flow in self.flows:
            flow.abort()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    async def flow(self, index: int, timeout: float = 10.0) -> Flow:
        """The ``index``-th connection (0 is the first), waiting for it to open."""

        async def wait() -> Flow:
            async with self._new_flow:
                await self._new_flow.wait_for(lambda: len(self.flows) > index)
            return self.flows[index]

        return await asyncio.wait_for(wait(), timeout)

    @property
    def up(self) -> int:
        return sum(f.up for f in self.flows)

    @property
    def down(self) -> int:
        return sum(f.down for f in self.flows)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        flow = Flow(opened=time.perf_counter())
        try:
            server_r, server_w = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            client_w.transport.abort()
            return
        flow._writers = [client_w, server_w]
        async with self._new_flow:
            self.flows.append(flow)
            self._new_flow.notify_all()
        pumps = [
            self._spawn(self._pump(client_r, server_w, flow, "up", 0.0)),
            self._spawn(self._pump(server_r, client_w, flow, "down", self.delay)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # One side ended: let the other drain briefly, then close both.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait(pumps, timeout=1.0)
            for task in pumps:
                task.cancel()
            for writer in (client_w, server_w):
                writer.transport.abort()
            flow.closed.set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        flow: Flow,
        direction: Direction,
        delay: float,
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] | None = asyncio.Queue() if delay else None
        releaser = self._spawn(self._release(queue, writer, flow, direction)) if queue else None
        rate = self.down_rate if direction == "down" else 0.0
        size = SLOW_READ_SIZE if rate else READ_SIZE
        try:
            while True:
                try:
                    data = await reader.read(size)
                except (ConnectionError, OSError):
                    data = b""
                if not data:
                    break
                if queue is not None:
                    queue.put_nowait((time.perf_counter() + delay, data))
                    continue
                self._count(flow, direction, data)
                writer.write(data)
                await writer.drain()
                if rate:
                    await asyncio.sleep(len(data) / rate)  # the slow link itself
            if queue is not None:
                queue.put_nowait((0.0, b""))
                assert releaser is not None
                await releaser
            elif writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass

    async def _release(
        self,
        queue: asyncio.Queue[tuple[float, bytes]] | None,
        writer: asyncio.StreamWriter,
        flow: Flow,
        direction: Direction,
    ) -> None:
        assert queue is not None
        while True:
            due, data = await queue.get()
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            self._count(flow, direction, data)
            writer.write(data)
            await writer.drain()

    def _count(self, flow: Flow, direction: Direction, data: bytes) -> None:
        if direction == "up":
            flow.up += len(data)
        else:
            flow.down += len(data)
        flow.chunks.append(Chunk(time.perf_counter(), direction, len(data), data if self.record else b""))
