"""Protocol drivers: how the load generator logs in and exchanges messages.

A driver turns an :class:`Endpoint` and an account into a logged-in
:class:`Session`. The scenarios only use this interface, so adding xmlchat's
native protocol means adding a module here and one line to :data:`DRIVERS`.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.accounts import Account

# (sender address, body text, message type or None)
MessageCallback = Callable[[str, str, "str | None"], None]


class LoginError(Exception):
    """The server refused or broke off the login; the message says where."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    domain: str


class Session(ABC):
    """One logged-in connection."""

    # What another session puts in 'to' to reach this one (a full JID for XMPP).
    address: str
    # Called for every chat message that arrives; set by the scenario.
    on_message: MessageCallback | None = None

    @abstractmethod
    def send_message(self, to: str, body: str) -> None:
        """Queue one chat message (``body`` is plain text without markup characters)."""

    def send_messages(self, items: list[tuple[str, str]]) -> None:
        """Queue several messages at once; drivers may do this in one write."""
        for to, body in items:
            self.send_message(to, body)

    async def join_room(self, room: str, nick: str, timeout: float) -> None:
        """Enter the XEP-0045 room ``room`` as ``nick`` with no history; return
        once the room sent our own presence (the room fan-out scenario)."""
        raise NotImplementedError(f"{type(self).__name__} does not join rooms")

    def send_groupchat(self, room: str, body: str) -> None:
        """Queue one groupchat message to a room we are in."""
        raise NotImplementedError(f"{type(self).__name__} does not join rooms")

    @abstractmethod
    def close(self) -> None:
        """End the session politely and close the connection (does not wait)."""

    @property
    @abstractmethod
    def is_open(self) -> bool: ...

    @property
    @abstractmethod
    def errors(self) -> int:
        """Error stanzas received (bounces and the like)."""


class Driver(ABC):
    name: str

    @abstractmethod
    async def login(
        self, endpoint: Endpoint, account: Account, resource: str, timeout: float
    ) -> Session:
        """Connect, authenticate, and become ready to send and receive messages."""


# name -> "module:Class"; imported on first use.
DRIVERS: dict[str, str] = {
    "xmpp": "benchmarks.drivers.xmpp:XmppDriver",
    "native": "benchmarks.drivers.native:NativeDriver",
    "xmpp-sm": "benchmarks.drivers.xmpp_sm:XmppSmDriver",
}


def get_driver(name: str) -> Driver:
    try:
        target = DRIVERS[name]
    except KeyError:
        raise ValueError(f"no protocol driver {name!r}; known: {', '.join(DRIVERS)}") from None
    module_name, cls_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise NotImplementedError(f"protocol driver {name!r} is not written yet ({e})") from e
    driver = getattr(module, cls_name)()
    assert isinstance(driver, Driver)
    return driver
