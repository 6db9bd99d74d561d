"""JID values: equality, hash and text are kept with each JID (made once), so
JIDs built, parsed or copied separately must still agree as values do."""

from __future__ import annotations

import copy
import dataclasses
import pickle

from xmlchat.jid import JID


def test_separately_made_jids_are_equal_hash_alike_and_find_each_other() -> None:
    parsed = JID.parse("Alice@LocalHost/Phone")
    built = JID("alice", "localhost", "Phone")
    assert parsed == built and hash(parsed) == hash(built)
    assert parsed.bare == JID("alice", "localhost") and parsed.bare is not JID("alice", "localhost")
    table = {built.bare: "alice", JID(None, "localhost"): "server"}
    assert table[parsed.bare] == "alice" and table[JID.parse("localhost")] == "server"
    assert {parsed, built, copy.deepcopy(parsed), pickle.loads(pickle.dumps(parsed))} == {built}


def test_jids_differing_in_any_part_differ_and_other_types_are_never_equal() -> None:
    base = JID("alice", "localhost", "phone")
    for other in (JID("bob", "localhost", "phone"), JID("alice", "example.org", "phone"),
                  JID("alice", "localhost"), JID(None, "localhost", "phone")):
        assert base != other
    assert base != "alice@localhost/phone" and base != ("alice", "localhost", "phone")


def test_the_text_is_the_address_and_follows_a_replaced_part() -> None:
    assert str(JID("alice", "localhost", "phone")) == "alice@localhost/phone"
    assert str(JID(None, "conference.localhost", "x")) == "conference.localhost/x"
    assert str(JID(None, "localhost")) == "localhost"
    moved = dataclasses.replace(JID("alice", "localhost", "phone"), resource="desk")
    assert str(moved) == "alice@localhost/desk" and moved == JID("alice", "localhost", "desk")
    assert hash(moved) == hash(JID("alice", "localhost", "desk"))
    assert str(moved.with_resource("tab")) == "alice@localhost/tab"
