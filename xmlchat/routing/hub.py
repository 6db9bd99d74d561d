"""The hub: sessions come and go here, every stanza from a session is
dispatched here, and every stanza to a session leaves through :meth:`Hub.deliver`.

Dispatch follows RFC 6120 §10 and RFC 6121 §8 in the way Prosody's stanza
router does: a stanza addressed to a served domain goes to that domain's
module; messages and presence go to the module registered for their kind; an
iq is answered by the handler registered for its payload, or routed to the
full JID it names. Unhandled get/set iqs get ``service-unavailable``; results
and errors are never answered (that would loop, §8.3.1).

Errors are raised as :class:`~xmlchat.errors.StanzaError`; the front end that
received the stanza maps them to its protocol's error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from functools import partial

from lxml import etree

from xmlchat.errors import ErrorType, StanzaCondition, StanzaError, StreamCondition, StreamError
from xmlchat.jid import JID
from xmlchat.routing.api import IqHandler, Module
from xmlchat.routing.cluster import owner_of
from xmlchat.routing.hub_cluster import HubCluster, every
from xmlchat.routing.pipeline import PIPELINE
from xmlchat.routing.registry import Registry
from xmlchat.routing.router import Router
from xmlchat.routing.session import Session
from xmlchat.stanza import from_bytes, kind, make

AccountExists = Callable[[JID], Awaitable[bool]]


class Hub(HubCluster):
    """The other nodes of a cluster, when there are: :class:`HubCluster`."""

    def __init__(self, hosts: Iterable[str], account_exists: AccountExists) -> None:
        self.hosts = frozenset(hosts)
        self.router = Router()
        self.registry = Registry()
        self.modules: list[Module] = []
        self._account_exists = account_exists
        self.cluster = None
        self.remote = None

    def load(self, module: Module) -> None:
        self.registry.add(module.name, module.setup())
        self.modules.append(module)

    # ---- the server's lifetime

    async def start(self) -> None:
        """Run the modules' OnStart hooks, in load order."""
        for handle in self.registry.on_start:
            await handle()

    async def stop(self) -> None:
        """Run the OnStop hooks in reverse load order; every one runs even if one fails."""
        await every(reversed(self.registry.on_stop))

    # ---- the one way out

    def deliver(
        self, session: Session, stanza: etree._Element, stamp: datetime | None = None, delayed: bool = False
    ) -> bool:
        """Pass ``stanza`` through the outbound filters and write it to
        ``session``; False when a filter dropped it."""
        for _, outbound in self.registry.outbound:
            filtered = outbound(session, stanza)
            if filtered is None:
                return False
            stanza = filtered
        session.write(stanza, stamp or datetime.now(UTC), delayed)
        return True

    async def run_route_filters(self, stanza: etree._Element, account: JID) -> etree._Element | None:
        for _, route in self.registry.route:
            result = route(stanza, account)
            filtered = result if result is None or isinstance(result, etree._Element) else await result
            if filtered is None:
                return None
            stanza = filtered
        return stanza

    # ---- sessions

    async def open_session(self, session: Session) -> None:
        """Make a bound session routable (RFC 6120 §7)."""
        for _, opening in self.registry.session_opening:
            await opening(session)
        replaced = self.router.add(session)
        if replaced is not None:
            # RFC 6120 §7.7.2.2: the newer session wins; the old one gets conflict
            # (on another node, through the cluster).
            replaced.close(StreamError(StreamCondition.CONFLICT, "replaced by a new connection"))
        if self.cluster is not None:
            session.observer = self._presence_changed
            self.cluster.publish_session(session)
        for _, started in self.registry.session_started:
            await started(session)

    async def close_session(self, session: Session) -> None:
        was_current = self.router.get(session.jid) is session
        self.router.remove(session)
        if not was_current:
            return  # replaced: the newer session now owns this full JID
        if self.cluster is not None:
            self.cluster.publish_gone(session)
        for _, ended in self.registry.session_ended:
            await ended(session)

    def prepare_available(self, session: Session) -> None:
        for _, hook in self.registry.initial_presence:
            if hook.prepare is not None:
                hook.prepare(session)

    async def initial_presence(self, session: Session) -> None:
        """Every hook runs even when one fails: a hook may be releasing what
        its ``prepare`` held (the messages module's live messages)."""
        await every(partial(hook.handle, session) for _, hook in self.registry.initial_presence)

    async def client_state(self, session: Session, active: bool) -> None:
        """The client of a routable session said whether its user is looking (XEP-0352)."""
        if self.router.get(session.jid) is not session:
            return  # replaced or gone: nothing is delivered to it any more
        for _, hook in self.registry.client_state:
            await hook(session, active)

    # ---- the one way in

    async def receive(
        self, session: Session, stanza: etree._Element, to: JID | None, stamp: datetime | None = None
    ) -> None:
        """A stanza from a local session, ``from`` stamped, ``to`` parsed;
        ``stamp``: when it was accepted (now if not given)."""
        stamp = stamp or datetime.now(UTC)
        stanza_kind = kind(stanza)
        pipeline = PIPELINE.get()
        if pipeline is not None and pipeline.busy and stanza_kind != "message":
            # The client's messages still being stored go first (RFC 6120 §10.1):
            # only the messages module pipelines, and it keeps their order itself.
            await pipeline.drain()
        registry = self.registry
        # The filters that look at this kind only (InboundFilter.kinds): a filter
        # hands on the stanza it got, changed or not, or another of its kind.
        chain = registry.inbound_by_kind.get(stanza_kind)
        for inbound in chain if chain is not None else [inbound for _, inbound in registry.inbound]:
            result = inbound(session, stanza)
            filtered = result if result is None or isinstance(result, etree._Element) else await result
            if filtered is None:
                return
            stanza = filtered
        if registry.domains and to is not None and self._domain_label(to) is not None:
            if pipeline is not None and pipeline.busy:
                await pipeline.drain()
            await self.to_domain(session, stanza, to, stamp)
            return
        if stanza_kind == "iq":
            await self._iq(session, stanza, to)
            return
        handler = registry.stanza_handlers.get(stanza_kind)
        if handler is None:
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        await handler(session, stanza, to, stamp)

    def _domain_label(self, to: JID) -> str | None:
        label, _, parent = to.domain.partition(".")
        return label if parent in self.hosts and label in self.registry.domains else None

    async def to_domain(self, session: Session, stanza: etree._Element, to: JID, stamp: datetime) -> None:
        """A stanza to a served domain (``to`` names one): to its module here,
        or, for an address a partitioned domain serves on another node, to that node."""
        label = self._domain_label(to)
        if label is None:
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        if self.cluster is not None and to.local is not None and label in self.registry.partitioned:
            owner = owner_of(str(to.bare), self.cluster.view())
            if owner != self.cluster.node:
                await self._forward(owner, session, stanza, to, stamp)
                return
        await self.registry.domains[label](session, stanza, to, stamp)

    async def _forward(
        self, owner: str, session: Session, stanza: etree._Element, to: JID, stamp: datetime
    ) -> None:
        assert self.cluster is not None
        answer = await self.cluster.forward(owner, session, stanza, to, stamp)
        if answer is None:
            # Its node is dead or slow: once the cluster forgets it, another
            # node serves the address (a room's occupants are told, status 332).
            why = f"{to.bare} is served by node {owner}, which does not answer"
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, why, ErrorType.WAIT)
        for data, written, delayed in answer.written:
            self.deliver(session, from_bytes(data), written, delayed)
        if answer.error is not None:
            raise answer.error

    async def _iq(self, session: Session, iq: etree._Element, to: JID | None) -> None:
        if to is not None and to.resource is not None and to != session.jid:
            await self._iq_to_full_jid(iq, to)
            return
        if iq.get("type") in ("result", "error"):
            return  # answers to our pings; never answered (RFC 6120 §8.3.1)
        result = await self.call_iq(session, iq, to, internal=False)
        reply = make("iq", {"type": "result", "to": str(session.jid)})
        if iq.get("id") is not None:
            reply.set("id", iq.get("id", ""))
        if to is not None:
            # Answer from where it was sent; a request with no 'to' was handled
            # on behalf of the account and is answered without 'from' (RFC 6120 §8.1.2.1).
            reply.set("from", str(to))
        if result is not None:
            reply.append(result)
        self.deliver(session, reply)

    async def call_iq(
        self, session: Session, iq: etree._Element, to: JID | None = None, internal: bool = True
    ) -> etree._Element | None:
        """Run the handler for a get/set iq to the server or an account and
        return its result payload. Front ends call it directly (``internal``)
        to carry out a request of their own protocol."""
        type_ = iq.get("type") or ""
        payload = next(iter(iq), None)
        if payload is None:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "an iq get/set needs one payload")
        handler = self.registry.iq_handlers.get((type_, str(payload.tag)))
        if handler is None or (handler.internal and not internal):
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        if to is not None and to.domain not in self.hosts:
            raise StanzaError(StanzaCondition.REMOTE_SERVER_NOT_FOUND)
        if to is not None and to.local is not None and to.bare != session.jid.bare:
            await self._check_on_behalf(handler, iq, to)
        return await handler.handle(session, iq)

    async def _check_on_behalf(self, handler: IqHandler, iq: etree._Element, to: JID) -> None:
        """RFC 6121 §8.5.2.1.3: another account's bare JID is answered on its
        behalf only where a module can (disco); §8.5.1: and if it exists; and
        as the account's own stanzas would be (its route filters, e.g. blocking)."""
        if not handler.accounts or not await self._account_exists(to):
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        if await self.run_route_filters(iq, to.bare) is None:
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)

    async def _iq_to_full_jid(self, iq: etree._Element, to: JID) -> None:
        """RFC 6120 §10.5.3: an iq to a connected resource goes there; else
        service-unavailable. Sessions that cannot answer iqs count as absent."""
        answerable = iq.get("type") in ("get", "set")
        target = self.router.get(to)
        if target is None or not target.capabilities.full_xmpp:
            if answerable:
                raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
            return
        routed = await self.run_route_filters(iq, to.bare)
        if routed is not None:
            self.deliver(target, routed)
