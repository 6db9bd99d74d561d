"""JIDs and values the storage tests share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from xmlchat.jid import JID
from xmlchat.storage import Storage

ALICE = JID.parse("alice@example.com")
BOB = JID.parse("bob@example.com")
CAROL = JID.parse("carol@other.example")
PASSWORD = "correct horse battery staple"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

# The open_storage fixture: a fresh store of the test's backend with these SCRAM iterations.
OpenStorage = Callable[[int], Awaitable[Storage]]
