from __future__ import annotations

import pytest
from lxml import etree
from modules.fakes import Harness, iq_get, session

from xmlchat.config import Archive, Config
from xmlchat.errors import StanzaError
from xmlchat.metrics import Metrics
from xmlchat.modules.disco import INFO, ITEMS, Disco
from xmlchat.modules.ping import Ping
from xmlchat.protocol import caps
from xmlchat.routing.api import Identity, Registration, ServesDomain
from xmlchat.server.modules import build_hub
from xmlchat.storage import MemoryStorage


def _loaded() -> tuple[Harness, Disco]:
    server = Harness()
    disco = server.load(Disco)
    server.load(Ping)
    return server, disco


def _summary(query: etree._Element) -> tuple[list[tuple[str | None, str | None]], list[str | None]]:
    identities = [(i.get("category"), i.get("type")) for i in query.iter(f"{{{INFO}}}identity")]
    return identities, [f.get("var") for f in query.iter(f"{{{INFO}}}feature")]


async def test_the_server_is_server_im_with_every_registered_feature() -> None:
    server, disco = _loaded()
    query = await disco.info(session(), iq_get(f"{{{INFO}}}query", to="localhost"))
    identities, features = _summary(query)
    assert identities == [("server", "im")]
    assert features == sorted([INFO, ITEMS, "urn:xmpp:ping"])
    # Answered for other accounts too (RFC 6121 §8.5.2.1.3): the dispatcher checks they exist.
    assert server.registry.iq_handlers[("get", f"{{{INFO}}}query")].accounts


@pytest.mark.parametrize("to", [None, "alice@localhost", "bob@localhost"])
async def test_an_account_is_account_registered(to: str | None) -> None:
    _, disco = _loaded()
    query = await disco.info(session(), iq_get(f"{{{INFO}}}query", to=to))
    assert _summary(query) == ([("account", "registered")], [INFO])


async def test_no_items_and_no_nodes() -> None:
    _, disco = _loaded()
    items = await disco.items(session(), iq_get(f"{{{ITEMS}}}query"))
    assert len(items) == 0
    with pytest.raises(StanzaError) as e:
        await disco.info(session(), iq_get(f"{{{INFO}}}query", node="x"))
    assert e.value.condition == "item-not-found"


async def test_identities_other_modules_declare_are_the_servers_too() -> None:
    """XEP-0030 §3.1: the server lists every identity a module registered."""

    class Pep:
        name = "pep"

        def setup(self) -> list[Registration]:
            return [Identity("pubsub", "pep")]

    server, disco = _loaded()
    server.hub.load(Pep())
    query = await disco.info(session(), iq_get(f"{{{INFO}}}query", to="localhost"))
    identities, _ = _summary(query)
    assert identities == [("pubsub", "pep"), ("server", "im")]


async def test_a_service_that_names_itself_is_listed_with_its_name() -> None:
    """XEP-0030 §4.1: the room service says what it is; a component need not."""

    async def nowhere(*args: object) -> None:
        return None

    class Rooms:
        name = "rooms"

        def setup(self) -> list[Registration]:
            return [ServesDomain("conference", nowhere, name="Chat rooms"), ServesDomain("echo", nowhere)]

    server, disco = _loaded()
    server.hub.load(Rooms())
    items = await disco.items(session(), iq_get(f"{{{ITEMS}}}query", to="localhost"))
    assert [(i.get("jid"), i.get("name")) for i in items] == [
        ("conference.localhost", "Chat rooms"),
        ("echo.localhost", None),
    ]


async def test_the_caps_node_answers_what_the_caps_hash() -> None:
    """XEP-0115 §6.2: info at ``node#ver`` is the server's own, and hashes to ver."""
    server, disco = _loaded()
    ours = server.registry.server_caps()
    at_node = await disco.info(
        session(), iq_get(f"{{{INFO}}}query", to="localhost", node=f"{ours.node}#{ours.ver}")
    )
    assert at_node.get("node") == f"{ours.node}#{ours.ver}"
    assert _summary(at_node) == _summary(
        await disco.info(session(), iq_get(f"{{{INFO}}}query", to="localhost"))
    )
    assert caps.ver_of_disco_info(at_node, "sha-1") == ours.ver
    with pytest.raises(StanzaError) as e:
        await disco.info(session(), iq_get(f"{{{INFO}}}query", to="localhost", node=f"{ours.node}#stale"))
    assert e.value.condition == "item-not-found"


def test_every_iq_namespace_a_client_can_use_is_a_disco_feature() -> None:
    """Disco#info lists every feature the server has: each namespace some module
    answers iqs in (XEP-0030 §3), on the server or on accounts. The roster is
    the exception every server makes: RFC 6121 needs no feature for it."""
    config = Config(archive=Archive(enabled=True))
    registry = build_hub(config, MemoryStorage(), Metrics.create(config.metrics)).registry
    answered = {
        tag.partition("}")[0].lstrip("{")
        for (_, tag), handler in registry.iq_handlers.items()
        if not handler.internal
    }
    listed = set(registry.features) | set(registry.account_features)
    # XEP-0060 §10: pubsub is listed as its features, http://jabber.org/protocol/pubsub#publish …
    unlisted = {
        ns
        for ns in answered
        if not any(var == ns or var.startswith(f"{ns.split('#')[0]}#") for var in listed)
    }
    assert unlisted == {"jabber:iq:roster"}


async def test_the_servers_items_are_the_domains_modules_serve() -> None:
    """XEP-0030 §4.1: a component (XEP-0114) or room service is found here."""

    class Service:
        name = "service"

        def setup(self) -> list[Registration]:
            async def ignore(*_: object) -> None: ...

            return [ServesDomain("echo", ignore)]

    server, disco = _loaded()
    server.hub.load(Service())
    items = await disco.items(session(), iq_get(f"{{{ITEMS}}}query", to="localhost"))
    assert [item.get("jid") for item in items] == ["echo.localhost"]
    mine = await disco.items(session(), iq_get(f"{{{ITEMS}}}query", to="alice@localhost"))
    assert len(mine) == 0
