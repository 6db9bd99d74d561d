"""The ledger's own tests: the check the fault suite relies on must be able to fail."""

from __future__ import annotations

import pytest
from faults.ledger import Ledger

pytestmark = pytest.mark.faults


def ledger_of(sent: list[str], acked: list[str], received: list[str]) -> Ledger:
    ledger = Ledger()
    for id_ in sent:
        ledger.send(id_)
    for id_ in acked:
        ledger.ack(id_)
    for id_ in received:
        ledger.receive(id_, "bob/1")
    return ledger


def test_everything_acked_and_received_once_passes() -> None:
    ledger = ledger_of(["a", "b"], ["a", "b"], ["b", "a"])
    ledger.check()
    assert ledger.lost == [] and ledger.duplicates == {}


def test_an_acked_id_never_received_is_lost() -> None:
    ledger = ledger_of(["a", "b", "c"], ["a", "b"], ["a"])
    with pytest.raises(AssertionError, match="LOST 1 acked"):
        ledger.check()
    assert ledger.lost == ["b"]


def test_an_id_received_twice_is_a_duplicate_even_if_never_acked() -> None:
    ledger = ledger_of(["a", "b"], ["a"], ["a", "b", "b"])
    with pytest.raises(AssertionError, match="DUPLICATE 1 ids"):
        ledger.check()
    assert ledger.duplicates == {"b": 2}


def test_a_duplicate_across_logins_names_both() -> None:
    ledger = ledger_of(["a"], ["a"], [])
    ledger.receive("a", "bob/1")
    ledger.receive("a", "bob/2")
    with pytest.raises(AssertionError, match=r"'a': \['bob/1', 'bob/2'\]"):
        ledger.check()


def test_sent_but_unacked_may_be_missing() -> None:
    ledger = ledger_of(["a", "b"], ["a"], ["a"])
    ledger.check()
    assert ledger.missing_unacked == ["b"]


def test_a_received_id_nobody_sent_fails() -> None:
    ledger = ledger_of(["a"], ["a"], ["a", "zz"])
    with pytest.raises(AssertionError, match="unknown 1"):
        ledger.check()


def test_an_ack_for_an_unsent_id_is_a_bug_in_the_test() -> None:
    with pytest.raises(AssertionError):
        Ledger().ack("never")


def test_resends_are_counted() -> None:
    ledger = ledger_of(["a", "a", "a", "b"], ["a", "b"], ["a", "b"])
    ledger.check()
    assert ledger.resent == 2 and "re-sent 2" in ledger.summary()
