"""RFC 6121 Appendix A: the nine subscription states of a contact, seen from
the roster owner, and what each subscription stanza does to them, as two
tables: :data:`OUTBOUND` (the owner sent it) and :data:`INBOUND` (the owner
received it). Pure data: no I/O, no sessions.
"""

from __future__ import annotations

from enum import Enum
from typing import Final, Literal

from xmlchat.storage import RosterItem

SubType = Literal["subscribe", "subscribed", "unsubscribe", "unsubscribed"]
SUBSCRIPTION_TYPES: Final[frozenset[str]] = frozenset(
    {"subscribe", "subscribed", "unsubscribe", "unsubscribed"}
)


class SubState(Enum):
    """RFC 6121 Appendix A.1: a contact's state in the owner's roster, as
    (subscription, pending out, pending in)."""

    NONE = ("none", False, False)
    NONE_PENDING_OUT = ("none", True, False)
    NONE_PENDING_IN = ("none", False, True)
    NONE_PENDING_OUT_IN = ("none", True, True)
    TO = ("to", False, False)
    TO_PENDING_IN = ("to", False, True)
    FROM = ("from", False, False)
    FROM_PENDING_OUT = ("from", True, False)
    BOTH = ("both", False, False)

    @classmethod
    def of(cls, item: RosterItem | None, pending_in: bool) -> SubState:
        subscription = "none" if item is None else item.subscription
        pending_out = item is not None and item.ask
        # Pending out needs no 'to' yet, pending in no 'from' yet: stale flags
        # beside a granted subscription mean nothing (A.1 has no such states).
        pending_out = pending_out and subscription in ("none", "from")
        pending_in = pending_in and subscription in ("none", "to")
        return cls((subscription, pending_out, pending_in))

    @property
    def subscription(self) -> str:
        return self.value[0]

    @property
    def pending_out(self) -> bool:
        return self.value[1]

    @property
    def pending_in(self) -> bool:
        return self.value[2]

    @property
    def contact_sees_owner(self) -> bool:
        """The contact receives the owner's presence (``from``/``both``)."""
        return self.subscription in ("from", "both")

    @property
    def owner_sees_contact(self) -> bool:
        """The owner receives the contact's presence (``to``/``both``)."""
        return self.subscription in ("to", "both")


S = SubState

# RFC 6121 A.2: the owner SENT this stanza to the contact. Missing: no state change.
OUTBOUND: Final[dict[str, dict[SubState, SubState]]] = {
    "subscribe": {  # A.2.1
        S.NONE: S.NONE_PENDING_OUT,
        S.NONE_PENDING_IN: S.NONE_PENDING_OUT_IN,
        S.FROM: S.FROM_PENDING_OUT,
    },
    "unsubscribe": {  # A.2.2
        S.NONE_PENDING_OUT: S.NONE,
        S.NONE_PENDING_OUT_IN: S.NONE_PENDING_IN,
        S.TO: S.NONE,
        S.TO_PENDING_IN: S.NONE_PENDING_IN,
        S.FROM_PENDING_OUT: S.FROM,
        S.BOTH: S.FROM,
    },
    "subscribed": {  # A.2.3 (other states: pre-approval, §3.4)
        S.NONE_PENDING_IN: S.FROM,
        S.NONE_PENDING_OUT_IN: S.FROM_PENDING_OUT,
        S.TO_PENDING_IN: S.BOTH,
    },
    "unsubscribed": {  # A.2.4
        S.NONE_PENDING_IN: S.NONE,
        S.NONE_PENDING_OUT_IN: S.NONE_PENDING_OUT,
        S.TO_PENDING_IN: S.TO,
        S.FROM: S.NONE,
        S.FROM_PENDING_OUT: S.NONE_PENDING_OUT,
        S.BOTH: S.TO,
    },
}

# RFC 6121 A.3: the owner RECEIVED this stanza from the contact. Missing: no
# state change, and then the stanza is not delivered either.
INBOUND: Final[dict[str, dict[SubState, SubState]]] = {
    "subscribe": {  # A.3.1 (from/both: the server answers 'subscribed', §3.1.3)
        S.NONE: S.NONE_PENDING_IN,
        S.NONE_PENDING_OUT: S.NONE_PENDING_OUT_IN,
        S.TO: S.TO_PENDING_IN,
    },
    "unsubscribe": {  # A.3.2
        S.NONE_PENDING_IN: S.NONE,
        S.NONE_PENDING_OUT_IN: S.NONE_PENDING_OUT,
        S.TO_PENDING_IN: S.TO,
        S.FROM: S.NONE,
        S.FROM_PENDING_OUT: S.NONE_PENDING_OUT,
        S.BOTH: S.TO,
    },
    "subscribed": {  # A.3.3
        S.NONE_PENDING_OUT: S.TO,
        S.NONE_PENDING_OUT_IN: S.TO_PENDING_IN,
        S.FROM_PENDING_OUT: S.BOTH,
    },
    "unsubscribed": {  # A.3.4
        S.NONE_PENDING_OUT: S.NONE,
        S.NONE_PENDING_OUT_IN: S.NONE_PENDING_IN,
        S.TO: S.NONE,
        S.TO_PENDING_IN: S.NONE_PENDING_IN,
        S.FROM_PENDING_OUT: S.FROM,
        S.BOTH: S.FROM,
    },
}
