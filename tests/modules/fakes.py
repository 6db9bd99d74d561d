"""Modules under test: a real hub and in-memory storage, no sockets.

:class:`Harness` loads modules as the server does (a context each, the
registrations wired by the hub); :class:`Recorder` is a session transport
that keeps what was delivered, so a test reads what each client would see.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from lxml import etree

from xmlchat.config import Config
from xmlchat.errors import StreamError
from xmlchat.jid import JID
from xmlchat.metrics import Metrics
from xmlchat.routing.api import Module
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.hub import Hub
from xmlchat.routing.session import NATIVE_CLIENT, XMPP_CLIENT, Session
from xmlchat.stanza import make
from xmlchat.storage import MemoryStorage

M = TypeVar("M", bound=Module)


class Recorder:
    """A session's transport that records instead of writing to a socket."""

    def __init__(self, protocol: str = "xmpp") -> None:
        self.protocol = protocol
        self.stanzas: list[etree._Element] = []
        self.closed: StreamError | None = None
        self.drains = 0  # how often a replay waited for the client to read
        self.queued = 0  # what backlog() reports: a test makes a slow reader with it
        self.acknowledges = False  # like a client without receipts or XEP-0198

    def write(self, stanza: etree._Element, stamp: datetime, delayed: bool) -> None:
        self.stanzas.append(stanza)

    def close(self, error: StreamError) -> None:
        self.closed = error

    @property
    def backlog(self) -> int:
        return self.queued

    async def drained(self) -> bool:
        self.drains += 1
        return self.closed is None

    def kinds(self) -> list[str]:
        return [str(s.tag).rpartition("}")[2] for s in self.stanzas]


class Harness:
    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()
        self.store = MemoryStorage()
        self.hub = Hub(self.config.hosts, self.store.user_exists)
        self.registry = self.hub.registry

    def context(self, name: str) -> ModuleContext[MemoryStorage]:
        config = self.config
        return ModuleContext(
            name, self.hub, self.store, hosts=config.hosts, limits=config.limits, metrics=Metrics()
        )

    def load(self, factory: Callable[[ModuleContext[MemoryStorage]], M]) -> M:
        """Build a module as the server does and register what it declares."""
        module = factory(self.context(getattr(factory, "name", "test")))
        self.hub.load(module)
        return module

    async def connect(self, jid: str, native: bool = False) -> tuple[Session, Recorder]:
        """A bound, routable session of ``jid`` (a full JID)."""
        recorder = Recorder("native" if native else "xmpp")
        session = Session(JID.parse(jid), NATIVE_CLIENT if native else XMPP_CLIENT, recorder)
        await self.hub.open_session(session)
        return session, recorder


def session(jid: str = "alice@localhost/laptop") -> Session:
    return Session(JID.parse(jid), XMPP_CLIENT, Recorder())


def iq_get(payload: str, to: str | None = "localhost", **attrib: str) -> etree._Element:
    """``<iq type='get'>`` with one empty payload ``{ns}name``, as the dispatcher passes it."""
    iq = make("iq", {"type": "get", "id": "q1", "from": "alice@localhost/laptop"})
    if to is not None:
        iq.set("to", to)
    etree.SubElement(iq, payload, attrib)
    return iq
