"""Which nodes each session wants notifications of: XEP-0163 §4.3's
``+notify`` features, read from the session's XEP-0115 caps.

Caps are cached by ver: one disco#info per client version, not per login
(§4: a ver names the same features wherever it is announced). A ver is
believed only if the features hash to it (§5.4); one that does not is never
asked for again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Final

from lxml import etree

from xmlchat.jid import JID
from xmlchat.protocol import caps
from xmlchat.routing.session import Session
from xmlchat.stanza import make, new_id

NOTIFY: Final = "+notify"
DISCO_TIMEOUT: Final = 10.0
# Vers remembered, good or bad; past it the cache starts again (a client
# announcing random vers must not grow it without bound).
MAX_VERS: Final = 10_000
_RESULT_TYPES: Final = frozenset({"result", "error"})

# What to do once a session's interests are known (send it the last items).
OnKnown = Callable[[Session], None]


class Interests:
    def __init__(
        self, domain: str, deliver: Callable[[Session, etree._Element], bool], on_known: OnKnown
    ) -> None:
        self._domain = domain
        self._deliver = deliver
        self._on_known = on_known
        self._by_ver: dict[str, frozenset[str]] = {}  # ver -> nodes with +notify
        self._bad: set[str] = set()  # vers whose features did not hash to them
        self._ver_of: dict[JID, str] = {}  # full JID -> the ver it announced
        # iq id -> who was asked, and the answer
        self._asking: dict[str, tuple[JID, asyncio.Future[etree._Element | None]]] = {}
        self._waiting: dict[str, list[Session]] = {}  # ver -> sessions waiting for it
        self._tasks: set[asyncio.Task[None]] = set()

    def wants(self, session: Session, node: str) -> bool:
        ver = self._ver_of.get(session.jid)
        return ver is not None and node in self._by_ver.get(ver, ())

    def nodes_of(self, session: Session) -> frozenset[str]:
        ver = self._ver_of.get(session.jid)
        return frozenset() if ver is None else self._by_ver.get(ver, frozenset())

    @property
    def unresolved(self) -> bool:
        """Whether some ver is still being asked for (or checked)."""
        return bool(self._waiting)

    def forget(self, session: Session) -> None:
        self._ver_of.pop(session.jid, None)

    def presence(self, session: Session, presence: etree._Element) -> None:
        """An available broadcast presence: note its caps, ask for unknown ones."""
        announced = caps.from_presence(presence)
        if announced is None or announced.hash not in caps.HASHES or announced.ver in self._bad:
            return
        before = self._ver_of.get(session.jid)
        self._ver_of[session.jid] = announced.ver
        if announced.ver in self._by_ver:
            if before != announced.ver:
                self._on_known(session)
            return
        waiting = self._waiting.setdefault(announced.ver, [])
        waiting.append(session)
        if len(waiting) == 1:
            self._spawn(self._ask(session, announced))

    def answer(self, iq: etree._Element) -> bool:
        """An iq result or error from a session: True if it answered our disco#info."""
        if iq.get("type") not in _RESULT_TYPES:
            return False
        asked = self._asking.get(iq.get("id", ""))
        if asked is None or iq.get("from") != str(asked[0]):
            return False
        del self._asking[iq.get("id", "")]
        waiter = asked[1]
        if not waiter.done():
            waiter.set_result(iq if iq.get("type") == "result" else None)
        return True

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def _ask(self, session: Session, announced: caps.Caps) -> None:
        """§6.2: disco#info at node#ver of the session that announced it."""
        iq_id = f"caps-{new_id()}"  # unguessable: only the session asked can answer
        iq = make("iq", {"type": "get", "id": iq_id, "to": str(session.jid), "from": self._domain})
        etree.SubElement(
            iq, f"{{{caps.DISCO_INFO_NS}}}query", node=f"{announced.node}#{announced.ver}",
            nsmap={None: caps.DISCO_INFO_NS},
        )  # fmt: skip
        answer: asyncio.Future[etree._Element | None] = asyncio.get_running_loop().create_future()
        self._asking[iq_id] = (session.jid, answer)
        try:
            self._deliver(session, iq)
            async with asyncio.timeout(DISCO_TIMEOUT):
                result = await answer
        except TimeoutError:
            result = None
        finally:
            self._asking.pop(iq_id, None)
        self._learn(announced, result)

    def _learn(self, announced: caps.Caps, result: etree._Element | None) -> None:
        query = None if result is None else next(result.iterchildren(f"{{{caps.DISCO_INFO_NS}}}query"), None)
        waiting = self._waiting.pop(announced.ver, [])
        if query is None:
            return  # no answer: the next session announcing this ver asks again
        if len(self._by_ver) + len(self._bad) >= MAX_VERS:
            self._by_ver.clear()
            self._bad.clear()
        if caps.ver_of_disco_info(query, announced.hash) != announced.ver:
            self._bad.add(announced.ver)
            return
        features = (f.get("var", "") for f in query.iterchildren(f"{{{caps.DISCO_INFO_NS}}}feature"))
        self._by_ver[announced.ver] = frozenset(v[: -len(NOTIFY)] for v in features if v.endswith(NOTIFY))
        for session in waiting:
            if self._ver_of.get(session.jid) == announced.ver:
                self._on_known(session)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
