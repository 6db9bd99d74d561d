"""The count the fault suite keeps: what senders were told, what recipients saw.

Issue 11's promise is "no acknowledged message is ever lost", and its other
half is that nothing is shown to a user twice. A :class:`Ledger` records, by
message id, every write by a sender (``sent``), every acknowledgement the
server gave it (``acked``) and every copy a recipient's client handed to its
user (``received``, over all its sessions and logins). :meth:`Ledger.check`
fails on

* an acknowledged id never received (**lost**),
* an id received more than once (**duplicate**: shown to a user twice),
* an id received that no sender wrote (the count itself is wrong).

A message sent but never acknowledged may be missing: the sender was never
told it arrived (a native client sees ``ConnectionLost`` and may retry).
Those are reported, not failed on. XMPP has no acknowledgement before
XEP-0198 stream management exists, so an XMPP sender's messages are only
ever ``sent``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Ledger:
    sent: Counter[str] = field(default_factory=Counter)
    acked: set[str] = field(default_factory=set)
    received: Counter[str] = field(default_factory=Counter)
    # Where each copy arrived ("bob/1": the recipient's first login), for the report.
    where: dict[str, list[str]] = field(default_factory=dict)

    def send(self, id_: str) -> None:
        """A sender wrote ``id_`` (again, if it retries)."""
        self.sent[id_] += 1

    def ack(self, id_: str) -> None:
        if id_ not in self.sent:
            raise AssertionError(f"ack for {id_!r}, which was never sent")
        self.acked.add(id_)

    def receive(self, id_: str, where: str = "") -> None:
        self.received[id_] += 1
        self.where.setdefault(id_, []).append(where)

    def has(self, id_: str) -> bool:
        return id_ in self.received

    @property
    def lost(self) -> list[str]:
        """Acknowledged to its sender, never shown to the recipient."""
        return sorted(self.acked - self.received.keys())

    @property
    def duplicates(self) -> dict[str, int]:
        return {id_: n for id_, n in sorted(self.received.items()) if n > 1}

    @property
    def unknown(self) -> list[str]:
        return sorted(self.received.keys() - self.sent.keys())

    @property
    def missing_unacked(self) -> list[str]:
        """Sent, never acknowledged, never received: allowed, reported."""
        return sorted(self.sent.keys() - self.acked - self.received.keys())

    @property
    def resent(self) -> int:
        return sum(n - 1 for n in self.sent.values())

    def summary(self) -> str:
        dup = self.duplicates
        return (
            f"sent {len(self.sent)} (re-sent {self.resent}), acked {len(self.acked)}, "
            f"received {len(self.received)} distinct / {sum(self.received.values())} copies; "
            f"LOST {len(self.lost)} acked, DUPLICATE {len(dup)} ids ({sum(dup.values()) - len(dup)} "
            f"extra copies), unknown {len(self.unknown)}; sent-unacked-missing {len(self.missing_unacked)}"
        )

    def check(self) -> None:
        """Fail on any lost, duplicated or unknown id, naming a few of each."""
        if self.lost or self.duplicates or self.unknown:
            examples = {
                "lost": self.lost[:5],
                "duplicates": {k: self.where[k] for k in list(self.duplicates)[:5]},
                "unknown": self.unknown[:5],
            }
            raise AssertionError(f"{self.summary()}\n  e.g. {examples}")
