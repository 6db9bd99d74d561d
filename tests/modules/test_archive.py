"""XEP-0313 archiving and queries, XEP-0359 stanza ids: the archive module on
the server's hub and an in-memory store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree
from modules.blocking_world import ALICE, BOB, World, message
from modules.fakes import Recorder

from xmlchat.config import Archive as ArchiveConfig
from xmlchat.config import Config
from xmlchat.errors import StanzaCondition
from xmlchat.jid import JID
from xmlchat.modules.archive import HISTORY, HISTORY_NS, Archive
from xmlchat.modules.archive.forms import DATA_NS, NS, RSM_NS
from xmlchat.routing.session import Session
from xmlchat.stanza import BODY, SID_NS, make
from xmlchat.storage import ArchivePrefs, ArchiveQuery, PageRequest

CAROL = JID("carol", "localhost")
FORWARDED = "{urn:xmpp:forward:0}forwarded"
ALL = ArchiveQuery()


async def _world() -> World:
    # The archive is off by default (as Prosody's mod_mam): these tests turn it on.
    world = World(config=Config(archive=ArchiveConfig(enabled=True)))
    await world.users("alice@localhost", "bob@localhost", "carol@localhost")
    return world


async def _ids(world: World, user: JID, query: ArchiveQuery = ALL) -> list[str]:
    page = await world.store.query_archive(user, query, PageRequest(max=1000))
    return [m.id for m in page.messages]


def _stanza_ids(stanza: etree._Element) -> list[tuple[str | None, str | None]]:
    return [(s.get("by"), s.get("id")) for s in stanza.iter(f"{{{SID_NS}}}stanza-id")]


def _query(
    queryid: str = "q", *, fields: dict[str, list[str]] | None = None, **rsm: str | None
) -> etree._Element:
    iq = make("iq", {"type": "set", "id": f"iq-{queryid}"})
    query = etree.SubElement(iq, f"{{{NS}}}query", queryid=queryid, nsmap={None: NS})
    if fields is not None:
        x = etree.SubElement(query, f"{{{DATA_NS}}}x", type="submit", nsmap={None: DATA_NS})
        for var, values in {"FORM_TYPE": [NS], **fields}.items():
            field = etree.SubElement(x, f"{{{DATA_NS}}}field", var=var)
            for value in values:
                etree.SubElement(field, f"{{{DATA_NS}}}value").text = value
    if rsm:
        page = etree.SubElement(query, f"{{{RSM_NS}}}set", nsmap={None: RSM_NS})
        for name, value in rsm.items():
            etree.SubElement(page, f"{{{RSM_NS}}}{name}").text = value
    return iq


async def _ask(
    world: World, session: Session, recorder: Recorder, iq: etree._Element
) -> tuple[list[etree._Element], etree._Element]:
    """The result messages and the final iq result the session got for ``iq``."""
    recorder.stanzas.clear()
    await world.send(session, iq)
    *results, answer = recorder.stanzas
    assert answer.tag == "{jabber:client}iq" and answer.get("type") == "result"
    assert answer.get("id") == iq.get("id")
    return results, answer


async def test_both_copies_are_archived_and_the_recipient_sees_its_archive_id() -> None:
    world = await _world()
    alice, _ = await world.login("alice@localhost/pc")
    _, bob_sees = await world.login("bob@localhost/phone")
    await world.send(alice, message("bob@localhost", "hi"))
    [(alice_copy,)] = [await _ids(world, ALICE)]
    [(bob_copy,)] = [await _ids(world, BOB)]
    assert alice_copy != bob_copy
    [received] = [s for s in bob_sees.stanzas if s.findtext(BODY) == "hi"]
    assert _stanza_ids(received) == [("bob@localhost", bob_copy)]
    page = await world.store.query_archive(ALICE, ALL, PageRequest(max=5))
    assert (page.messages[0].outgoing, page.messages[0].with_) == (True, BOB)
    page = await world.store.query_archive(BOB, ALL, PageRequest(max=5))
    assert (page.messages[0].outgoing, page.messages[0].with_) == (False, ALICE)
    assert b"hi" in page.messages[0].stanza


async def test_offline_recipient_gets_the_stanza_id_on_replay() -> None:
    world = await _world()
    alice, _ = await world.login("alice@localhost/pc")
    await world.send(alice, message("bob@localhost", "later"))
    [bob_copy] = await _ids(world, BOB)
    _, bob_sees = await world.login("bob@localhost/phone")
    [received] = [s for s in bob_sees.stanzas if s.findtext(BODY) == "later"]
    assert _stanza_ids(received) == [("bob@localhost", bob_copy)]


async def test_forged_stanza_ids_claiming_our_jids_are_removed() -> None:
    world = await _world()
    alice, _ = await world.login("alice@localhost/pc")
    _, bob_sees = await world.login("bob@localhost/phone")
    forged = message("bob@localhost", "trust me")
    for by in ("bob@localhost", "localhost", "alice@localhost", "elsewhere.example"):
        etree.SubElement(forged, f"{{{SID_NS}}}stanza-id", by=by, id="forged", nsmap={None: SID_NS})
    await world.send(alice, forged)
    [received] = [s for s in bob_sees.stanzas if s.findtext(BODY) == "trust me"]
    [bob_copy] = await _ids(world, BOB)
    # §3.3: only the foreign claim survives, and ours is the real id.
    assert sorted(_stanza_ids(received), key=str) == [
        ("bob@localhost", bob_copy),
        ("elsewhere.example", "forged"),
    ]


async def test_what_is_not_archived() -> None:
    world = await _world()
    alice, _ = await world.login("alice@localhost/pc")
    await world.login("bob@localhost/phone")
    await world.send(alice, message("bob@localhost", "news", type_="headline"))
    await world.send(alice, make("message", {"to": "bob@localhost", "type": "chat"}))  # no body
    hinted = message("bob@localhost", "secret")
    etree.SubElement(hinted, "{urn:xmpp:hints}no-store")
    await world.send(alice, hinted)
    await world.send(alice, message("alice@localhost", "note to self"))
    assert await _ids(world, BOB) == []
    assert len(await _ids(world, ALICE)) == 1  # the note to self, once


async def test_a_blocked_message_is_kept_by_neither() -> None:
    world = await _world()
    alice, _ = await world.login("alice@localhost/pc")
    bob, _ = await world.login("bob@localhost/phone")
    await world.iq(bob, "set", "{urn:xmpp:blocking}block", "alice@localhost")
    error = await world.refused(alice, message("bob@localhost", "hello?"))
    assert error.condition == StanzaCondition.SERVICE_UNAVAILABLE
    assert await _ids(world, BOB) == []


async def test_preferences_decide_what_is_kept() -> None:
    world = await _world()
    alice, alice_sees = await world.login("alice@localhost/pc")
    await world.login("bob@localhost/phone")
    await world.login("carol@localhost/tab")
    iq = make("iq", {"type": "set", "id": "p1"})
    prefs = etree.SubElement(iq, f"{{{NS}}}prefs", default="never", nsmap={None: NS})
    etree.SubElement(etree.SubElement(prefs, f"{{{NS}}}always"), f"{{{NS}}}jid").text = "carol@localhost/x"
    _, answer = await _ask(world, alice, alice_sees, iq)
    assert answer[0].get("default") == "never"
    assert [j.text for j in answer[0].iter(f"{{{NS}}}jid")] == ["carol@localhost"]
    await world.send(alice, message("bob@localhost", "not kept"))
    await world.send(alice, message("carol@localhost", "kept"))
    [kept] = (await world.store.query_archive(ALICE, ALL, PageRequest(max=5))).messages
    assert kept.with_ == CAROL
    # Bob's archive follows Bob's preferences (the default: always).
    assert len(await _ids(world, BOB)) == 1
    await world.store.set_archive_prefs(BOB, ArchivePrefs("roster"))
    await world.send(alice, message("bob@localhost", "stranger"))
    assert len(await _ids(world, BOB)) == 1
    await world.befriend(BOB, ALICE)
    await world.send(alice, message("bob@localhost", "friend"))
    assert len(await _ids(world, BOB)) == 2


async def _chat(world: World, n: int) -> tuple[Session, Recorder, list[str]]:
    alice, alice_sees = await world.login("alice@localhost/pc")
    await world.login("bob@localhost/phone")
    carol, _ = await world.login("carol@localhost/tab")
    for i in range(n):
        await world.send(alice, message("bob@localhost", f"b{i}"))
        await world.send(carol, message("alice@localhost", f"c{i}"))
    return alice, alice_sees, await _ids(world, ALICE)


async def test_query_pages_forwards_and_backwards() -> None:
    world = await _world()
    alice, sees, ids = await _chat(world, 6)  # 12 in alice's archive
    results, answer = await _ask(world, alice, sees, _query(max="5"))
    assert [r[0].get("id") for r in results] == ids[:5]
    assert {r[0].get("queryid") for r in results} == {"q"}
    assert {r.get("to") for r in results} == {"alice@localhost/pc"}
    fin = answer[0]
    assert fin.tag == f"{{{NS}}}fin" and fin.get("complete") is None
    assert fin.findtext(f"{{{RSM_NS}}}set/{{{RSM_NS}}}first") == ids[0]
    assert fin.find(f"{{{RSM_NS}}}set/{{{RSM_NS}}}first").get("index") == "0"
    assert fin.findtext(f"{{{RSM_NS}}}set/{{{RSM_NS}}}last") == ids[4]
    assert fin.findtext(f"{{{RSM_NS}}}set/{{{RSM_NS}}}count") == "12"
    forwarded = results[0][0].find(FORWARDED)
    assert forwarded.find("{urn:xmpp:delay}delay").get("stamp", "").endswith("Z")
    assert forwarded.findtext(f"{{jabber:client}}message/{BODY}") == "b0"
    results, answer = await _ask(world, alice, sees, _query(max="5", after=ids[9]))
    assert [r[0].get("id") for r in results] == ids[10:]
    assert answer[0].get("complete") == "true"
    results, answer = await _ask(world, alice, sees, _query(max="5", before=""))  # the last page
    assert [r[0].get("id") for r in results] == ids[7:]
    results, answer = await _ask(world, alice, sees, _query(max="5", before=ids[2]))
    assert [r[0].get("id") for r in results] == ids[:2]
    assert answer[0].get("complete") == "true"


async def test_query_filters_by_with_time_and_ids() -> None:
    world = await _world()
    alice, sees, ids = await _chat(world, 3)
    results, _ = await _ask(world, alice, sees, _query(fields={"with": ["carol@localhost"]}))
    assert [r[0].get("id") for r in results] == ids[1::2]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    results, answer = await _ask(world, alice, sees, _query(fields={"start": [future]}))
    assert results == [] and answer[0].findtext(f".//{{{RSM_NS}}}count") == "0"
    results, _ = await _ask(world, alice, sees, _query(fields={"ids": [ids[4], ids[1]]}))
    assert [r[0].get("id") for r in results] == [ids[1], ids[4]]
    results, _ = await _ask(world, alice, sees, _query(fields={"after-id": [ids[1]], "before-id": [ids[4]]}))
    assert [r[0].get("id") for r in results] == ids[2:4]


@pytest.mark.parametrize(
    ("iq", "condition"),
    [
        (_query(max="101"), StanzaCondition.POLICY_VIOLATION),
        (_query(max="x"), StanzaCondition.BAD_REQUEST),
        (_query(after="nope"), StanzaCondition.ITEM_NOT_FOUND),
        (_query(before="nope"), StanzaCondition.ITEM_NOT_FOUND),
        (_query(fields={"after-id": ["nope"]}), StanzaCondition.ITEM_NOT_FOUND),
        (_query(fields={"colour": ["red"]}), StanzaCondition.BAD_REQUEST),
        (_query(fields={"start": ["yesterday"]}), StanzaCondition.BAD_REQUEST),
        (_query(fields={"start": ["2024-01-01T00:00:00"]}), StanzaCondition.BAD_REQUEST),  # no zone
        (_query(fields={"with": ["@bad"]}), StanzaCondition.BAD_REQUEST),
    ],
)
async def test_malformed_queries_are_refused(iq: etree._Element, condition: StanzaCondition) -> None:
    world = await _world()
    alice, _, _ = await _chat(world, 1)
    error = await world.refused(alice, iq)
    assert error.condition == condition


async def test_another_users_archive_cannot_be_queried() -> None:
    world = await _world()
    alice, _, _ = await _chat(world, 1)
    iq = _query()
    iq.set("to", "bob@localhost")
    error = await world.refused(alice, iq)
    assert error.condition == StanzaCondition.SERVICE_UNAVAILABLE


async def test_form_discovery_and_metadata() -> None:
    world = await _world()
    alice, sees = await world.login("alice@localhost/pc")
    iq = make("iq", {"type": "get", "id": "m0"})
    etree.SubElement(iq, f"{{{NS}}}metadata", nsmap={None: NS})
    _, answer = await _ask(world, alice, sees, iq)
    assert len(answer[0]) == 0  # an empty archive: an empty <metadata/>
    _, _, ids = await _chat(world, 2)
    _, answer = await _ask(world, alice, sees, iq)
    assert answer[0].find(f"{{{NS}}}start").get("id") == ids[0]
    assert answer[0].find(f"{{{NS}}}end").get("id") == ids[-1]
    iq = make("iq", {"type": "get", "id": "f0"})
    etree.SubElement(iq, f"{{{NS}}}query", nsmap={None: NS})
    _, answer = await _ask(world, alice, sees, iq)
    fields = [f.get("var") for f in answer[0].iter(f"{{{DATA_NS}}}field")]
    assert fields == ["FORM_TYPE", "with", "start", "end", "before-id", "after-id", "ids"]


async def test_the_account_advertises_mam_and_stanza_ids_the_server_does_not() -> None:
    world = await _world()
    alice, sees = await world.login("alice@localhost/pc")
    info = "http://jabber.org/protocol/disco#info"
    features = {}
    for to in ("bob@localhost", "localhost"):
        iq = make("iq", {"type": "get", "id": "d", "to": to})
        etree.SubElement(iq, f"{{{info}}}query", nsmap={None: info})
        _, answer = await _ask(world, alice, sees, iq)
        features[to] = {f.get("var") for f in answer[0].iter(f"{{{info}}}feature")}
    assert {NS, SID_NS, f"{NS}#extended"} <= features["bob@localhost"]
    assert not {NS, SID_NS} & features["localhost"]


async def test_expiry_timer_removes_old_messages_and_stops_cleanly() -> None:
    world = await _world()
    old = datetime.now(UTC) - timedelta(days=400)
    await world.store.archive_message(ALICE, BOB, b"<message/>", old, outgoing=True)
    await world.store.archive_message(ALICE, BOB, b"<message/>", datetime.now(UTC), outgoing=True)
    [archive] = [m for m in world.hub.modules if isinstance(m, Archive)]
    await world.hub.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=5)
        while await world.store.count_archive(ALICE) != 1:
            assert datetime.now(UTC) < deadline, "expiry did not run"
            await asyncio.sleep(0)
    finally:
        await world.hub.stop()
    assert archive._expiry is None
    assert await archive.expire() == 0


async def test_the_internal_history_request_gives_the_last_messages() -> None:
    """What the native front end will call: only internally, last page first."""
    world = await _world()
    alice, _, ids = await _chat(world, 3)
    history = make("iq", {"type": "get", "id": "h"})
    request = etree.SubElement(history, HISTORY, nsmap={None: HISTORY_NS})
    request.set("max", "2")
    request.set("with", "carol@localhost")
    error = await world.refused(alice, history)  # not on the XMPP wire
    assert error.condition == StanzaCondition.SERVICE_UNAVAILABLE
    answer = await world.hub.call_iq(alice, history)
    assert answer is not None and answer.get("complete") == "false"
    assert [r.get("id") for r in answer] == [ids[3], ids[5]]
    request.set("before", ids[3])
    answer = await world.hub.call_iq(alice, history)
    assert answer is not None and answer.get("complete") == "true"
    assert [r.get("id") for r in answer] == [ids[1]]
    assert answer[0].findtext(f"{FORWARDED}/{{jabber:client}}message/{BODY}") == "c0"
