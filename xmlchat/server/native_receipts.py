"""What a native receipts session has been sent and has confirmed
(docs/native-protocol.md, "Receipts"), and waiting for the confirmation.

The messages module deletes a page of stored messages once
``session.transport.drained()`` returns True; for a session that acknowledges,
:meth:`NativeConnection.drained` adds :meth:`Receipts.until_confirmed` to that, so a
page leaves the store only when the client has it, not when the kernel has it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac

from xmlchat.jid import JID, InvalidJID


class Receipts:
    """The ``<seq>`` numbering of one connection and the client's ``<received>``."""

    def __init__(self) -> None:
        self.sent = 0  # the last <seq> written
        self.confirmed = 0  # the highest <seq> the client acknowledged
        self._gone = False
        # Set (and replaced) at each change; waiters look again when it fires.
        self._changed = asyncio.Event()

    def next_seq(self) -> int:
        self.sent += 1
        return self.sent

    def received(self, seq: int) -> None:
        """The client has every message up to ``seq`` (the core checked it was sent).
        Cumulative, so an older number than one seen before changes nothing."""
        if seq > self.confirmed:
            self.confirmed = seq
            self._wake()

    def gone(self) -> None:
        """The connection ended: nobody will confirm anything now."""
        self._gone = True
        self._wake()

    async def until_confirmed(self, seq: int) -> bool:
        """Wait until the client has confirmed ``seq``; False if the connection
        ends first. No polling: each ``<received>`` wakes the waiters."""
        while self.confirmed < seq:
            if self._gone:
                return False
            await self._changed.wait()
        return True

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


# ---- resume tokens (docs/native-protocol.md, "Receipts")
#
# A receipts session's <login-ok> carries a token naming its resource, signed
# with the server's secret. A client that logs in again with it gets the same
# resource: a session the server still holds for it (its connection not yet
# seen to be dead) is replaced (RFC 6120 §7.7.2.2), so the new one gets, from
# the store, everything the old one had not confirmed. Nothing is kept per
# token: a token from before a restart, or forged, is ignored.


def resume_token(secret: bytes, jid: JID) -> str:
    return f"{jid.resource}~{_signature(secret, jid)}"


def resume_resource(secret: bytes, user: JID, token: str | None) -> str | None:
    """The resource ``token`` names if it is ``user``'s and ours, else None."""
    if not token or "~" not in token:
        return None
    resource, _, signature = token.rpartition("~")
    try:
        jid = user.with_resource(resource)
    except InvalidJID:
        return None
    return resource if hmac.compare_digest(signature, _signature(secret, jid)) else None


def _signature(secret: bytes, jid: JID) -> str:
    return hmac.new(secret, str(jid).encode(), hashlib.sha256).hexdigest()[:32]
