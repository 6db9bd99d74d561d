"""Records of the per-account data clients keep on the server: XML documents
(XEP-0049 private storage, the XEP-0054 vCard) and PEP nodes with their items
(XEP-0163). Backend-neutral, as :mod:`xmlchat.storage.base`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

# XEP-0060 §4.5 access models a PEP node may have (``roster`` and
# ``authorize`` are not offered).
AccessModel = Literal["presence", "open", "whitelist"]
ACCESS_MODELS: Final = ("presence", "open", "whitelist")


@dataclass(frozen=True, slots=True)
class PepNode:
    """One node of an account's PEP service and its configuration (XEP-0060 §16.4).

    ``persist``: False keeps only the last item (for delivery at login and
    subscription); True keeps up to ``max_items``."""

    name: str
    access: AccessModel = "presence"
    max_items: int = 1
    persist: bool = True

    @property
    def kept(self) -> int:
        """How many items the store keeps for this node."""
        return self.max_items if self.persist else 1


@dataclass(frozen=True, slots=True)
class PepItem:
    """A published item: its id, its payload (serialised XML) and when it was published."""

    id: str
    payload: bytes
    published: datetime


def check_pep_node(node: PepNode) -> PepNode:
    """ValueError for an access model not in :data:`ACCESS_MODELS` or max_items < 1."""
    if node.access not in ACCESS_MODELS:
        raise ValueError(f"unknown access model {node.access!r}")
    if node.max_items < 1:
        raise ValueError("max_items must be at least 1")
    return node
