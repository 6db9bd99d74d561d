"""Documents and PEP nodes (XEP-0049, XEP-0054, XEP-0163) of
:class:`~xmlchat.storage.memory.MemoryStorage`: the semantics of
:mod:`xmlchat.storage._personal`, on dicts keyed by the owner's bare JID string."""

from __future__ import annotations

from dataclasses import dataclass, field

from xmlchat.storage.personal import PepItem, PepNode


@dataclass
class MemoryPersonal:
    documents: dict[str, dict[str, bytes]] = field(default_factory=dict)
    nodes: dict[str, dict[str, PepNode]] = field(default_factory=dict)
    # Items per (owner, node), oldest first.
    items: dict[tuple[str, str], list[PepItem]] = field(default_factory=dict)

    def forget(self, jid: str) -> None:
        self.documents.pop(jid, None)
        for name in self.nodes.pop(jid, {}):
            self.items.pop((jid, name), None)

    def put_document(self, jid: str, key: str, data: bytes | None) -> None:
        if data is None:
            self.documents.get(jid, {}).pop(key, None)
        else:
            self.documents.setdefault(jid, {})[key] = data

    def put_node(self, jid: str, node: PepNode) -> None:
        self.nodes.setdefault(jid, {})[node.name] = node
        self._trim(jid, node)

    def delete_node(self, jid: str, name: str) -> bool:
        self.items.pop((jid, name), None)
        return self.nodes.get(jid, {}).pop(name, None) is not None

    def publish(self, jid: str, name: str, item: PepItem) -> None:
        node = self.nodes.get(jid, {}).get(name)
        if node is None:
            raise KeyError(name)
        items = [old for old in self.items.get((jid, name), []) if old.id != item.id]
        self.items[(jid, name)] = [*items, item]
        self._trim(jid, node)

    def get_items(self, jid: str, name: str, ids: list[str], limit: int | None) -> list[PepItem]:
        newest_first = reversed(self.items.get((jid, name), []))
        found = [item for item in newest_first if not ids or item.id in ids]
        return found if limit is None else found[:limit]

    def retract(self, jid: str, name: str, item_id: str) -> bool:
        items = self.items.get((jid, name), [])
        kept = [item for item in items if item.id != item_id]
        self.items[(jid, name)] = kept
        return len(kept) < len(items)

    def _trim(self, jid: str, node: PepNode) -> None:
        items = self.items.get((jid, node.name), [])
        self.items[(jid, node.name)] = items[-node.kept :]
