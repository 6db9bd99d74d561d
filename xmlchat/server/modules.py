"""Which feature modules the server runs, and what each is given.

One line per module: its context (a name, its store, the hosts and limits,
metrics) and the modules it builds on. This is the only place that knows
every module; a new feature is a module file plus a line here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from xmlchat.config import Config
from xmlchat.metrics import Metrics
from xmlchat.modules.announce import Announce
from xmlchat.modules.archive import Archive
from xmlchat.modules.avatars import AvatarConversion
from xmlchat.modules.blocking import Blocking
from xmlchat.modules.bookmarks import BookmarksCompat
from xmlchat.modules.carbons import Carbons
from xmlchat.modules.components import Components
from xmlchat.modules.csi import ClientState
from xmlchat.modules.disco import Disco
from xmlchat.modules.messages import Messages
from xmlchat.modules.muc import Muc
from xmlchat.modules.pep import Pep
from xmlchat.modules.ping import Ping
from xmlchat.modules.presence import Presence
from xmlchat.modules.private import PrivateStorage
from xmlchat.modules.roster import Contacts, Roster, RosterBook, Subscriptions
from xmlchat.modules.time import Time
from xmlchat.modules.vcard import VCards
from xmlchat.modules.version import Version
from xmlchat.routing.api import Module
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.hub import Hub
from xmlchat.storage import Storage

S = TypeVar("S")

# Extra modules an embedding application adds (tests use it too).
ModuleFactory = Callable[[Callable[[str], ModuleContext[Storage]]], Module]


def build_hub(
    config: Config,
    storage: Storage,
    metrics: Metrics,
    extra: Iterable[ModuleFactory] = (),
    contexts: list[ModuleContext[Any]] | None = None,
) -> Hub:
    """The hub with every module loaded; ``contexts`` collects the modules'
    contexts (a reload gives them the new limits)."""
    hub = Hub(config.hosts, storage.user_exists)
    made = contexts if contexts is not None else []

    def ctx(name: str, store: S) -> ModuleContext[S]:
        context = ModuleContext(name, hub, store, hosts=config.hosts, limits=config.limits, metrics=metrics)
        made.append(context)
        return context

    def stored(name: str) -> ModuleContext[Storage]:
        return ctx(name, storage)

    book = RosterBook(stored("roster"))
    subscriptions = Subscriptions(stored("subscriptions"), book)
    messages = Messages(stored("messages"), config.delivery)
    vcards, pep, private = VCards(stored("vcard")), Pep(stored("pep")), PrivateStorage(stored("private"))
    modules: list[Module] = [
        messages,
        subscriptions,
        Presence(stored("presence"), subscriptions),
        Roster(stored("roster"), book, subscriptions),
        Contacts(stored("contacts"), book, subscriptions),
        Blocking(stored("blocking")),
        vcards,
        private,
        pep,
        AvatarConversion(stored("avatar-conversion"), pep, vcards),
        BookmarksCompat(stored("bookmarks-compat"), pep, private),
        Carbons(ctx("carbons", None)),
        ClientState(ctx("csi", None)),
        Disco(ctx("disco", None)),
        Ping(ctx("ping", None)),
        Version(ctx("version", None)),
        Time(ctx("time", None)),
        Announce(stored("announce")),
    ]
    if config.archive.enabled:
        modules.append(Archive(stored("archive"), config.archive))
    if config.muc.enabled:
        modules.append(Muc(stored("muc"), config.muc, config.archive))
    if config.components.secrets:
        modules.append(Components(ctx("components", None), config.components.secrets, messages))
    modules += [factory(stored) for factory in extra]
    for module in modules:
        hub.load(module)
    return hub
