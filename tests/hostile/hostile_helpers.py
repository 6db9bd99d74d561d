"""Shared by the hostile-input and overload suite: servers with small limits,
and two bystanders who must keep chatting while someone attacks."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

from conftest import ServerProcess
from e2e.rawsock import RawPeer, native_login
from e2e.xmpp_client_helpers import started_server

# The suite's deadline for a bystander's message to arrive during an attack.
CHAT_DEADLINE = 2.0
_bodies = itertools.count()
# Passwords NAMEpw; bob and carol are the bystanders.
USERS = ("alice", "bob", "carol", "dave", "erin", "frank")


class Bystanders:
    """bob and carol, logged in on the plaintext native listener before the
    attack starts (so no limit on connections not logged in applies to them)."""

    def __init__(self, server: ServerProcess) -> None:
        port = server.ports["native_plain"]
        self.bob = native_login(port, "bob", "bobpw")
        self.carol = native_login(port, "carol", "carolpw")

    def still_chatting(self) -> float:
        """bob writes to carol; return how long it took to arrive (fails past the deadline)."""
        body = f"still-chatting-{next(_bodies)}"
        started = time.monotonic()
        self.bob.send(f"<message><to>carol</to><body>{body}</body></message>")
        got = self.carol.read_until(body, timeout=CHAT_DEADLINE)
        took = time.monotonic() - started
        assert body.encode() in got, f"carol did not get bob's message within {CHAT_DEADLINE} s"
        return took

    def close(self) -> None:
        self.bob.close()
        self.carol.close()


def server_with(tmp: Path, limits: str, extra: str = "") -> Iterator[ServerProcess]:
    """A module's server with these ``[limits]`` and the users of :data:`USERS`."""
    config = f"[limits]\n{limits}\n{extra}"
    yield from started_server(tmp, USERS, config)


def closed_within(peer: RawPeer, seconds: float) -> bool:
    """Did the server close ``peer`` within ``seconds``?"""
    peer.read_until_closed(timeout=seconds)
    return peer.closed


def log_waits_for(server: ServerProcess, text: str, timeout: float = 5.0) -> bool:
    """Has ``text`` appeared in the server's log within ``timeout`` seconds?"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in server.log():
            return True
        time.sleep(0.05)
    return text in server.log()
