"""What a store promises: one Protocol per kind of state, and :class:`Storage`, all of them.

The server and its modules depend on these, never on a backend. Two backends
implement them with the same semantics: :class:`~xmlchat.storage.sqlite.SqliteStorage`
(the server's) and :class:`~xmlchat.storage.memory.MemoryStorage` (for tests).

Every JID argument naming a user or a contact is reduced to its bare form
unless a method says otherwise; blocklist items are the exception (XEP-0191
items may be full JIDs). Lookups of JIDs that were never stored find nothing
rather than raising. After ``close()`` every call raises RuntimeError.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from xmlchat.jid import JID
from xmlchat.storage.base import (
    BLOCKLIST_LIMIT,
    ArchivePage,
    ArchivePrefs,
    ArchiveQuery,
    MessageOrigin,
    OfflineMessage,
    PageRequest,
    RosterChange,
    RosterItem,
    ScramCredentials,
    StoredRoom,
)
from xmlchat.storage.personal import PepItem, PepNode


class AccountStore(Protocol):
    """Accounts and their SCRAM keys (RFC 5802, RFC 7677); passwords are never kept."""

    async def create_user(self, jid: JID, password: str) -> None:
        """Raises :class:`UserExists`, or ValueError if SASLprep rejects the password
        or ``jid`` has no localpart."""
        ...

    async def set_password(self, jid: JID, password: str) -> None:
        """Replace every SCRAM key; raises :class:`NoSuchUser`."""
        ...

    async def delete_user(self, jid: JID) -> bool:
        """Delete the account with its roster, subscription requests, offline
        messages, blocklist, archive, documents and PEP nodes, all or nothing;
        False if there was no account."""
        ...

    async def user_exists(self, jid: JID) -> bool:
        """Whether ``jid``'s bare form is an account."""
        ...

    async def list_users(self, host: str | None = None) -> list[JID]:
        """Bare JIDs, sorted by their string form; only ``host``'s when given."""
        ...

    async def count_users(self) -> int:
        """How many accounts there are, on every host (for metrics and stats)."""
        ...

    async def get_scram(self, jid: JID, mechanism: str) -> ScramCredentials | None:
        """The keys for ``mechanism``, or None (no account, or a mechanism not kept)."""
        ...

    async def check_password(self, jid: JID, password: str) -> bool:
        """For PLAIN: hash ``password`` with the stored salt and compare StoredKeys.

        Costs the same for unknown users; False for a password SASLprep rejects.
        """
        ...


class RosterStore(Protocol):
    """Rosters (RFC 6121 §2), versioned (§2.6), and pending inbound subscription
    requests (§3.1.3). Neither needs the owner to have an account."""

    async def get_roster(self, user: JID) -> tuple[list[RosterItem], int]:
        """Items sorted by contact JID, and the roster version (0 if never changed)."""
        ...

    async def get_roster_item(self, user: JID, contact: JID) -> RosterItem | None:
        """The item for ``contact``'s bare JID, or None."""
        ...

    async def put_roster_item(self, user: JID, item: RosterItem) -> int:
        """Insert or replace the item for ``item.jid`` (kept bare); returns the new version.

        Raises ValueError for a subscription outside :data:`SUBSCRIPTIONS`.
        """
        ...

    async def delete_roster_item(self, user: JID, contact: JID) -> int:
        """Returns the new version (unchanged if there was no such item)."""
        ...

    async def apply_roster_changes(self, changes: Sequence[RosterChange]) -> dict[JID, int]:
        """Apply ``changes`` in order, in one transaction: all of them or none.

        Returns the new version of each roster an item change names (bare JID
        keys): bumped once per call if any of its items changed, else as it was,
        as :meth:`delete_roster_item` of a missing item. Pending requests are
        not part of the roster and bump nothing. Raises ValueError, changing
        nothing, for a subscription outside :data:`SUBSCRIPTIONS` or a second
        item change to one roster (see
        :func:`~xmlchat.storage.base.checked_roster_changes`).
        """
        ...

    async def add_subscription_request(self, user: JID, contact: JID, stanza: bytes) -> None:
        """Keep ``contact``'s request to ``user``; a repeat replaces the stanza
        but keeps the request's place in the order."""
        ...

    async def get_subscription_requests(self, user: JID) -> list[tuple[JID, bytes]]:
        """Oldest first."""
        ...

    async def delete_subscription_request(self, user: JID, contact: JID) -> None:
        """Forget ``contact``'s request, if any."""
        ...


class OfflineStore(Protocol):
    """Messages kept for users who are offline (XEP-0160)."""

    async def store_offline(
        self,
        to: JID,
        stanza: bytes,
        received: datetime,
        limit: int,
        origin: MessageOrigin | None = None,
    ) -> int:
        """Queue ``stanza``; returns its id, larger than any id given before (ids
        are never reused). Raises :class:`OfflineQueueFull` if ``to`` already has
        ``limit`` messages, ValueError if ``received`` is naive (kept as UTC).

        With ``origin``, the check and record of the sender's message id are in
        the same transaction as the write: a second message with the same
        (sender, id) within ``origin.window`` seconds raises
        :class:`DuplicateMessage` and stores nothing, across restarts too.
        Writes of one event-loop turn may share one commit (group commit)."""
        ...

    async def fetch_offline(
        self, to: JID, after_id: int = 0, limit: int | None = None
    ) -> list[OfflineMessage]:
        """Oldest first, those with ids > ``after_id``, at most ``limit`` (a page
        of a replay); nothing is deleted (see :meth:`delete_offline`)."""
        ...

    async def delete_offline(self, to: JID, up_to_id: int) -> None:
        """Delete ``to``'s messages with ids <= ``up_to_id``, once they are delivered."""
        ...

    async def delete_offline_ids(self, to: JID, ids: Sequence[int]) -> None:
        """Delete those of ``to``'s messages (each acknowledged by a client);
        ids already gone are ignored."""
        ...

    async def count_offline(self, to: JID | None = None) -> int:
        """Messages waiting for ``to``, or for everyone when None."""
        ...


class QueuedOfflineStore(Protocol):
    """An offline store that can queue a write without waiting for its commit,
    so a client's burst of messages shares one commit and its acks go out
    together (:mod:`xmlchat.routing.pipeline`). Optional: the messages module
    uses it where the store has it, and awaits ``store_offline`` elsewhere."""

    def queue_offline(
        self,
        to: JID,
        stanza: bytes,
        received: datetime,
        limit: int,
        origin: MessageOrigin | None,
        done: Callable[[int, BaseException | None], None],
    ) -> None:
        """As :meth:`OfflineStore.store_offline`, its write queued before this
        returns; once committed, ``done(id, None)``, or ``done(0, exception)``
        with what that raises, never before this returns. ``done`` is called
        in the order of the calls: a later write never gets a smaller id,
        nor is told first."""
        ...


class BlocklistStore(Protocol):
    """Each user's blocked JIDs (XEP-0191).

    Items are kept as given, bare, full or a domain (§3.3), and matched by
    :func:`~xmlchat.storage.base.blocking_items`: a blocked bare JID blocks every
    resource, a blocked full JID only that resource, a blocked domain every JID
    at it. The owner ``user`` is reduced to bare and needs no account.
    """

    async def get_blocklist(self, user: JID) -> list[JID]:
        """The items, sorted by their string form."""
        ...

    async def block(
        self, user: JID, jids: Sequence[JID], *, limit: int = BLOCKLIST_LIMIT
    ) -> list[JID]:
        """Add ``jids``; returns those not blocked before, in the given order, once each.

        The cap is the ``limit`` argument (default :data:`BLOCKLIST_LIMIT`): if the
        new items would take the list past it, raises :class:`BlocklistFull` and
        adds none.
        """
        ...

    async def unblock(self, user: JID, jids: Sequence[JID]) -> list[JID]:
        """Remove ``jids`` (exact items: unblocking a bare JID leaves its full JIDs);
        returns those that were there, in the given order, once each."""
        ...

    async def unblock_all(self, user: JID) -> list[JID]:
        """Empty the list; returns what it held, sorted by string form."""
        ...

    async def is_blocked(self, user: JID, contact: JID) -> bool:
        """Whether an item blocks ``contact``; pass its full JID when known, since
        a bare one is not matched by items naming its resources."""
        ...


class ArchiveStore(Protocol):
    """Each user's message archive (XEP-0313) and archiving preferences (§5).

    ``user`` and ``with_`` are reduced to bare JIDs; the owner needs no account.
    Archive order is the order :meth:`archive_message` was called in, whatever
    the stamps; ids are unique in the whole store and never reused.
    """

    async def archive_message(
        self, user: JID, with_: JID, stanza: bytes, stamp: datetime, *, outgoing: bool
    ) -> str:
        """Append ``stanza`` to ``user``'s archive; returns its new archive id
        (:func:`~xmlchat.storage.base.new_archive_id`). ValueError if ``stamp`` is
        naive (kept as UTC)."""
        ...

    async def query_archive(self, user: JID, query: ArchiveQuery, page: PageRequest) -> ArchivePage:
        """The page of ``user``'s messages matching ``query``, in archive order.
        Raises :class:`ArchiveIdNotFound` if an after/before id of ``query`` or
        ``page`` is not in this user's archive; ValueError for a negative max."""
        ...

    async def count_archive(self, user: JID, query: ArchiveQuery | None = None) -> int:
        """How many of ``user``'s messages match ``query`` (all of them when None)."""
        ...

    async def expire_archive(self, older_than: datetime) -> int:
        """Delete every user's messages stamped before ``older_than``; returns how many."""
        ...

    async def get_archive_prefs(self, user: JID) -> ArchivePrefs:
        """The stored preferences, or the defaults (archive always, no lists)."""
        ...

    async def set_archive_prefs(self, user: JID, prefs: ArchivePrefs) -> ArchivePrefs:
        """Replace the preferences; returns them as stored (bare JIDs, sorted).
        ValueError for an unknown default or a JID in both lists."""
        ...


class RoomStore(Protocol):
    """Persistent XEP-0045 rooms: configuration, affiliations and subject
    (never occupants, who are gone after a restart). A room needs no account."""

    async def save_room(self, room: StoredRoom) -> None:
        """Insert or replace the whole record of ``room.jid`` (kept bare), in one
        transaction. ValueError (changing nothing) for an affiliation outside
        :data:`~xmlchat.storage.base.ROOM_AFFILIATIONS` or a JID without localpart."""
        ...

    async def delete_room(self, room: JID) -> bool:
        """Forget the room; False if it was not stored."""
        ...

    async def load_rooms(self, service: str | None = None) -> list[StoredRoom]:
        """Every stored room, sorted by JID; only those on the domain ``service`` when given."""
        ...


class DocumentStore(Protocol):
    """One XML document per (user, key), kept for the user alone: XEP-0049
    private storage (a key per namespace) and the XEP-0054 vCard."""

    async def get_document(self, user: JID, key: str) -> bytes | None:
        """The stored bytes, or None if nothing is stored under ``key``."""
        ...

    async def put_document(self, user: JID, key: str, data: bytes | None) -> None:
        """Store ``data`` under ``key``, replacing what was there; None deletes it."""
        ...


class PepStore(Protocol):
    """Each account's PEP nodes (XEP-0163) and their items, newest first.

    Item ids are unique per node; publishing an existing id replaces the item
    and makes it the newest. A node keeps at most :attr:`PepNode.kept` items:
    publishing past it drops the oldest.
    """

    async def get_pep_node(self, user: JID, node: str) -> PepNode | None:
        ...

    async def list_pep_nodes(self, user: JID) -> list[PepNode]:
        """Sorted by name."""
        ...

    async def put_pep_node(self, user: JID, node: PepNode) -> None:
        """Create or reconfigure ``node``; items past its new limit are dropped.
        ValueError for an invalid configuration (:func:`check_pep_node`)."""
        ...

    async def delete_pep_node(self, user: JID, node: str) -> bool:
        """Delete the node and its items; False if there was none."""
        ...

    async def publish_pep_item(self, user: JID, node: str, item: PepItem) -> None:
        """Store ``item`` as the node's newest. KeyError if the node does not exist."""
        ...

    async def get_pep_items(
        self, user: JID, node: str, *, ids: Sequence[str] = (), limit: int | None = None
    ) -> list[PepItem]:
        """Newest first: those named by ``ids`` (all when empty), at most ``limit``."""
        ...

    async def retract_pep_item(self, user: JID, node: str, item_id: str) -> bool:
        """Remove one item; False if the node has no such item."""
        ...


class Storage(
    AccountStore, RosterStore, OfflineStore, BlocklistStore, ArchiveStore, RoomStore, DocumentStore, PepStore,
    Protocol,
):
    """Everything the server keeps; what it is given at start-up."""

    async def close(self) -> None:
        """Release the backend; idempotent. Later calls raise RuntimeError."""
        ...
