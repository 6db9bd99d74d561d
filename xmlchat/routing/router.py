"""The session registry: who is connected, under which full JIDs.

Routing *rules* (RFC 6121 §8.5: bare vs full JIDs, priorities, offline storage)
live in :mod:`xmlchat.modules.messages`; the router only finds sessions.
"""

from __future__ import annotations

from xmlchat.jid import JID
from xmlchat.routing.session import Session


class Router:
    def __init__(self) -> None:
        self._by_bare: dict[JID, dict[str, Session]] = {}
        # How many of each user's sessions are connected to this node (not
        # other nodes' proxies), kept with _by_bare: every message asks
        # (has_local_session) and a count is one lookup, not a walk.
        self._local_count: dict[JID, int] = {}

    def add(self, session: Session) -> Session | None:
        """Register ``session``; return the session it replaces (same full JID),
        which the caller must close with ``conflict`` (RFC 6120 §7.7.2.2)."""
        jid = session.jid
        assert jid.resource is not None
        resources = self._by_bare.setdefault(jid.bare, {})
        old = resources.get(jid.resource)
        resources[jid.resource] = session
        if old is session:
            return None
        if old is not None:
            old.routed = False
            self._count_local(old, -1)
        session.routed = True
        self._count_local(session, 1)
        return old

    def remove(self, session: Session) -> None:
        jid = session.jid
        resources = self._by_bare.get(jid.bare)
        if resources is None or jid.resource is None or resources.get(jid.resource) is not session:
            return  # already replaced by a newer session with the same resource
        del resources[jid.resource]
        session.routed = False
        self._count_local(session, -1)
        if not resources:
            del self._by_bare[jid.bare]

    def _count_local(self, session: Session, change: int) -> None:
        if session.node is not None:
            return
        bare = session.jid.bare
        count = self._local_count.get(bare, 0) + change
        if count:
            self._local_count[bare] = count
        else:
            del self._local_count[bare]

    def local_sessions(self) -> list[Session]:
        """The sessions connected to this node (not other nodes' proxies)."""
        return [s for resources in self._by_bare.values() for s in resources.values() if s.node is None]

    def has_local_session(self, bare: JID) -> bool:
        """Has a session connected to this node, available or not (callers pass bare JIDs)."""
        return bare in self._local_count

    def get(self, full: JID) -> Session | None:
        if full.resource is None:
            return None
        return self._by_bare.get(full.bare, {}).get(full.resource)

    def sessions_of(self, bare: JID) -> list[Session]:
        return list(self._by_bare.get(bare.bare, {}).values())

    def available_sessions(self, bare: JID) -> list[Session]:
        """Sessions a message to the bare JID goes to: available, priority >= 0
        (RFC 6121 §8.5.2.1.1 lets a server deliver to all of them)."""
        return [s for s in self._by_bare.get(bare.bare, {}).values() if s.available and s.priority >= 0]

    def is_connected(self, bare: JID) -> bool:
        """Has at least one bound session, available or not."""
        return bare in self._by_bare  # callers pass bare JIDs

    def is_online(self, bare: JID) -> bool:
        return any(s.available for s in self._by_bare.get(bare.bare, {}).values())

    def all_sessions(self) -> list[Session]:
        """Every bound session (for the operator: who, announce)."""
        return [s for resources in self._by_bare.values() for s in resources.values()]
