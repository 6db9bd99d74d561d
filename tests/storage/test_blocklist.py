"""Blocklists (XEP-0191), against every backend (see conftest.py)."""

from __future__ import annotations

import pytest
from storage.common import ALICE, BOB, CAROL

from xmlchat.jid import JID
from xmlchat.storage import BLOCKLIST_LIMIT, BlocklistFull, Storage

BOB_PHONE = BOB.with_resource("phone")
SPAM = JID.parse("spam.example")


async def test_block_returns_the_new_items_in_the_given_order(storage: Storage) -> None:
    assert await storage.get_blocklist(ALICE) == []
    assert await storage.block(ALICE, [CAROL, BOB_PHONE, CAROL, SPAM]) == [CAROL, BOB_PHONE, SPAM]
    assert await storage.block(ALICE, [BOB, CAROL]) == [BOB]  # CAROL was there already
    assert await storage.block(ALICE, []) == []
    # Sorted by string form; full JIDs and domains are kept as given.
    assert await storage.get_blocklist(ALICE) == [BOB, BOB_PHONE, CAROL, SPAM]


async def test_items_are_normalised_jids(storage: Storage) -> None:
    assert await storage.block(ALICE, [JID.parse("Bob@Example.COM/Phone")]) == [
        JID.parse("bob@example.com/Phone")
    ]
    assert await storage.block(ALICE, [JID.parse("bob@example.com/Phone")]) == []
    assert await storage.get_blocklist(ALICE) == [JID.parse("bob@example.com/Phone")]


async def test_blocklists_are_per_bare_user(storage: Storage) -> None:
    await storage.block(ALICE.with_resource("laptop"), [BOB])
    assert await storage.get_blocklist(ALICE) == [BOB]
    assert await storage.get_blocklist(ALICE.with_resource("phone")) == [BOB]
    assert await storage.get_blocklist(CAROL) == []
    assert await storage.is_blocked(ALICE.with_resource("x"), BOB)
    assert not await storage.is_blocked(CAROL, BOB)


async def test_unblock_returns_what_was_removed(storage: Storage) -> None:
    await storage.block(ALICE, [BOB, BOB_PHONE, CAROL])
    assert await storage.unblock(ALICE, [SPAM, CAROL, BOB, CAROL]) == [CAROL, BOB]
    # Items are exact: unblocking the bare JID left the full one.
    assert await storage.get_blocklist(ALICE) == [BOB_PHONE]
    assert await storage.unblock(ALICE, [CAROL]) == []
    assert await storage.unblock(BOB, [BOB_PHONE]) == []  # not in BOB's list
    assert await storage.get_blocklist(ALICE) == [BOB_PHONE]


async def test_unblock_all(storage: Storage) -> None:
    await storage.block(ALICE, [SPAM, CAROL, BOB])
    await storage.block(BOB, [CAROL])
    assert await storage.unblock_all(ALICE) == [BOB, CAROL, SPAM]
    assert await storage.get_blocklist(ALICE) == []
    assert await storage.unblock_all(ALICE) == []
    assert not await storage.is_blocked(ALICE, CAROL)
    assert await storage.get_blocklist(BOB) == [CAROL]


async def test_blocked_bare_jid_blocks_every_resource(storage: Storage) -> None:
    await storage.block(ALICE, [BOB])
    assert await storage.is_blocked(ALICE, BOB)
    assert await storage.is_blocked(ALICE, BOB_PHONE)
    assert await storage.is_blocked(ALICE, BOB.with_resource("laptop"))
    assert not await storage.is_blocked(ALICE, CAROL)
    assert not await storage.is_blocked(ALICE, JID.parse("example.com"))


async def test_blocked_full_jid_blocks_only_that_resource(storage: Storage) -> None:
    await storage.block(ALICE, [BOB_PHONE])
    assert await storage.is_blocked(ALICE, BOB_PHONE)
    assert not await storage.is_blocked(ALICE, BOB.with_resource("laptop"))
    assert not await storage.is_blocked(ALICE, BOB)  # bare: the full JID is not known


async def test_blocked_domain_blocks_every_jid_at_it(storage: Storage) -> None:
    await storage.block(ALICE, [SPAM])
    assert await storage.is_blocked(ALICE, SPAM)
    assert await storage.is_blocked(ALICE, JID.parse("eve@spam.example"))
    assert await storage.is_blocked(ALICE, JID.parse("eve@spam.example/bot"))
    assert await storage.is_blocked(ALICE, JID.parse("spam.example/component"))
    assert not await storage.is_blocked(ALICE, JID.parse("eve@sub.spam.example"))
    assert not await storage.is_blocked(ALICE, JID.parse("eve@example.com"))


async def test_blocked_domain_resource_blocks_only_itself(storage: Storage) -> None:
    bot = JID.parse("spam.example/bot")
    await storage.block(ALICE, [bot])
    assert await storage.is_blocked(ALICE, bot)
    assert not await storage.is_blocked(ALICE, SPAM)
    assert not await storage.is_blocked(ALICE, JID.parse("eve@spam.example/bot"))


async def test_block_past_the_limit_adds_nothing(storage: Storage) -> None:
    assert await storage.block(ALICE, [BOB, CAROL], limit=3) == [BOB, CAROL]
    with pytest.raises(BlocklistFull):
        await storage.block(ALICE, [SPAM, BOB_PHONE], limit=3)
    assert await storage.get_blocklist(ALICE) == [BOB, CAROL]
    # Items already there do not count again, so a full list can repeat them.
    assert await storage.block(ALICE, [SPAM, BOB], limit=3) == [SPAM]
    assert await storage.block(ALICE, [CAROL], limit=3) == []
    with pytest.raises(BlocklistFull):
        await storage.block(ALICE, [BOB_PHONE], limit=3)
    assert await storage.block(BOB, [CAROL], limit=3) == [CAROL]  # per user


async def test_default_limit(storage: Storage) -> None:
    many = [JID(f"u{i}", "example.net") for i in range(BLOCKLIST_LIMIT)]
    assert len(await storage.block(ALICE, many)) == BLOCKLIST_LIMIT
    with pytest.raises(BlocklistFull):
        await storage.block(ALICE, [BOB])
    assert len(await storage.get_blocklist(ALICE)) == BLOCKLIST_LIMIT
