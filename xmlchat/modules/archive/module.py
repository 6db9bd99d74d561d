"""XEP-0313 Message Archive Management (``urn:xmpp:mam:2``) with XEP-0359 stanza ids.

* **What is kept** (§3, §5.1.1): one-to-one messages of type chat or normal
  with a body, in the archive of the sender (their outgoing copy, taken by an
  :class:`InboundFilter` after blocking has had its say) and of each local
  recipient (a :class:`RouteFilter`, last in the recipient's chain). Messages
  with a XEP-0334 ``no-store``/``no-permanent-store`` hint are not, nor what the
  user's preferences (§5) exclude.
* **Stanza ids** (XEP-0359 §3): the recipient's copy carries
  ``<stanza-id by='user@host' id='…'/>``, the id its archive gave it. Any
  stanza-id a client put in claiming one of our JIDs as ``by`` is removed
  first (§3.3): only the server may vouch for an archive id.
* **Queries** (§4): a form (``with``, ``start``, ``end``, ``before-id``,
  ``after-id``, ``ids``) and XEP-0059 paging; each result goes to the querying
  session as a message, then the iq result carries ``<fin>``. Form discovery,
  metadata (§6) and preferences (§5) are iq gets and sets.
* **Retention**: a timer deletes messages older than ``retention_days``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from lxml import etree

from xmlchat.config import Archive as ArchiveSettings
from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID
from xmlchat.modules.archive import wire
from xmlchat.modules.archive.forms import EXTENDED, NS, form_template, parse_query
from xmlchat.routing.api import Feature, InboundFilter, IqHandler, OnStart, OnStop, Registration, RouteFilter
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.session import Session
from xmlchat.stanza import SID_NS, body_text, kind, to_bytes
from xmlchat.storage import (
    AccountStore,
    ArchiveIdNotFound,
    ArchivePage,
    ArchiveQuery,
    ArchiveStore,
    PageRequest,
    RosterItem,
)

QUERY: Final = f"{{{NS}}}query"
METADATA: Final = f"{{{NS}}}metadata"
PREFS: Final = f"{{{NS}}}prefs"
STANZA_ID: Final = f"{{{SID_NS}}}stanza-id"
# The native front end's history request (internal: not on the XMPP wire).
HISTORY_NS: Final = "urn:xmlchat:archive"
HISTORY: Final = f"{{{HISTORY_NS}}}history"
HINTS_NS: Final = "urn:xmpp:hints"
_NOT_STORED: Final = (f"{{{HINTS_NS}}}no-store", f"{{{HINTS_NS}}}no-permanent-store")
_ARCHIVED_TYPES: Final = frozenset({"chat", "normal"})
EXPIRY_INTERVAL: Final = 3600.0


class ArchiveModuleStore(ArchiveStore, AccountStore, Protocol):
    """The archives, whether an account exists, and rosters for default='roster'."""

    async def get_roster_item(self, user: JID, contact: JID) -> RosterItem | None: ...


class Archive:
    name = "archive"

    def __init__(
        self,
        ctx: ModuleContext[ArchiveModuleStore],
        settings: ArchiveSettings | None = None,
        expiry_interval: float = EXPIRY_INTERVAL,
    ) -> None:
        self.ctx = ctx
        self.settings = settings or ArchiveSettings()
        self._interval = expiry_interval
        self._expiry: asyncio.Task[None] | None = None

    def setup(self) -> list[Registration]:
        return [
            Feature(NS, account=True),
            Feature(EXTENDED, account=True),
            Feature(SID_NS, account=True),
            IqHandler("set", QUERY, self._query),
            IqHandler("get", QUERY, self._form),
            IqHandler("get", METADATA, self._metadata),
            IqHandler("get", PREFS, self._get_prefs),
            IqHandler("set", PREFS, self._set_prefs),
            IqHandler("get", HISTORY, self._history, internal=True),
            # Low priorities: after blocking, so a refused message is not kept.
            InboundFilter(self._outgoing, priority=-100, kinds=frozenset({"message"})),
            RouteFilter(self._incoming, priority=-100),
            OnStart(self._start),
            OnStop(self._stop),
        ]

    # ---- archiving

    async def _outgoing(self, session: Session, stanza: etree._Element) -> etree._Element:
        """The sender's copy. A message to oneself is kept once, as received."""
        if kind(stanza) != "message":
            return stanza
        _strip_stanza_ids(stanza, lambda by: by.domain in self.ctx.hosts)
        to = JID.parse_or_none(stanza.get("to"))
        if to is None or to.local is None or to.domain not in self.ctx.hosts or to.bare == session.jid.bare:
            return stanza
        if _archivable(stanza) and await self._wanted(session.jid.bare, to.bare):
            await self.ctx.store.archive_message(
                session.jid.bare, to, to_bytes(stanza), datetime.now(UTC), outgoing=True
            )
        return stanza

    async def _incoming(self, stanza: etree._Element, account: JID) -> etree._Element:
        """The recipient's copy, stamped with its archive id (XEP-0359 §3)."""
        if kind(stanza) != "message":
            return stanza
        _strip_stanza_ids(stanza, lambda by: by == account)  # §3.3
        sender = JID.parse_or_none(stanza.get("from"))
        if sender is None or not _archivable(stanza) or not await self._exists(account):
            return stanza
        if not await self._wanted(account, sender.bare):
            return stanza
        archive_id = await self.ctx.store.archive_message(
            account, sender, to_bytes(stanza), datetime.now(UTC), outgoing=False
        )
        etree.SubElement(stanza, STANZA_ID, by=str(account), id=archive_id, nsmap={None: SID_NS})
        return stanza

    async def _exists(self, account: JID) -> bool:
        """Only accounts have archives; the messages module refuses the rest."""
        return bool(self.ctx.sessions.sessions_of(account)) or await self.ctx.store.user_exists(account)

    async def _wanted(self, owner: JID, contact: JID) -> bool:
        """§5: the lists first, then the default (roster: a contact in the roster)."""
        prefs = await self.ctx.store.get_archive_prefs(owner)
        if contact in prefs.never:
            return False
        if contact in prefs.always or prefs.default == "always":
            return True
        if prefs.default == "never":
            return False
        return await self.ctx.store.get_roster_item(owner, contact) is not None

    # ---- queries (§4)

    async def _query(self, session: Session, iq: etree._Element) -> etree._Element:
        query = iq[0]
        filter_, request = parse_query(query, self.settings.max_page)
        owner = session.jid.bare
        page = await self._page(owner, filter_, request)
        queryid = query.get("queryid")
        for message in page.messages:
            self.ctx.deliver(session, wire.result_message(owner, session.jid, queryid, message))
        return wire.fin(page)

    async def _page(self, owner: JID, query: ArchiveQuery, request: PageRequest) -> ArchivePage:
        try:
            return await self.ctx.store.query_archive(owner, query, request)
        except ArchiveIdNotFound as e:
            # XEP-0313 §4.1.3, XEP-0059 §2.6: an id that is not in the archive.
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, f"no message {e} in the archive") from None

    async def _form(self, session: Session, iq: etree._Element) -> etree._Element:
        query = etree.Element(QUERY, nsmap={None: NS})
        query.append(form_template())
        return query

    async def _metadata(self, session: Session, iq: etree._Element) -> etree._Element:
        owner, everything = session.jid.bare, ArchiveQuery()
        first = await self._page(owner, everything, PageRequest(max=1))
        last = await self._page(owner, everything, PageRequest(max=1, last=True))
        return wire.metadata(next(iter(first.messages), None), next(iter(last.messages), None))

    async def _get_prefs(self, session: Session, iq: etree._Element) -> etree._Element:
        return wire.prefs_element(await self.ctx.store.get_archive_prefs(session.jid.bare))

    async def _set_prefs(self, session: Session, iq: etree._Element) -> etree._Element:
        """§5: the server answers with the preferences as it stored them."""
        prefs = wire.parse_prefs(iq[0])
        return wire.prefs_element(await self.ctx.store.set_archive_prefs(session.jid.bare, prefs))

    async def _history(self, session: Session, iq: etree._Element) -> etree._Element:
        """For the native front end: the last ``max`` messages (with ``with``,
        before ``before``), as ``<history complete=…>`` holding XEP-0313 results."""
        request = iq[0]
        with_ = JID.parse_or_none(request.get("with"))
        if request.get("with") and with_ is None:
            raise StanzaError(StanzaCondition.JID_MALFORMED, "bad JID in 'with'")
        max_ = _history_max(request.get("max"), self.settings.max_page)
        before = request.get("before") or None
        page = await self._page(
            session.jid.bare, ArchiveQuery(with_=with_), PageRequest(max_, before=before, last=before is None)
        )
        out = etree.Element(HISTORY, complete=str(page.complete).lower(), nsmap={None: HISTORY_NS})
        for message in page.messages:
            result = etree.SubElement(out, f"{{{NS}}}result", id=message.id, nsmap={None: NS})
            result.append(wire.forwarded(message))
        return out

    # ---- retention

    async def expire(self) -> int:
        """Delete every archive's messages older than the retention; how many."""
        cutoff = datetime.now(UTC) - timedelta(days=self.settings.retention_days)
        removed = await self.ctx.store.expire_archive(cutoff)
        if removed:
            self.ctx.log.info("archive: expired %d message(s) older than %s", removed, cutoff.isoformat())
        return removed

    async def _start(self) -> None:
        if self.settings.retention_days > 0 and self._expiry is None:
            self._expiry = asyncio.create_task(self._expire_forever(), name="archive-expiry")

    async def _stop(self) -> None:
        task, self._expiry = self._expiry, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _expire_forever(self) -> None:
        while True:
            try:
                await self.expire()
            except Exception:
                self.ctx.log.exception("archive: expiry failed; retrying in %.0f s", self._interval)
            await asyncio.sleep(self._interval)


def _history_max(text: str | None, max_page: int) -> int:
    """The native request's ``max``: absent is a full page, more is capped."""
    if not text:
        return max_page
    try:
        max_ = int(text)
    except ValueError:
        raise StanzaError(StanzaCondition.BAD_REQUEST, f"bad max {text!r}") from None
    if max_ < 0:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "max must not be negative")
    return min(max_, max_page)


def _archivable(stanza: etree._Element) -> bool:
    """§5.1.1: a one-to-one message with content worth keeping."""
    if stanza.get("type", "normal") not in _ARCHIVED_TYPES or body_text(stanza) is None:
        return False
    return not any(stanza.find(hint) is not None for hint in _NOT_STORED)  # XEP-0334 §4


def _strip_stanza_ids(stanza: etree._Element, ours: Callable[[JID], bool]) -> None:
    for sid in stanza.findall(STANZA_ID):
        by = JID.parse_or_none(sid.get("by"))
        if by is None or ours(by):
            stanza.remove(sid)
