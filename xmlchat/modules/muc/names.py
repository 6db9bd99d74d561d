"""XEP-0045 names: namespaces, status codes, and what a nickname may be.

A nickname is a JID resourcepart (the occupant JID is ``room@service/nick``)
made canonical with the PRECIS Nickname profile (RFC 8266 §2): non-ASCII
spaces become spaces, leading and trailing spaces go, inner runs collapse to
one, then NFKC. Two nicknames conflict when their case-folded forms match
(§2.4 comparison), so ``Alice`` and ``alice`` are one seat.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID, InvalidJID

MUC: Final = "http://jabber.org/protocol/muc"
USER: Final = f"{MUC}#user"
ADMIN: Final = f"{MUC}#admin"
OWNER: Final = f"{MUC}#owner"
ROOMCONFIG: Final = f"{MUC}#roomconfig"
DATA: Final = "jabber:x:data"

X_MUC: Final = f"{{{MUC}}}x"
X_USER: Final = f"{{{USER}}}x"

# XEP-0045 §15.6.2 status codes.
STATUS_NON_ANONYMOUS: Final = "100"
STATUS_SELF: Final = "110"
STATUS_CONFIG_CHANGED: Final = "104"
STATUS_NOW_NON_ANONYMOUS: Final = "172"
STATUS_CREATED: Final = "201"
STATUS_NICK_MODIFIED: Final = "210"
STATUS_BANNED: Final = "301"
STATUS_NEW_NICK: Final = "303"
STATUS_KICKED: Final = "307"
STATUS_AFFILIATION_LOST: Final = "321"
STATUS_MEMBERS_ONLY: Final = "322"
STATUS_SHUTDOWN: Final = "332"

MAX_NICK_BYTES: Final = 1023  # a resourcepart (RFC 7622 §3.4)
_SPACES: Final = re.compile(r"\s+")


def _enforce(text: str) -> str:
    """RFC 8266 §2.2: spaces mapped, trimmed and collapsed, then NFKC."""
    spaced = "".join(" " if unicodedata.category(c) == "Zs" else c for c in text)
    return unicodedata.normalize("NFKC", _SPACES.sub(" ", spaced).strip())


def nickname(text: str) -> str:
    """The canonical form of a requested nickname; ``jid-malformed`` if it
    cannot be one (empty once trimmed, control characters, too long)."""
    nick = _enforce(text)
    # NFKC can bring spaces back (U+00B4 is a space and a combining accent):
    # the rules are applied until the result is stable, and a string that is
    # not stable after three more rounds is refused (RFC 8264 §7).
    for _ in range(3):
        again = _enforce(nick)
        if again == nick:
            break
        nick = again
    else:
        raise StanzaError(StanzaCondition.JID_MALFORMED, f"{text!r} is not a stable nickname")
    if not nick or any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in nick):
        raise StanzaError(StanzaCondition.JID_MALFORMED, f"{text!r} is not a valid nickname")
    if len(nick.encode()) > MAX_NICK_BYTES:
        raise StanzaError(StanzaCondition.JID_MALFORMED, "nickname too long")
    return nick


def nick_key(nick: str) -> str:
    """What two nicknames are compared by (RFC 8266 §2.4: case-folded)."""
    return nick.casefold()


def room_address(room: JID, nick: str | None = None) -> JID:
    """``room@service/nick``; ``jid-malformed`` if ``nick`` cannot be a resource."""
    if nick is None:
        return room.bare
    try:
        return room.bare.with_resource(nick)
    except InvalidJID:
        raise StanzaError(StanzaCondition.JID_MALFORMED, f"{nick!r} is not a valid nickname") from None
