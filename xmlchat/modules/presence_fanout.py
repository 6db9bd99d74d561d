"""Presence fan-out shared by the presence and subscription modules (RFC 6121 §3, §4).

Plain functions over the sessions and the delivery path: which resource's
presence goes to which, with no state of their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from copy import deepcopy
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from xmlchat.jid import JID
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.session import Session
from xmlchat.stanza import make


def available_presence(session: Session) -> etree._Element:
    """The session's current presence (a copy), from its full JID."""
    last = session.available_presence
    presence = make("presence") if last is None else deepcopy(last)
    presence.set("from", str(session.jid))
    return presence


def send_presence_of(
    ctx: ModuleContext[Any], senders: Iterable[Session], receivers: list[Session], stamp: datetime
) -> int:
    """Each available sender's current presence to each receiver; returns
    how many senders were available."""
    count = 0
    for sender in senders:
        if not sender.available:
            continue
        count += 1
        for receiver in receivers:
            presence = available_presence(sender)
            presence.set("to", str(receiver.jid))
            ctx.deliver(receiver, presence, stamp)
    return count


def share(ctx: ModuleContext[Any], sender: JID, receiver: JID) -> None:
    """The presence of each of ``sender``'s available resources, to each of
    ``receiver``'s (after an approval, §3.1.5, or a native contact-add)."""
    sessions = ctx.sessions
    receivers = [s for s in sessions.sessions_of(receiver) if s.available]
    send_presence_of(ctx, sessions.sessions_of(sender), receivers, datetime.now(UTC))


def withdraw(ctx: ModuleContext[Any], sender: JID, receiver: JID) -> None:
    """Unavailable presence from each of ``sender``'s available resources to
    each of ``receiver``'s, when a subscription ends (§3.2.2, §3.3.3)."""
    sessions = ctx.sessions
    stamp = datetime.now(UTC)
    for peer in sessions.sessions_of(receiver):
        if not peer.available:
            continue
        for own in sessions.sessions_of(sender):
            if own.available:
                gone = make("presence", {"type": "unavailable", "from": str(own.jid), "to": str(peer.jid)})
                ctx.deliver(peer, gone, stamp)
