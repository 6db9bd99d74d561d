"""Raw asyncio peers for tests that run the real server in this process (to
look inside it: its connections, its transport's writes) on loopback ports.

``rawsock.RawPeer`` blocks, so it serves tests whose server is another
process; here the server shares the test's event loop, so the peers are
asyncio streams. They are the instruction-count benchmark's own
(``benchmarks/instructions.py``): one piece for both.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for benchmarks/

from benchmarks.instructions import Peer, native_login, plaintext_server, until, xmpp_login


async def xmpp_sm_login(port: int, user: str) -> Peer:
    return await xmpp_login(port, user, sm=True)


LOGINS = {"native": native_login, "xmpp": xmpp_login, "xmpp-sm": xmpp_sm_login}

__all__ = ["LOGINS", "Peer", "plaintext_server", "until", "xmpp_login"]
