"""Documents (XEP-0049, XEP-0054) and PEP nodes (XEP-0163), against both backends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from storage.common import ALICE, BOB

from xmlchat.storage import PepItem, PepNode, Storage

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _item(item_id: str) -> PepItem:
    return PepItem(item_id, f"<p>{item_id}</p>".encode(), WHEN)


async def test_documents_are_per_user_and_key(storage: Storage) -> None:
    assert await storage.get_document(ALICE, "vcard") is None
    await storage.put_document(ALICE.with_resource("x"), "vcard", b"<vCard/>")
    await storage.put_document(ALICE, "private:a", b"<a/>")
    assert await storage.get_document(ALICE, "vcard") == b"<vCard/>"
    assert await storage.get_document(BOB, "vcard") is None
    await storage.put_document(ALICE, "vcard", b"<vCard><FN>A</FN></vCard>")
    assert await storage.get_document(ALICE, "vcard") == b"<vCard><FN>A</FN></vCard>"
    await storage.put_document(ALICE, "vcard", None)
    assert await storage.get_document(ALICE, "vcard") is None
    assert await storage.get_document(ALICE, "private:a") == b"<a/>"


async def test_items_are_newest_first_and_a_republished_id_moves_up(storage: Storage) -> None:
    await storage.put_pep_node(ALICE, PepNode("n", max_items=3))
    for item_id in ("1", "2", "3"):
        await storage.publish_pep_item(ALICE, "n", _item(item_id))
    await storage.publish_pep_item(ALICE, "n", _item("1"))
    assert [i.id for i in await storage.get_pep_items(ALICE, "n")] == ["1", "3", "2"]
    assert [i.id for i in await storage.get_pep_items(ALICE, "n", limit=1)] == ["1"]
    assert [i.id for i in await storage.get_pep_items(ALICE, "n", ids=["2", "9"])] == ["2"]
    item = (await storage.get_pep_items(ALICE, "n", ids=["2"]))[0]
    assert item == _item("2")


async def test_max_items_drops_the_oldest_and_persist_false_keeps_one(storage: Storage) -> None:
    await storage.put_pep_node(ALICE, PepNode("n", max_items=2))
    for item_id in ("1", "2", "3"):
        await storage.publish_pep_item(ALICE, "n", _item(item_id))
    assert [i.id for i in await storage.get_pep_items(ALICE, "n")] == ["3", "2"]
    await storage.put_pep_node(ALICE, PepNode("n", max_items=5, persist=False))
    assert [i.id for i in await storage.get_pep_items(ALICE, "n")] == ["3"]
    assert await storage.get_pep_node(ALICE, "n") == PepNode("n", max_items=5, persist=False)


async def test_retract_delete_and_list(storage: Storage) -> None:
    await storage.put_pep_node(ALICE, PepNode("b", access="whitelist"))
    await storage.put_pep_node(ALICE, PepNode("a", access="open"))
    assert [n.name for n in await storage.list_pep_nodes(ALICE)] == ["a", "b"]
    assert await storage.list_pep_nodes(BOB) == []
    await storage.publish_pep_item(ALICE, "a", _item("x"))
    assert not await storage.retract_pep_item(ALICE, "a", "y")
    assert await storage.retract_pep_item(ALICE, "a", "x")
    assert await storage.get_pep_items(ALICE, "a") == []
    await storage.publish_pep_item(ALICE, "a", _item("x"))
    assert await storage.delete_pep_node(ALICE, "a")
    assert not await storage.delete_pep_node(ALICE, "a")
    assert await storage.get_pep_node(ALICE, "a") is None
    with pytest.raises(KeyError):
        await storage.publish_pep_item(ALICE, "a", _item("x"))
    await storage.put_pep_node(ALICE, PepNode("a"))
    assert await storage.get_pep_items(ALICE, "a") == []  # the old items went with the node


async def test_invalid_node_configurations_are_refused(storage: Storage) -> None:
    with pytest.raises(ValueError):
        await storage.put_pep_node(ALICE, PepNode("n", max_items=0))
    with pytest.raises(ValueError):
        await storage.put_pep_node(ALICE, PepNode("n", access="roster"))  # type: ignore[arg-type]
    assert await storage.get_pep_node(ALICE, "n") is None


async def test_deleting_the_account_deletes_its_documents_and_nodes(storage: Storage) -> None:
    await storage.create_user(ALICE, "pw")
    await storage.put_document(ALICE, "vcard", b"<vCard/>")
    await storage.put_pep_node(ALICE, PepNode("n"))
    await storage.publish_pep_item(ALICE, "n", _item("x"))
    assert await storage.delete_user(ALICE)
    assert await storage.get_document(ALICE, "vcard") is None
    assert await storage.list_pep_nodes(ALICE) == []
    await storage.put_pep_node(ALICE, PepNode("n"))
    assert await storage.get_pep_items(ALICE, "n") == []
