from __future__ import annotations

import pytest
from lxml import etree
from modules.fakes import Harness, iq_get, session

from xmlchat.errors import StanzaError
from xmlchat.modules.disco import INFO, ITEMS, Disco
from xmlchat.modules.ping import Ping
from xmlchat.routing.api import Identity, Registration, ServesDomain


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


async def test_the_servers_items_are_the_services_modules_list() -> None:
    """XEP-0030 §4.1: a client finds the room service in the server's items."""

    async def nowhere(*args: object) -> None:
        return None

    class Rooms:
        name = "rooms"

        def setup(self) -> list[Registration]:
            return [ServesDomain("conference", nowhere, name="Chat rooms"), ServesDomain("hidden", nowhere)]

    server, disco = _loaded()
    server.hub.load(Rooms())
    items = await disco.items(session(), iq_get(f"{{{ITEMS}}}query", to="localhost"))
    assert [(i.get("jid"), i.get("name")) for i in items] == [("conference.localhost", "Chat rooms")]
    # an account's items stay empty
    assert len(await disco.items(session(), iq_get(f"{{{ITEMS}}}query", to="alice@localhost"))) == 0
