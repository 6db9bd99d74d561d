"""A stand-in server and session for module unit tests: only what modules read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar, cast

from lxml import etree

from xmlchat.config import Config
from xmlchat.jid import JID
from xmlchat.modules.base import Module, Registry
from xmlchat.server.session import Session
from xmlchat.stanza import make

if TYPE_CHECKING:
    from xmlchat.server.app import Server

M = TypeVar("M", bound=Module)


@dataclass
class FakeServer:
    config: Config = field(default_factory=Config)
    registry: Registry = field(default_factory=Registry)

    def load(self, factory: Callable[[Server], M]) -> M:
        """Build a module against this fake and register what it declares."""
        module = factory(cast("Server", self))
        self.registry.add(module.name, module.setup())
        return module


@dataclass
class _Session:
    jid: JID = field(default_factory=lambda: JID("alice", "localhost", "laptop"))
    protocol: str = "xmpp"


def session() -> Session:
    return cast(Session, _Session())


def iq_get(payload: str, to: str | None = "localhost", **attrib: str) -> etree._Element:
    """``<iq type='get'>`` with one empty payload ``{ns}name``, as the dispatcher passes it."""
    iq = make("iq", {"type": "get", "id": "q1", "from": "alice@localhost/laptop"})
    if to is not None:
        iq.set("to", to)
    etree.SubElement(iq, payload, attrib)
    return iq
