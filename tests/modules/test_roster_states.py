"""The subscription state tables (RFC 6121 Appendix A) keep two local rosters mirrored."""

from __future__ import annotations

import pytest

from xmlchat.jid import JID
from xmlchat.modules.roster import INBOUND, OUTBOUND, SubState
from xmlchat.storage import RosterItem

_SWAP = {"none": "none", "to": "from", "from": "to", "both": "both"}
TYPES = ("subscribe", "subscribed", "unsubscribe", "unsubscribed")


def mirror(state: SubState) -> SubState:
    """The same relation seen from the contact's roster."""
    return SubState((_SWAP[state.subscription], state.pending_in, state.pending_out))


def test_every_state_has_a_mirror() -> None:
    assert {mirror(s) for s in SubState} == set(SubState)


@pytest.mark.parametrize("type_", TYPES)
@pytest.mark.parametrize("state", list(SubState), ids=lambda s: s.name)
def test_sender_and_receiver_stay_mirrored(state: SubState, type_: str) -> None:
    """The user sends ``type_`` to the contact; both servers are this one."""
    user, contact = state, mirror(state)
    if type_ == "subscribed" and not state.pending_in and not state.contact_sees_owner:
        return  # a pre-approval (§3.4): neither state changes, nothing is routed
    user = OUTBOUND[type_].get(user, user)
    if type_ == "subscribe" and contact.contact_sees_owner:
        # §3.1.3: already approved: the contact's server answers 'subscribed'.
        user = INBOUND["subscribed"].get(user, user)
    else:
        contact = INBOUND[type_].get(contact, contact)
    assert user == mirror(contact)


def test_state_of_a_roster_item() -> None:
    bob = JID("bob", "localhost")
    assert SubState.of(None, False) is SubState.NONE
    assert SubState.of(None, True) is SubState.NONE_PENDING_IN
    assert SubState.of(RosterItem(bob, ask=True), True) is SubState.NONE_PENDING_OUT_IN
    assert SubState.of(RosterItem(bob, subscription="from", ask=True), False) is SubState.FROM_PENDING_OUT
    # Stale flags beside a granted subscription are not states of their own.
    assert SubState.of(RosterItem(bob, subscription="both", ask=True), True) is SubState.BOTH
    assert SubState.of(RosterItem(bob, subscription="to", ask=True), False) is SubState.TO
