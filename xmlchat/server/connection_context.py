"""What every connection of a listener shares (:class:`ConnectionContext`),
and what a sans-IO protocol core offers the connection that drives it
(:class:`ProtocolCore`)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from xmlchat.config import Config
from xmlchat.errors import StreamError
from xmlchat.metrics import Metrics
from xmlchat.routing.hub import Hub
from xmlchat.server.login_guard import LoginGuard
from xmlchat.server.resumption import Resumptions
from xmlchat.server.throttle import AddressBuckets
from xmlchat.storage import AccountStore

EventT = TypeVar("EventT")


@dataclass(slots=True)
class ConnectionContext:
    """What a front end needs: the hub for everything after login, the
    accounts for logging in, and the transport's settings.

    One per listener, shared by its connections. A reload (SIGHUP, ``xmlchat
    reload``) replaces ``config``, so every connection reads the new limits
    from then on, and reloads the certificate into ``tls_context`` itself."""

    config: Config
    hub: Hub
    accounts: AccountStore
    metrics: Metrics
    tls_context: ssl.SSLContext | None = None
    # RFC 5929 tls-server-end-point data for SCRAM-*-PLUS (the same for every connection).
    channel_binding: dict[str, bytes] | None = None
    # Keeps SCRAM's fake salts for unknown users stable across connections (RFC 5802 §5.1).
    scram_secret: bytes = b""
    # XEP-0198 §5: XMPP sessions a client may resume (None: resumption off).
    resumptions: Resumptions[Any] | None = None
    # Brute-force protection, and the per-IP rate buckets (docs/security.md).
    login_guard: LoginGuard | None = None
    addresses: AddressBuckets | None = None


class ProtocolCore(Protocol[EventT]):
    """What a sans-IO protocol core offers its transport (h11's shape)."""

    @property
    def closed(self) -> bool: ...

    def receive_data(self, data: bytes) -> list[EventT]: ...

    def frames_to_send(self) -> list[bytes]: ...

    def send_stream_error(self, error: StreamError) -> None: ...

    def rest(self, final: bool = False) -> bool: ...
