"""The native client's requests that wait for an answer, and how answers find them.

A message waits for its ``<ack/>``, a blocklist request for its ``<blocklist/>`` and
a history request for its ``<history-result/>``, all matched by id, as is an
``<error/>`` naming the request it refuses. The contacts answer carries no id: one
contacts request is answered at a time, and an error that names no waiting request
goes to it (docs/native-protocol.md).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from lxml import etree

from xmlchat.client.native_types import (
    Ack,
    ArchivedMessage,
    ConnectionLost,
    HistoryPage,
    ServerError,
    parse_time,
)
from xmlchat.protocol.native import NS

_NS: Final = f"{{{NS}}}"

Contacts = list[tuple[str, bool]]


class PendingRequests:
    def __init__(self) -> None:
        self._acks: dict[str, asyncio.Future[Ack]] = {}
        self._blocklists: dict[str, asyncio.Future[list[str]]] = {}
        self._histories: dict[str, asyncio.Future[HistoryPage]] = {}
        self._contacts: asyncio.Future[Contacts] | None = None

    def expect_ack(self, id_: str) -> asyncio.Future[Ack]:
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._acks[id_] = future
        return future

    def ack(self, id_: str, time: str) -> None:
        future = self._acks.pop(id_, None)
        if future is not None and not future.done():
            future.set_result(Ack(id_, parse_time(time)))

    def expect_blocklist(self, id_: str) -> asyncio.Future[list[str]]:
        future: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._blocklists[id_] = future
        return future

    def forget_blocklist(self, id_: str) -> None:
        self._blocklists.pop(id_, None)

    def blocklist(self, id_: str, jids: list[str]) -> bool:
        """Answer request ``id_``; False if none waits for it (a push, or the get after login)."""
        future = self._blocklists.pop(id_, None)
        if future is None:
            return False
        if not future.done():
            future.set_result(jids)
        return True

    def expect_history(self, id_: str) -> asyncio.Future[HistoryPage]:
        future: asyncio.Future[HistoryPage] = asyncio.get_running_loop().create_future()
        self._histories[id_] = future
        return future

    def forget_history(self, id_: str) -> None:
        self._histories.pop(id_, None)

    def history(self, el: etree._Element) -> None:
        """A ``<history-result>``: answer the request it names."""
        future = self._histories.pop(el.findtext(f"{_NS}id") or "", None)
        if future is not None and not future.done():
            messages = [_archived(m) for m in el.iterfind(f"{_NS}message")]
            future.set_result(HistoryPage(messages, el.findtext(f"{_NS}complete") == "true"))

    def expect_contacts(self) -> asyncio.Future[Contacts]:
        self._contacts = asyncio.get_running_loop().create_future()
        return self._contacts

    def contacts(self, contacts: Contacts) -> None:
        if self._contacts is not None and not self._contacts.done():
            self._contacts.set_result(contacts)

    def fail(self, error: ServerError) -> bool:
        """Fail the request the error names, else a waiting contacts request; False if neither."""
        future: asyncio.Future[Any] | None = None
        if error.ref:
            future = (
                self._acks.pop(error.ref, None)
                or self._blocklists.pop(error.ref, None)
                or self._histories.pop(error.ref, None)
            )
        if future is not None and not future.done():
            future.set_exception(error)
        elif self._contacts is not None and not self._contacts.done():
            self._contacts.set_exception(error)
        else:
            return False
        return True

    def connection_lost(self, why: str) -> None:
        """Fail every request matched by id: its answer can no longer come."""
        waiting: list[asyncio.Future[Any]] = [
            *self._acks.values(),
            *self._blocklists.values(),
            *self._histories.values(),
        ]
        for future in waiting:
            if not future.done():
                future.set_exception(ConnectionLost(why))
        self._acks.clear()
        self._blocklists.clear()
        self._histories.clear()


def _archived(el: etree._Element) -> ArchivedMessage:
    def text(name: str) -> str:
        return el.findtext(f"{_NS}{name}") or ""

    id_, time = el.findtext(f"{_NS}id"), parse_time(text("time"))
    return ArchivedMessage(text("archive-id"), id_, text("from"), text("to"), time, text("body"))
