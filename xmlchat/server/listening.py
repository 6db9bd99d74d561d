"""The listening sockets: which the configuration enables, how each is
printed at start-up, and the plaintext listener's loopback rule."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from xmlchat.config import Config, Listener


@dataclass(frozen=True, slots=True)
class Bound:
    """A listening socket, as printed at start-up."""

    name: str
    protocol: str
    address: str
    port: int
    tls: str

    def __str__(self) -> str:
        return f"listening: {self.protocol} {self.address} port {self.port} tls={self.tls} ({self.name})"


def configured_listeners(config: Config) -> dict[str, Listener]:
    return {name: getattr(config.listeners, name) for name in config.listeners.__dataclass_fields__}


def check_plaintext_address(listener: Listener, allowed: bool) -> None:
    try:
        loopback = ipaddress.ip_address(listener.address).is_loopback
    except ValueError:
        loopback = listener.address == "localhost"
    if not loopback and not allowed:
        raise ValueError(
            f"the plaintext native listener may only bind loopback ({listener.address} given); "
            "set native.allow_plaintext_on_network = true to override"
        )
