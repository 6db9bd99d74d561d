"""XEP-0352 Client State Indication: hold back what can wait while nobody looks.

A bound XMPP client that saw the ``<csi xmlns='urn:xmpp:csi:0'/>`` stream
feature (§2) may send ``<inactive/>`` and ``<active/>`` (§3); the c2s core
turns them into :class:`~xmlchat.routing.api.OnClientState` calls. XEP-0352
leaves what the server does to policy (§4, §6); this module follows
Prosody's mod_csi_simple and ejabberd's mod_client_state:

* **Held** while inactive, at the end of the outbound chain (every other
  filter has already passed it): presence updates (available, unavailable),
  only the latest per sender's full JID; and chat states without a body
  (XEP-0085 standalone notifications), again the latest per sender.
* **Through at once** — the user must hear of them: everything else, in
  particular messages with a body, iqs, errors and subscription requests.
  Before such a stanza goes out, what is held *from the same sender* goes
  first, so one conversation never arrives out of order (a held "composing"
  never lands after the message it announced).
* ``<active/>`` flushes everything held, in the order it was held, before
  anything newer; so does reaching the cap (``HOLD_LIMIT`` per session).

Held stanzas are re-delivered through :meth:`ModuleContext.deliver`, so the
outbound chain runs again (a block added meanwhile still hides them); this
filter lets them through then instead of holding them again.
"""

from __future__ import annotations

import weakref
from typing import Final

from lxml import etree

from xmlchat.jid import JID
from xmlchat.routing.api import OnClientState, OnSessionEnded, OutboundFilter, Registration, StreamFeature
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.session import Session
from xmlchat.stanza import BODY, kind

XEP: Final = 352
NS: Final = "urn:xmpp:csi:0"
CHATSTATES_NS: Final = "http://jabber.org/protocol/chatstates"
CARBONS_NS: Final = "urn:xmpp:carbons:2"
FORWARD_NS: Final = "urn:xmpp:forward:0"
# At most this many stanzas wait per inactive session; reaching it flushes them.
HOLD_LIMIT: Final = 500

# Presence that only reports availability; subscription requests and errors are urgent.
_PRESENCE_UPDATES = frozenset({None, "unavailable"})
# What may be held, keyed by (what, sender, conversation): a newer one replaces an older one.
HoldKey = tuple[str, str, str]


class ClientState:
    name = "csi"

    def __init__(self, ctx: ModuleContext[None], hold_limit: int = HOLD_LIMIT) -> None:
        self.ctx = ctx
        self.hold_limit = hold_limit
        # Inactive sessions and what they hold, oldest first (dicts keep insertion order).
        self._held: weakref.WeakKeyDictionary[Session, dict[HoldKey, etree._Element]] = (
            weakref.WeakKeyDictionary()
        )
        self._releasing: Session | None = None
        # Sessions made inactive and not yet active again or ended: when 0, the
        # filter returns at once (a replaced session may keep it above 0: then
        # the filter just looks the session up).
        self._ever_inactive = 0

    def setup(self) -> list[Registration]:
        return [
            StreamFeature(NS, "csi"),
            OnClientState(self._changed),
            OnSessionEnded(self._ended),
            # Last in the chain: what is held has passed every other filter.
            OutboundFilter(self._filter, priority=-1000),
        ]

    def inactive(self, session: Session) -> bool:
        return session in self._held

    async def _changed(self, session: Session, active: bool) -> None:
        if not session.capabilities.full_xmpp:
            return  # only an XMPP client speaks XEP-0352
        if active:
            if session in self._held:
                self._ever_inactive -= 1
            self._flush(session, self._held.pop(session, {}))
        elif session not in self._held:
            self._ever_inactive += 1
            self._held[session] = {}

    async def _ended(self, session: Session) -> None:
        # Nothing more reaches a closed session; what it held goes with it.
        if self._held.pop(session, None) is not None:
            self._ever_inactive -= 1

    def _filter(self, session: Session, stanza: etree._Element) -> etree._Element | None:
        if not self._ever_inactive:
            return stanza  # the hot path: every client is active
        held = self._held.get(session)
        if held is None or self._releasing is session:
            return stanza
        key = _hold_key(stanza)
        if key is None:
            # Urgent: first what this sender's conversation still holds.
            self._flush(session, _take_from(held, _sender_bare(stanza.get("from"))))
            return stanza
        held.pop(key, None)  # the newer one replaces it, at the end
        held[key] = stanza
        if len(held) >= self.hold_limit:
            self._flush(session, dict(held))
            held.clear()
        return None

    def _flush(self, session: Session, stanzas: dict[HoldKey, etree._Element]) -> None:
        if not stanzas:
            return
        self._releasing = session
        try:
            for stanza in stanzas.values():
                self.ctx.deliver(session, stanza)
        finally:
            self._releasing = None


def _hold_key(stanza: etree._Element) -> HoldKey | None:
    """What ``stanza`` may wait as, or None when the user must see it now."""
    sender = stanza.get("from", "")
    match kind(stanza):
        case "presence" if stanza.get("type") in _PRESENCE_UPDATES:
            return ("presence", sender, "")
        case "message":
            inner = _unwrapped(stanza)
            if _chat_state_only(inner):
                # A carbon comes from the user's own bare JID: its conversation is inside.
                conversation = "" if inner is stanza else f"{inner.get('from')} {inner.get('to')}"
                return ("chatstate", sender, conversation)
    return None


def _unwrapped(message: etree._Element) -> etree._Element:
    """A carbon (XEP-0280) is judged by the message it carries."""
    inner = message.find(f"{{{CARBONS_NS}}}*/{{{FORWARD_NS}}}forwarded/{{jabber:client}}message")
    return message if inner is None else inner


def _chat_state_only(message: etree._Element) -> bool:
    if message.get("type") == "error" or message.find(BODY) is not None:
        return False
    return any(etree.QName(child).namespace == CHATSTATES_NS for child in message)


def _take_from(held: dict[HoldKey, etree._Element], sender: JID | None) -> dict[HoldKey, etree._Element]:
    """Remove and return, in order, what ``sender``'s account has waiting."""
    if sender is None:
        return {}
    taken = {key: stanza for key, stanza in held.items() if _sender_bare(key[1]) == sender}
    for key in taken:
        del held[key]
    return taken


def _sender_bare(text: str | None) -> JID | None:
    sender = JID.parse_or_none(text)
    return None if sender is None else sender.bare
