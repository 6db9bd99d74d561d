"""What the router keeps beside its sessions for the hot path to read without
a lookup: each user's count of sessions on this node (has_local_session, for
blocking) and each session's ``routed`` (for inboxes)."""

from __future__ import annotations

from modules.fakes import Recorder

from xmlchat.jid import JID
from xmlchat.routing.router import Router
from xmlchat.routing.session import XMPP_CLIENT, Session

BOB = JID("bob", "localhost")


def session(full: str, node: str | None = None) -> Session:
    return Session(JID.parse(full), XMPP_CLIENT, Recorder(), node=node)


def test_a_user_is_local_while_any_of_its_sessions_here_is_routed() -> None:
    router = Router()
    desk, phone = session("bob@localhost/desk"), session("bob@localhost/phone")
    assert not router.has_local_session(BOB)
    router.add(desk)
    router.add(phone)
    router.remove(desk)
    assert router.has_local_session(BOB)
    router.remove(phone)
    assert not router.has_local_session(BOB)
    router.remove(phone)  # twice: no count below zero to come back as "connected"
    assert not router.has_local_session(BOB)


def test_a_replaced_session_is_counted_once_and_its_late_removal_changes_nothing() -> None:
    router = Router()
    old, new = session("bob@localhost/desk"), session("bob@localhost/desk")
    assert not old.routed
    router.add(old)
    assert old.routed
    assert router.add(new) is old  # RFC 6120 §7.7.2.2: the newer one wins
    assert new.routed and not old.routed
    router.remove(old)  # the replaced one closing: not routed, not counted
    assert router.has_local_session(BOB) and new.routed
    router.remove(new)
    assert not router.has_local_session(BOB) and not new.routed


def test_another_nodes_sessions_are_not_local() -> None:
    router = Router()
    proxy = session("bob@localhost/desk", node="n2")
    router.add(proxy)
    assert router.is_connected(BOB) and not router.has_local_session(BOB)
    # A login here replacing the proxy's full JID makes the user local, and back.
    here = session("bob@localhost/desk")
    router.add(here)
    assert router.has_local_session(BOB)
    router.add(proxy)
    assert not router.has_local_session(BOB)
    router.add(proxy)  # the same session again: no change
    router.remove(proxy)
    assert not router.is_connected(BOB) and not router.has_local_session(BOB)
