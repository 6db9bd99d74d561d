"""What a feature module declares, and the registry the core builds from it.

A module is one protocol feature in one file (as Prosody's ``mod_*.lua``).
It returns its registrations from ``setup()`` (as ejabberd's ``start/2``), and
the core wires them, so a module never registers or unregisters by hand.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from lxml import etree

from xmlchat.server.session import Session

if TYPE_CHECKING:
    from xmlchat.server.app import Server

IqType = Literal["get", "set"]
IqHandlerFn = Callable[[Session, etree._Element], Awaitable[etree._Element | None]]
SessionHookFn = Callable[[Session], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class IqHandler:
    """Handles ``<iq type=TYPE>`` whose payload is the element ``payload``
    (Clark notation, e.g. ``{urn:xmpp:ping}ping``) addressed to the server or to
    the sender's own bare JID. Returns the result payload (or None for an empty
    result); raises :class:`~xmlchat.errors.StanzaError` to answer with an error.

    ``accounts``: also answer iqs to *another* existing local account's bare
    JID, on its behalf (RFC 6121 §8.5.2.1.3), e.g. disco#info; the handler
    tells them apart by the iq's 'to'. Others get service-unavailable."""

    type: IqType
    payload: str
    handle: IqHandlerFn
    accounts: bool = False


@dataclass(frozen=True, slots=True)
class Feature:
    """A XEP-0030 disco#info feature the server advertises."""

    var: str


@dataclass(frozen=True, slots=True)
class StreamFeature:
    """An empty element advertised in post-authentication stream features,
    e.g. roster versioning ``("urn:xmpp:features:rosterver", "ver")``."""

    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class OnSessionStarted:
    """Called when a session is bound and routable (RFC 6120 §7)."""

    handle: SessionHookFn
    priority: int = 0


@dataclass(frozen=True, slots=True)
class OnSessionEnded:
    """Called once when a routable session goes away, cleanly or not."""

    handle: SessionHookFn
    priority: int = 0


Registration = IqHandler | Feature | StreamFeature | OnSessionStarted | OnSessionEnded


class Module(Protocol):
    name: str

    def setup(self) -> list[Registration]: ...


ModuleFactory = Callable[["Server"], Module]


@dataclass
class Registry:
    iq_handlers: dict[tuple[str, str], IqHandlerFn] = field(default_factory=dict)
    account_iqs: set[tuple[str, str]] = field(default_factory=set)  # IqHandler.accounts
    features: list[str] = field(default_factory=list)
    stream_features: list[tuple[str, str]] = field(default_factory=list)
    session_started: list[tuple[int, SessionHookFn]] = field(default_factory=list)
    session_ended: list[tuple[int, SessionHookFn]] = field(default_factory=list)
    _owners: dict[str, list[Registration]] = field(default_factory=lambda: defaultdict(list))

    def add(self, owner: str, registrations: list[Registration]) -> None:
        for reg in registrations:
            match reg:
                case IqHandler(type_, payload, handle, accounts):
                    key = (type_, payload)
                    if key in self.iq_handlers:
                        raise ValueError(f"{owner}: iq {type_} {payload} already handled")
                    self.iq_handlers[key] = handle
                    if accounts:
                        self.account_iqs.add(key)
                case Feature(var):
                    self.features.append(var)
                case StreamFeature(namespace, name):
                    self.stream_features.append((namespace, name))
                case OnSessionStarted(handle, priority):
                    self.session_started.append((priority, handle))
                    self.session_started.sort(key=lambda p: -p[0])
                case OnSessionEnded(handle, priority):
                    self.session_ended.append((priority, handle))
                    self.session_ended.sort(key=lambda p: -p[0])
            self._owners[owner].append(reg)
