"""XEP-0280 message carbons on the server's hub with an in-memory store:
who gets the message, who gets a copy, and that nobody gets two."""

from __future__ import annotations

import pytest
from lxml import etree
from modules.blocking_world import ALICE, BOB, World, message
from modules.fakes import Recorder

from xmlchat.errors import StanzaError
from xmlchat.modules.blocking import BLOCK
from xmlchat.modules.blocking import NS as BLOCKING_NS
from xmlchat.modules.carbons import DISABLE, ENABLE, FORWARDED, NO_COPY, NS, PRIVATE, RECEIVED, SENT
from xmlchat.routing.session import Session
from xmlchat.stanza import BODY, make

CHATSTATES = "http://jabber.org/protocol/chatstates"
Clients = dict[str, tuple[Session, Recorder]]


def carbons(recorder: Recorder, how: str) -> list[str]:
    """What the ``how`` carbons a resource got carry (body, or '-'), checking each wrapper (§7, §8)."""
    out = []
    for stanza in recorder.stanzas:
        wrapper = stanza.find(how)
        if wrapper is None:
            continue
        assert stanza.get("from") == "alice@localhost"  # the user's bare JID
        inner = wrapper.find(f"{FORWARDED}/{{jabber:client}}message")
        assert inner is not None and stanza.get("type") == inner.get("type")
        out.append(inner.findtext(BODY) or "-")
    return out


def direct(recorder: Recorder) -> list[str]:
    """What the messages a resource got itself (not as carbons) carry."""
    return [
        s.findtext(BODY) or "-"
        for s in recorder.stanzas
        if s.tag == "{jabber:client}message" and s.find(RECEIVED) is None and s.find(SENT) is None
    ]


def everything(clients: Clients) -> dict[str, tuple[list[str], list[str], list[str]]]:
    """Per resource: (messages, received carbons, sent carbons)."""
    return {n: (direct(r), carbons(r, RECEIVED), carbons(r, SENT)) for n, (_, r) in clients.items()}


async def enable(world: World, session: Session, tag: str = ENABLE) -> etree._Element:
    recorder = session.transport
    assert isinstance(recorder, Recorder)
    iq = make("iq", {"type": "set", "id": "c1"})
    etree.SubElement(iq, tag, nsmap={None: NS})
    await world.send(session, iq)
    return recorder.stanzas.pop()


async def setup(priority: int | None = None) -> tuple[World, Clients]:
    """alice on phone and laptop (carbons on) and tablet (off); bob on pc.
    ``priority``: a fourth resource, 'away', carbons on, with that priority."""
    world = World()
    await world.users("alice@localhost", "bob@localhost")
    await world.befriend(ALICE, BOB)
    clients = {name: await world.login(f"alice@localhost/{name}") for name in ("phone", "laptop", "tablet")}
    if priority is not None:
        away, recorder = await world.login("alice@localhost/away", available=False)
        presence = make("presence")
        etree.SubElement(presence, "{jabber:client}priority").text = str(priority)
        await world.send(away, presence)
        clients["away"] = (away, recorder)
    clients["bob"] = await world.login("bob@localhost/pc")
    for name in ("phone", "laptop", "away"):
        if name in clients:
            assert (await enable(world, clients[name][0])).get("type") == "result"
    for _, recorder in clients.values():
        recorder.stanzas.clear()
    return world, clients


NOTHING: tuple[list[str], list[str], list[str]] = ([], [], [])


async def test_enable_and_disable_answer_a_result_each_time() -> None:
    world, clients = await setup()
    phone = clients["phone"][0]
    for tag in (ENABLE, ENABLE, DISABLE, DISABLE, ENABLE):  # §10.1: repeats are no error
        reply = await enable(world, phone, tag)
        assert (reply.tag, reply.get("type"), reply.get("id")) == ("{jabber:client}iq", "result", "c1")
    assert NS in world.hub.registry.features


async def test_received_to_a_full_jid_is_copied_to_the_other_enabled_resources() -> None:
    world, clients = await setup()
    await world.send(clients["bob"][0], message("alice@localhost/phone", "hi"))
    assert everything(clients) == {
        "phone": (["hi"], [], []),
        "laptop": ([], ["hi"], []),
        "tablet": NOTHING,  # carbons off
        "bob": NOTHING,
    }
    carbon = clients["laptop"][1].stanzas[0]
    assert carbon.get("to") == "alice@localhost/laptop"
    inner = carbon.find(f"{RECEIVED}/{FORWARDED}/{{jabber:client}}message")
    assert inner is not None
    assert (inner.get("from"), inner.get("to")) == ("bob@localhost/pc", "alice@localhost/phone")


async def test_received_to_the_bare_jid_copies_only_to_who_did_not_get_it() -> None:
    world, clients = await setup(priority=-1)
    await world.send(clients["bob"][0], message("alice@localhost", "hi"))
    assert everything(clients) == {
        "phone": (["hi"], [], []),
        "laptop": (["hi"], [], []),  # got it under RFC 6121: no copy
        "tablet": (["hi"], [], []),
        "away": ([], ["hi"], []),  # negative priority (§8.5.2.1.1): a copy instead
        "bob": NOTHING,
    }


async def test_sent_is_copied_to_the_other_enabled_resources() -> None:
    world, clients = await setup()
    await world.send(clients["phone"][0], message("bob@localhost", "hello"))
    assert everything(clients) == {
        "phone": NOTHING,  # §8: not to the sender
        "laptop": ([], [], ["hello"]),
        "tablet": NOTHING,
        "bob": (["hello"], [], []),
    }


async def test_sent_from_a_resource_without_carbons_is_copied_too() -> None:
    world, clients = await setup()
    await world.send(clients["tablet"][0], message("bob@localhost", "x"))  # §8: irrespective of enabling
    assert [everything(clients)[n][2] for n in ("phone", "laptop", "tablet")] == [["x"], ["x"], []]


async def test_private_is_never_copied_and_is_removed_on_delivery() -> None:
    world, clients = await setup()
    for sender, to in (("phone", "bob@localhost"), ("bob", "alice@localhost/phone")):
        stanza = message(to, f"secret from {sender}")
        etree.SubElement(stanza, PRIVATE, nsmap={None: NS})
        await world.send(clients[sender][0], stanza)
    got = everything(clients)
    assert got["laptop"] == NOTHING and got["tablet"] == NOTHING
    assert got["bob"][0] == ["secret from phone"] and got["phone"][0] == ["secret from bob"]
    for name in ("bob", "phone"):
        assert clients[name][1].stanzas[0].find(PRIVATE) is None  # §9: removed by the receiving server


async def test_no_copy_hint_is_never_copied() -> None:
    world, clients = await setup()
    for sender, to in (("phone", "bob@localhost"), ("bob", "alice@localhost/phone")):
        stanza = message(to, "hint")
        etree.SubElement(stanza, NO_COPY, nsmap={None: "urn:xmpp:hints"})
        await world.send(clients[sender][0], stanza)
    assert everything(clients)["laptop"] == NOTHING


@pytest.mark.parametrize(
    ("type_", "body", "state", "copied"),
    [
        ("chat", "b", None, True),
        ("chat", None, "composing", True),  # §10.2: chat states are copied, intentionally
        ("normal", "b", None, True),
        (None, "b", None, True),  # no type is normal
        ("normal", None, "composing", False),  # §6: normal needs a body
        ("headline", "b", None, False),
        ("error", "b", None, False),
    ],
)
async def test_eligibility(type_: str | None, body: str | None, state: str | None, copied: bool) -> None:
    world, clients = await setup()
    stanza = make("message", {"to": "alice@localhost/phone"} | ({"type": type_} if type_ else {}))
    if body is not None:
        etree.SubElement(stanza, BODY).text = body
    if state is not None:
        etree.SubElement(stanza, f"{{{CHATSTATES}}}{state}", nsmap={None: CHATSTATES})
    await world.send(clients["bob"][0], stanza)
    assert len(clients["phone"][1].stanzas) == 1  # delivered, whatever its kind
    assert len(clients["laptop"][1].stanzas) == (1 if copied else 0)


async def test_a_forged_carbon_from_a_client_is_stripped() -> None:
    world, clients = await setup()
    forged = message("alice@localhost/laptop", "trust me")
    fake = etree.SubElement(forged, RECEIVED, nsmap={None: NS})
    etree.SubElement(etree.SubElement(fake, FORWARDED), BODY).text = "from bob, honest"
    await world.send(clients["bob"][0], forged)
    [got] = clients["laptop"][1].stanzas
    assert got.find(RECEIVED) is None and got.findtext(BODY) == "trust me"
    assert everything(clients)["phone"] == ([], ["trust me"], [])  # copied, as a real carbon


async def test_disabled_and_closed_sessions_get_no_more_copies() -> None:
    world, clients = await setup()
    await enable(world, clients["laptop"][0], DISABLE)
    await world.hub.close_session(clients["phone"][0])
    await world.send(clients["bob"][0], message("alice@localhost/tablet", "after"))
    got = everything(clients)
    assert got["laptop"] == NOTHING and got["phone"] == NOTHING and got["tablet"] == (["after"], [], [])


async def test_a_resource_without_presence_gets_no_copy() -> None:
    # It gets a bare-JID message from the offline store at initial presence; a copy now would be a second.
    world, clients = await setup()
    quiet, recorder = await world.login("alice@localhost/quiet", available=False)
    await enable(world, quiet)
    await world.send(clients["bob"][0], message("alice@localhost/phone", "hi"))
    assert recorder.stanzas == []


async def test_a_blocked_message_makes_no_copy() -> None:
    world, clients = await setup()
    iq = make("iq", {"type": "set", "id": "b"})
    etree.SubElement(
        etree.SubElement(iq, BLOCK, nsmap={None: BLOCKING_NS}), f"{{{BLOCKING_NS}}}item", jid="bob@localhost"
    )
    await world.send(clients["phone"][0], iq)
    for _, recorder in clients.values():
        recorder.stanzas.clear()
    with pytest.raises(StanzaError):
        await world.send(clients["bob"][0], message("alice@localhost/phone", "blocked"))
    with pytest.raises(StanzaError):
        await world.send(clients["phone"][0], message("bob@localhost", "to a blocked contact"))
    assert everything(clients)["laptop"] == NOTHING


async def test_native_sessions_cannot_enable_but_their_messages_are_copied() -> None:
    world, clients = await setup()
    native, recorder = await world.login("alice@localhost/native", native=True)
    iq = make("iq", {"type": "set", "id": "n"})
    etree.SubElement(iq, ENABLE, nsmap={None: NS})
    with pytest.raises(StanzaError) as refused:
        await world.hub.call_iq(native, iq)
    assert refused.value.condition == "forbidden"
    await world.send(native, message("bob@localhost", "from native"))
    assert everything(clients)["laptop"] == ([], [], ["from native"])
    await world.send(clients["bob"][0], message("alice@localhost/phone", "to phone"))
    assert carbons(recorder, RECEIVED) == []  # never a carbon to a native session


async def test_messages_to_ones_own_account_are_not_copied_as_sent() -> None:
    world, clients = await setup()
    await world.send(clients["phone"][0], message("alice@localhost/laptop", "note to self"))
    got = everything(clients)
    assert got["laptop"] == (["note to self"], [], [])
    assert got["phone"] == ([], ["note to self"], [])  # §7: an enabled resource that did not get it
