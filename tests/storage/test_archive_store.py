"""Message archives (XEP-0313) and archiving preferences, against every backend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from storage.common import ALICE, BOB, CAROL, T0

from xmlchat.jid import JID
from xmlchat.storage import (
    ArchiveIdNotFound,
    ArchivePrefs,
    ArchiveQuery,
    PageRequest,
    Storage,
)

ALL = ArchiveQuery()


async def _fill(storage: Storage, n: int, with_: JID = BOB) -> list[str]:
    """``n`` messages between ALICE and ``with_``, a second apart, alternating direction."""
    return [
        await storage.archive_message(
            ALICE, with_, f"<message n='{i}'/>".encode(), T0 + timedelta(seconds=i), outgoing=i % 2 == 0
        )
        for i in range(n)
    ]


async def test_messages_come_back_in_archive_order_with_their_fields(storage: Storage) -> None:
    first = await storage.archive_message(
        ALICE.with_resource("pc"), BOB.with_resource("x"), b"<a/>", T0, outgoing=True
    )
    # Archive order is call order, even when a stamp is earlier.
    second = await storage.archive_message(ALICE, CAROL, b"<b/>", T0 - timedelta(hours=1), outgoing=False)
    page = await storage.query_archive(ALICE, ALL, PageRequest(max=10))
    assert [m.id for m in page.messages] == [first, second]
    a, b = page.messages
    assert (a.with_, a.stanza, a.stamp, a.outgoing) == (BOB, b"<a/>", T0, True)
    assert (b.with_, b.stanza, b.stamp, b.outgoing) == (CAROL, b"<b/>", T0 - timedelta(hours=1), False)
    assert (page.count, page.first_index, page.complete) == (2, 0, True)
    assert (await storage.query_archive(BOB, ALL, PageRequest(max=10))).messages == []


async def test_ids_are_unique_unguessable_strings(storage: Storage) -> None:
    ids = await _fill(storage, 50)
    ids += [await storage.archive_message(BOB, ALICE, b"<m/>", T0, outgoing=False) for _ in range(50)]
    assert len(set(ids)) == 100
    assert all(len(i) >= 16 and i.isascii() for i in ids)
    assert sorted(ids) != ids  # not a counter: sorting them does not give archive order


async def test_forward_paging_visits_every_message_once(storage: Storage) -> None:
    ids = await _fill(storage, 12)
    seen: list[str] = []
    after = None
    while True:
        page = await storage.query_archive(ALICE, ALL, PageRequest(max=5, after=after))
        assert page.count == 12
        assert page.first_index == len(seen)
        seen += [m.id for m in page.messages]
        after = seen[-1]
        if page.complete:
            break
    assert seen == ids


async def test_backward_paging_from_the_end(storage: Storage) -> None:
    ids = await _fill(storage, 12)
    last = await storage.query_archive(ALICE, ALL, PageRequest(max=5, last=True))
    assert [m.id for m in last.messages] == ids[7:]
    assert (last.first_index, last.complete) == (7, False)
    page = await storage.query_archive(ALICE, ALL, PageRequest(max=5, before=ids[7]))
    assert [m.id for m in page.messages] == ids[2:7]
    page = await storage.query_archive(ALICE, ALL, PageRequest(max=5, before=ids[2]))
    assert [m.id for m in page.messages] == ids[:2]
    assert (page.first_index, page.complete) == (0, True)


async def test_max_zero_counts_only(storage: Storage) -> None:
    await _fill(storage, 3)
    page = await storage.query_archive(ALICE, ALL, PageRequest(max=0))
    assert (page.messages, page.count, page.first_index, page.complete) == ([], 3, None, False)
    assert await storage.count_archive(ALICE) == 3
    with pytest.raises(ValueError):
        await storage.query_archive(ALICE, ALL, PageRequest(max=-1))


async def test_filters_with_start_end_and_ids(storage: Storage) -> None:
    bob_ids = await _fill(storage, 6)
    carol_ids = await _fill(storage, 4, with_=CAROL.with_resource("r"))
    with_carol = ArchiveQuery(with_=CAROL)
    page = await storage.query_archive(ALICE, with_carol, PageRequest(max=10))
    assert [m.id for m in page.messages] == carol_ids
    assert await storage.count_archive(ALICE, ArchiveQuery(with_=BOB.with_resource("z"))) == 6
    # start and end are inclusive.
    window = ArchiveQuery(start=T0 + timedelta(seconds=2), end=T0 + timedelta(seconds=4))
    page = await storage.query_archive(ALICE, window, PageRequest(max=10))
    assert [m.id for m in page.messages] == bob_ids[2:5] + carol_ids[2:4]
    both = ArchiveQuery(with_=BOB, start=T0 + timedelta(seconds=4))
    assert [
        m.id for m in (await storage.query_archive(ALICE, both, PageRequest(max=10))).messages
    ] == bob_ids[4:]
    picked = ArchiveQuery(ids=(carol_ids[1], bob_ids[0], "unknown"))
    page = await storage.query_archive(ALICE, picked, PageRequest(max=10))
    assert [m.id for m in page.messages] == [bob_ids[0], carol_ids[1]]
    assert await storage.count_archive(ALICE, ArchiveQuery(ids=())) == 0


async def test_after_and_before_ids_bound_the_results(storage: Storage) -> None:
    ids = await _fill(storage, 10)
    between = ArchiveQuery(after_id=ids[2], before_id=ids[8])
    page = await storage.query_archive(ALICE, between, PageRequest(max=3))
    assert [m.id for m in page.messages] == ids[3:6]
    assert (page.count, page.first_index, page.complete) == (5, 0, False)
    page = await storage.query_archive(ALICE, between, PageRequest(max=3, after=ids[5]))
    assert [m.id for m in page.messages] == ids[6:8]
    assert (page.first_index, page.complete) == (3, True)
    page = await storage.query_archive(ALICE, between, PageRequest(max=3, last=True))
    assert [m.id for m in page.messages] == ids[5:8]


async def test_an_unknown_or_foreign_id_is_not_found(storage: Storage) -> None:
    await _fill(storage, 2)
    bobs = await storage.archive_message(BOB, ALICE, b"<m/>", T0, outgoing=False)
    for query, page in (
        (ArchiveQuery(after_id="nope"), PageRequest(max=5)),
        (ArchiveQuery(before_id=bobs), PageRequest(max=5)),  # BOB's, not ALICE's
        (ALL, PageRequest(max=5, after=bobs)),
        (ALL, PageRequest(max=5, before="nope")),
    ):
        with pytest.raises(ArchiveIdNotFound):
            await storage.query_archive(ALICE, query, page)


async def test_expiry_removes_old_messages_of_every_user(storage: Storage) -> None:
    ids = await _fill(storage, 5)
    await storage.archive_message(BOB, ALICE, b"<old/>", T0, outgoing=False)
    kept = await storage.archive_message(BOB, ALICE, b"<new/>", T0 + timedelta(days=1), outgoing=False)
    assert await storage.expire_archive(T0 + timedelta(seconds=3)) == 4
    page = await storage.query_archive(ALICE, ALL, PageRequest(max=10))
    assert [m.id for m in page.messages] == ids[3:]
    assert [m.id for m in (await storage.query_archive(BOB, ALL, PageRequest(max=10))).messages] == [kept]
    assert await storage.expire_archive(T0) == 0
    with pytest.raises(ArchiveIdNotFound):
        await storage.query_archive(ALICE, ArchiveQuery(after_id=ids[0]), PageRequest(max=1))


async def test_naive_times_are_refused(storage: Storage) -> None:
    with pytest.raises(ValueError):
        await storage.archive_message(ALICE, BOB, b"<m/>", T0.replace(tzinfo=None), outgoing=True)
    with pytest.raises(ValueError):
        await storage.expire_archive(T0.replace(tzinfo=None))


async def test_prefs_default_and_round_trip(storage: Storage) -> None:
    assert await storage.get_archive_prefs(ALICE) == ArchivePrefs("always", (), ())
    prefs = ArchivePrefs("roster", (CAROL.with_resource("r"), BOB), (JID.parse("spam.example"),))
    stored = await storage.set_archive_prefs(ALICE.with_resource("pc"), prefs)
    assert stored == ArchivePrefs("roster", (BOB, CAROL), (JID.parse("spam.example"),))
    assert await storage.get_archive_prefs(ALICE) == stored
    assert await storage.set_archive_prefs(ALICE, ArchivePrefs("never")) == ArchivePrefs("never")
    assert await storage.get_archive_prefs(ALICE) == ArchivePrefs("never")
    assert await storage.get_archive_prefs(BOB) == ArchivePrefs()


async def test_prefs_refuse_an_ambiguous_jid_or_unknown_default(storage: Storage) -> None:
    with pytest.raises(ValueError):
        await storage.set_archive_prefs(ALICE, ArchivePrefs("always", (BOB,), (BOB.with_resource("x"),)))
    with pytest.raises(ValueError):
        await storage.set_archive_prefs(ALICE, ArchivePrefs("sometimes"))  # type: ignore[arg-type]
    assert await storage.get_archive_prefs(ALICE) == ArchivePrefs()


async def test_deleting_the_user_deletes_the_archive(storage: Storage) -> None:
    await storage.create_user(ALICE, "pw")
    await _fill(storage, 3)
    await storage.set_archive_prefs(ALICE, ArchivePrefs("never"))
    await storage.archive_message(BOB, ALICE, b"<m/>", T0, outgoing=False)
    assert await storage.delete_user(ALICE)
    assert await storage.count_archive(ALICE) == 0
    assert await storage.get_archive_prefs(ALICE) == ArchivePrefs()
    assert await storage.count_archive(BOB) == 1
