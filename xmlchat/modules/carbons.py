"""XEP-0280 Message Carbons (``urn:xmpp:carbons:2``, version 1.0.1).

Section numbers are the XEP's current ones (§4 enabling, §5 disabling, §6
eligible messages, §7 receiving, §8 sending, §9 private, §11 security).

* **Per session** (§4, §5): ``<enable/>`` and ``<disable/>`` iq-sets, each
  answered with a result however often repeated (§10.1). Only sessions that
  enabled get carbons; the set is kept here, weakly, so a closed session
  leaves nothing behind. A session without full XMPP (native) cannot enable.
* **Eligible** (§6, the suggested rules, as Prosody): type ``chat`` (chat
  states without a body included, §10.2 "This is intentional"), or
  ``normal`` with a ``<body/>``. Never errors (correlating them with the
  message they answer is what §6 calls unlikely to be appropriate),
  groupchat, headline, or anything from a MUC (``muc#user``).
* **Sent** (§8), an :class:`InboundFilter`: what a resource sends is copied,
  wrapped ``<sent><forwarded>``, to the sender's other carbon-enabled
  resources, whether or not the sender enabled carbons. Messages to one's
  own account are left to the received side: those resources get the
  message itself.
* **Received** (§7), a :class:`RouteFilter`, the last of the chain: it runs
  once per message and recipient account, after every other filter let it
  through, and before a session is chosen, so it can name exactly the
  sessions RFC 6121 §8.5 delivers to (the full JID's session if connected,
  else the available non-negative-priority ones, as
  :mod:`xmlchat.modules.messages`) and copy to every other carbon-enabled
  one: a negative-priority resource that did not get the message gets a
  copy. An :class:`OutboundFilter` would run once per session written to —
  for each of a bare-JID message's recipients, for offline replay, for the
  carbons themselves — and could only tell the first delivery from the
  others by bookkeeping across calls.
* Copies go to *available* resources only (RFC 6121 §4.2): a resource yet
  to send initial presence gets a bare-JID message from the offline store
  when it does, and a copy now would be a second one.
* **Private, no-copy** (§9; XEP-0334 ``<no-copy/>``): no copy either side;
  the receiving server removes ``<private/>`` before delivery.
* **Security** (§11): carbons are only ever made here. A client's message
  carrying ``<received/>`` or ``<sent/>`` of this namespace claims to be a
  carbon from someone else; those elements are removed before it goes
  anywhere, and a message still carrying one is never copied.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from copy import deepcopy
from typing import Final

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID
from xmlchat.routing.api import Feature, InboundFilter, IqHandler, OnSessionEnded, Registration, RouteFilter
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.session import Session
from xmlchat.stanza import BODY, CLIENT_NS, child, make

XEP: Final = 280
NS: Final = "urn:xmpp:carbons:2"
FORWARD_NS: Final = "urn:xmpp:forward:0"
HINTS_NS: Final = "urn:xmpp:hints"
MUC_USER_NS: Final = "http://jabber.org/protocol/muc#user"
ENABLE: Final = f"{{{NS}}}enable"
DISABLE: Final = f"{{{NS}}}disable"
PRIVATE: Final = f"{{{NS}}}private"
RECEIVED: Final = f"{{{NS}}}received"
SENT: Final = f"{{{NS}}}sent"
MESSAGE: Final = f"{{{CLIENT_NS}}}message"
FORWARDED: Final = f"{{{FORWARD_NS}}}forwarded"
NO_COPY: Final = f"{{{HINTS_NS}}}no-copy"

# Session.shared flag of a session that enabled carbons (for other nodes of a cluster).
SHARED: Final = "carbons"
# Last in both chains: a copy is made of what every other filter let through.
_LAST: Final = -1000


class Carbons:
    name = "carbons"

    def __init__(self, ctx: ModuleContext[None]) -> None:
        self.ctx = ctx
        # Sessions that enabled carbons, by account: the filters run for every
        # message, and most accounts have none (weak: a session that is gone,
        # replaced or not, is forgotten with it).
        self._enabled: dict[JID, weakref.WeakSet[Session]] = {}

    def setup(self) -> list[Registration]:
        return [
            Feature(NS),
            IqHandler("set", ENABLE, self._enable),
            IqHandler("set", DISABLE, self._disable),
            OnSessionEnded(self._ended),
            InboundFilter(self._sent, priority=_LAST, kinds=frozenset({"message"})),
            RouteFilter(self._received, priority=_LAST),
        ]

    def enabled(self, session: Session) -> bool:
        return session in self._enabled.get(session.bare, ())

    # ---- §4, §5

    async def _enable(self, session: Session, iq: etree._Element) -> None:
        if not session.capabilities.full_xmpp:
            # §4.1: forbidden where policy does not allow it; carbons are XMPP stanzas.
            raise StanzaError(StanzaCondition.FORBIDDEN, "carbons need a full XMPP session")
        self._enabled.setdefault(session.bare, weakref.WeakSet()).add(session)
        self.ctx.share(session, SHARED, True)  # other nodes of a cluster copy to it too

    async def _disable(self, session: Session, iq: etree._Element) -> None:
        self._forget(session)
        self.ctx.share(session, SHARED, False)

    async def _ended(self, session: Session) -> None:
        self._forget(session)

    def _forget(self, session: Session) -> None:
        sessions = self._enabled.get(session.bare)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self._enabled[session.bare]

    # ---- §8: what a resource sends

    def _sent(self, session: Session, stanza: etree._Element) -> etree._Element | None:
        if stanza.tag != MESSAGE:
            return stanza
        # Most messages are just a body: then nothing to look for (inlined: every message).
        if (len(stanza) != 1 or stanza[0].tag != BODY) and child(stanza, RECEIVED, SENT) is not None:
            _strip(stanza, RECEIVED, SENT)  # §11: only the server makes carbons
        if not self._wanted(session.bare):
            return stanza  # the hot path: no other resource wants copies
        to = JID.parse_or_none(stanza.get("to"))
        if to is None or to.bare == session.jid.bare or not _eligible(stanza):
            return stanza
        others = [s for s in self._copied_to(session.jid.bare) if s is not session]
        self._copy(SENT, stanza, session.jid.bare, others)
        return stanza

    # ---- §7: what an account receives

    def _received(self, stanza: etree._Element, account: JID) -> etree._Element | None:
        if stanza.tag != MESSAGE:
            return stanza
        if (len(stanza) != 1 or stanza[0].tag != BODY) and child(stanza, PRIVATE) is not None:
            _strip(stanza, PRIVATE)  # §9: SHOULD remove it before delivering
            return stanza
        if not self._wanted(account) or not _eligible(stanza):
            return stanza
        recipients = self._recipients(JID.parse_or_none(stanza.get("to")), account)
        others = [s for s in self._copied_to(account) if s not in recipients]
        self._copy(RECEIVED, stanza, account, others)
        return stanza

    def _recipients(self, to: JID | None, account: JID) -> list[Session]:
        """Whom RFC 6121 §8.5 gives the message itself (as the messages module does)."""
        sessions = self.ctx.sessions
        if to is not None and not to.is_bare:
            session = sessions.get(to)
            if session is not None:
                return [session]  # §8.5.3.1
        return sessions.available_sessions(account)  # §8.5.2.1.1, §8.5.3.2.1

    def _wanted(self, account: JID) -> bool:
        """Has a resource that enabled carbons, here or on another node."""
        # Every message asks, twice (sent, received): empty containers first,
        # a JID's hash is a Python call.
        enabled = self._enabled
        if enabled and account in enabled:
            return True
        remote = self.ctx.remote_flagged(SHARED)
        return bool(remote) and account in remote

    def _copied_to(self, account: JID) -> list[Session]:
        enabled = self._enabled.get(account, ())
        return [
            s
            for s in self.ctx.sessions.sessions_of(account)
            if s.available and (s in enabled or (s.node is not None and SHARED in s.shared))
        ]

    def _copy(self, how: str, stanza: etree._Element, account: JID, sessions: Iterable[Session]) -> None:
        for session in sessions:
            self.ctx.deliver(session, _wrap(how, stanza, account, session.jid))


def _eligible(message: etree._Element) -> bool:
    """§6's suggested rules, with §9 and XEP-0334's opt-outs."""
    if child(message, PRIVATE, NO_COPY, RECEIVED, SENT, f"{{{MUC_USER_NS}}}x") is not None:
        return False
    type_ = message.get("type", "normal")
    return type_ == "chat" or (type_ == "normal" and child(message, BODY) is not None)


def _wrap(direction: str, stanza: etree._Element, account: JID, to: JID) -> etree._Element:
    """§7/§8: from the bare JID, to the resource, the same type; the original forwarded (XEP-0297)."""
    carbon = make("message", {"from": str(account), "to": str(to)})
    if stanza.get("type") is not None:
        carbon.set("type", stanza.get("type", ""))
    wrapper = etree.SubElement(carbon, direction, nsmap={None: NS})
    forwarded = etree.SubElement(wrapper, FORWARDED, nsmap={None: FORWARD_NS})
    original = deepcopy(stanza)
    original.tail = None
    forwarded.append(original)
    return carbon


def _strip(stanza: etree._Element, *tags: str) -> None:
    for found in list(stanza.iterchildren(*tags)):
        stanza.remove(found)
