"""Native resume tokens (docs/native-protocol.md, "Receipts"): signed with the
server's secret, naming a resource of one user; anything else is ignored."""

from __future__ import annotations

from xmlchat.jid import JID
from xmlchat.server.native_receipts import resume_resource, resume_token

SECRET = b"s" * 32
ALICE = JID("alice", "localhost")


def test_a_token_names_the_resource_it_was_given_for() -> None:
    token = resume_token(SECRET, ALICE.with_resource("phone"))
    assert resume_resource(SECRET, ALICE, token) == "phone"


def test_another_users_forged_or_foreign_token_is_ignored() -> None:
    token = resume_token(SECRET, ALICE.with_resource("phone"))
    assert resume_resource(SECRET, JID("bob", "localhost"), token) is None
    assert resume_resource(b"t" * 32, ALICE, token) is None  # another server, or before a restart
    assert resume_resource(SECRET, ALICE, "phone~" + "0" * 32) is None
    assert resume_resource(SECRET, ALICE, "no-separator") is None
    assert resume_resource(SECRET, ALICE, None) is None
