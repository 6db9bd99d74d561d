"""The native client's receipts: what it confirms, and no message shown twice."""

from __future__ import annotations

from lxml import etree

from xmlchat.client.native_receipts import Inbox, RecentMessages


def message(n: int, seq: int | None, sender: str = "bob@localhost") -> etree._Element:
    number = f"<seq>{seq}</seq>" if seq is not None else ""
    return etree.fromstring(
        f"<message xmlns='urn:xmlchat:native:1'><id>m{n}</id><from>{sender}</from><to>alice@localhost</to>"
        f"<time>2026-11-22T10:00:0{n}.000Z</time><body>hello {n}</body>{number}</message>"
    )


def test_confirms_the_highest_seq_once() -> None:
    inbox = Inbox()
    assert inbox.receipt() is None
    assert inbox.message(message(1, 1)) is not None
    assert inbox.message(message(2, 2)) is not None
    assert inbox.receipt() == b"<received><seq>2</seq></received>"
    assert inbox.receipt() is None
    inbox.connected()  # a new connection numbers from 1 again
    assert inbox.message(message(3, 1)) is not None
    assert inbox.receipt() == b"<received><seq>1</seq></received>"


def test_a_repeat_after_reconnecting_is_dropped_but_confirmed() -> None:
    inbox = Inbox()
    assert inbox.message(message(1, 1)) is not None
    inbox.connected()
    assert inbox.message(message(1, 1)) is None  # replayed: shown already
    assert inbox.receipt() == b"<received><seq>1</seq></received>"
    # The same id from someone else is another message.
    assert inbox.message(message(1, 2, "carol@localhost")) is not None


def test_recent_messages_are_bounded() -> None:
    recent = RecentMessages(size=2)
    assert recent.first_time(("b", "1", "t"))
    assert recent.first_time(("b", "2", "t"))
    assert not recent.first_time(("b", "1", "t"))
    assert recent.first_time(("b", "3", "t"))  # forgets ("b", "1", "t")
    assert recent.first_time(("b", "1", "t"))
