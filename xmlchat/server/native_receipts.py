"""What a native receipts session has been sent and has confirmed
(docs/native-protocol.md, "Receipts"), and waiting for the confirmation.

The messages module deletes a page of stored messages once
``session.transport.drained()`` returns True; for a session that acknowledges,
:meth:`NativeConnection.drained` adds :meth:`Receipts.until_confirmed` to that, so a
page leaves the store only when the client has it, not when the kernel has it.
"""

from __future__ import annotations

import asyncio


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
