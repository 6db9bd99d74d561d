"""The operator's broadcast: ``xmlchat announce "text"`` (Prosody's mod_announce).

A ``<message type='headline'>`` from the server's domain goes to every bound
session, on both protocols (a native session shows it as a message from the
domain). With ``offline`` it is also stored for each account with no session,
and delivered at its next login: headlines are never stored by the routing
rules (RFC 6121 §8.5.2.2.1), so this module stores them itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from lxml import etree

from xmlchat.jid import JID
from xmlchat.routing.api import AdminCommand, AdminCommandError, Registration
from xmlchat.routing.context import ModuleContext
from xmlchat.stanza import make, new_id, to_bytes
from xmlchat.storage import AccountStore, OfflineQueueFull, OfflineStore

# Longer than anyone reads in a headline, well under every stanza limit.
MAX_ANNOUNCEMENT_CHARS = 4000


class AnnounceStore(OfflineStore, AccountStore, Protocol):
    """Who has an account, and the offline queues."""


class Announce:
    name = "announce"

    def __init__(self, ctx: ModuleContext[AnnounceStore]) -> None:
        self.ctx = ctx

    def setup(self) -> list[Registration]:
        return [AdminCommand("announce", self.announce)]

    async def announce(self, args: Mapping[str, Any]) -> dict[str, int]:
        """Arguments: ``text``; ``offline`` (store for accounts with no
        session); ``host`` (only that virtual host). Answers how many sessions
        got it and how many accounts it was stored for."""
        text = str(args.get("text", "")).strip()
        if not text:
            raise AdminCommandError("nothing to announce: the text is empty")
        if len(text) > MAX_ANNOUNCEMENT_CHARS:
            raise AdminCommandError(f"announcement longer than {MAX_ANNOUNCEMENT_CHARS} characters")
        host = args.get("host")
        if host is not None and host not in self.ctx.hosts:
            raise AdminCommandError(f"{host} is not one of the hosts ({', '.join(sorted(self.ctx.hosts))})")
        stamp = datetime.now(UTC)
        sent = 0
        online: set[JID] = set()
        for session in self.ctx.sessions.all_sessions():
            if host is not None and session.jid.domain != host:
                continue
            online.add(session.bare)
            if self.ctx.deliver(session, _headline(session.jid, text), stamp):
                sent += 1
        stored = full = 0
        if args.get("offline"):
            stored, full = await self._store(text, stamp, online, host)
        self.ctx.log.info("announcement sent to %d session(s), stored for %d account(s)", sent, stored)
        return {"sessions": sent, "stored": stored, "queue_full": full}

    async def _store(self, text: str, stamp: datetime, online: set[JID], host: str | None) -> tuple[int, int]:
        stored = full = 0
        for user in await self.ctx.store.list_users(host):
            if user in online:
                continue
            try:
                await self.ctx.store.store_offline(
                    user, to_bytes(_headline(user, text)), stamp, self.ctx.limits.max_offline_messages
                )
                stored += 1
            except OfflineQueueFull:
                full += 1
        return stored, full


def _headline(to: JID, text: str) -> etree._Element:
    message = make("message", {"type": "headline", "from": to.domain, "to": str(to), "id": new_id()})
    message.append(make("body", text=text))
    return message
