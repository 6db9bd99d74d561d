"""The roster and presence subscriptions (RFC 6121 §2, §3), shared by both protocols.

* :mod:`.states` — the subscription state tables (Appendix A), pure data;
* :mod:`.book` — roster primitives and pushes the modules below share;
* :mod:`.items` — the ``jabber:iq:roster`` module (:class:`Roster`);
* :mod:`.subscriptions` — subscription stanzas and pre-approval (:class:`Subscriptions`);
* :mod:`.contacts` — the native protocol's mutual contacts (:class:`Contacts`).
"""

from xmlchat.modules.roster.book import RosterBook, RosterBookStore, item_element
from xmlchat.modules.roster.contacts import Contacts
from xmlchat.modules.roster.items import Roster
from xmlchat.modules.roster.states import INBOUND, OUTBOUND, SUBSCRIPTION_TYPES, SubState, SubType
from xmlchat.modules.roster.subscriptions import Subscriptions, subscription_stanza

__all__ = [
    "INBOUND",
    "OUTBOUND",
    "SUBSCRIPTION_TYPES",
    "Contacts",
    "Roster",
    "RosterBook",
    "RosterBookStore",
    "SubState",
    "SubType",
    "Subscriptions",
    "item_element",
    "subscription_stanza",
]
