"""XEP-0114 external components: stanzas to and from a component's domain.

Each configured component domain (a subdomain of a host) is served here
(:class:`~xmlchat.routing.api.ServesDomain`): what users send to it, or to a
JID at it, is written to the component while it is connected; a message or
iq then gets ``service-unavailable`` (RFC 6120 §10.5.3), presence is dropped.

What a component sends comes in through :meth:`Components.from_component`
with its 'from' checked by the stream (XEP-0114 §3):
* a message to a local account is routed as any message is (RFC 6121 §8.5,
  the offline store included, the recipient's route filters first);
* an iq or presence to a connected resource is delivered there; to a bare
  JID, presence goes to the account's available resources. Subscription
  requests from components are not taken: they would need a roster the
  component does not have;
* a stanza to another component goes to it.

A component is not a session: it has no presence, roster or blocklist of its
own, so it is written to directly rather than through
:meth:`~xmlchat.routing.hub.Hub.deliver` and its per-session filters.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError, StreamCondition, StreamError
from xmlchat.jid import JID
from xmlchat.modules.messages import Messages
from xmlchat.routing.api import Registration, ServesDomain
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.session import Session, SessionTransport
from xmlchat.stanza import kind

XEP: Final = 114
_SUBSCRIPTION_TYPES: Final = frozenset({"subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe"})


class Components:
    name = "components"

    def __init__(self, ctx: ModuleContext[None], domains: Iterable[str], messages: Messages) -> None:
        self.ctx = ctx
        self.messages = messages
        self.domains = frozenset(domains)
        for domain in self.domains:
            label, _, parent = domain.partition(".")
            if parent not in ctx.hosts or not label:
                raise ValueError(
                    f"component {domain!r} must be a subdomain of a host ({', '.join(ctx.hosts)})"
                )
        self._links: dict[str, SessionTransport] = {}

    def setup(self) -> list[Registration]:
        labels = {domain.partition(".")[0] for domain in self.domains}
        return [ServesDomain(label, self._to_component) for label in sorted(labels)]

    # ---- the component's connection

    def attach(self, domain: str, link: SessionTransport) -> None:
        """A component finished its handshake; a second one for the same domain
        replaces the first, as a resource does (RFC 6120 §7.7.2.2)."""
        old = self._links.get(domain)
        self._links[domain] = link
        if old is not None and old is not link:
            old.close(StreamError(StreamCondition.CONFLICT, "replaced by a new connection"))
        self.ctx.log.info("component %s connected", domain)

    def detach(self, domain: str, link: SessionTransport) -> None:
        if self._links.get(domain) is link:
            del self._links[domain]
            self.ctx.log.info("component %s disconnected", domain)

    async def from_component(self, stanza: etree._Element, to: JID) -> None:
        """A stanza from a component; raises StanzaError for the component to hear."""
        if to.domain in self.domains:
            self._write(to.domain, stanza)
            return
        if to.domain not in self.ctx.hosts:
            raise StanzaError(StanzaCondition.REMOTE_SERVER_NOT_FOUND, f"unknown domain {to.domain}")
        if to.local is None:
            if kind(stanza) == "iq" and stanza.get("type") in ("get", "set"):
                raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, "the server answers its clients only")
            return
        match kind(stanza):
            case "message":
                await self.messages.route(stanza, datetime.now(UTC))
            case "iq":
                await self._iq(stanza, to)
            case "presence" if stanza.get("type") not in _SUBSCRIPTION_TYPES:
                for session in self._presence_targets(to):
                    self.ctx.deliver(session, stanza)

    # ---- to the component

    async def _to_component(
        self, session: Session, stanza: etree._Element, to: JID | None, stamp: datetime
    ) -> None:
        assert to is not None  # the hub calls domain handlers for addressed stanzas only
        self._write(to.domain, stanza, stamp)

    def _write(self, domain: str, stanza: etree._Element, stamp: datetime | None = None) -> None:
        link = self._links.get(domain)
        if link is None:
            if kind(stanza) != "presence" and stanza.get("type") not in ("error", "result"):
                raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, f"{domain} is not connected")
            return
        link.write(stanza, stamp or datetime.now(UTC), False)

    # ---- to local accounts

    async def _iq(self, iq: etree._Element, to: JID) -> None:
        session = self.ctx.sessions.get(to)
        answerable = iq.get("type") in ("get", "set")
        if session is None or not session.capabilities.full_xmpp:
            if answerable:  # RFC 6120 §10.5.3 / RFC 6121 §8.5.2.1.3
                raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
            return
        routed = await self.ctx.to_account(iq, to.bare)
        if routed is not None:
            self.ctx.deliver(session, routed)

    def _presence_targets(self, to: JID) -> list[Session]:
        if to.resource is not None:
            session = self.ctx.sessions.get(to)
            targets = [] if session is None else [session]
        else:
            targets = self.ctx.sessions.available_sessions(to)
        return [s for s in targets if s.capabilities.full_xmpp]
