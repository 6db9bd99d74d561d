"""XEP-0352 client state indication on the c2s core: the two nonzas of a
bound stream become :class:`ClientStateChanged`, split anywhere."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol.xmpp_core_helpers import HEADER, Driver, failed, login, make_core, stream_error_condition

from xmlchat.protocol.xmpp import ClientStateChanged, NonzaIn, StanzaIn, State

INACTIVE = b"<inactive xmlns='urn:xmpp:csi:0'/>"
ACTIVE = b"<active xmlns='urn:xmpp:csi:0'/>"
PRESENCE = b"<presence/>"
# A bound session saying inactive, sending a stanza, then active again.
SESSION = INACTIVE + PRESENCE + b"<csi:active xmlns:csi='urn:xmpp:csi:0'></csi:active>" + INACTIVE


def test_inactive_and_active_become_events() -> None:
    driver = login()
    assert driver.feed(INACTIVE) == [ClientStateChanged(active=False)]
    assert driver.feed(ACTIVE) == [ClientStateChanged(active=True)]
    assert driver.take() == b""  # nonzas are never answered (XEP-0352 §3)
    assert driver.core.state is State.BOUND


def test_nonzas_keep_their_place_among_stanzas() -> None:
    events = login().feed(SESSION)
    assert [type(e) for e in events] == [ClientStateChanged, StanzaIn, ClientStateChanged, ClientStateChanged]
    assert [e.active for e in events if isinstance(e, ClientStateChanged)] == [False, True, False]


def test_csi_wins_over_a_configured_nonza_namespace() -> None:
    driver = login(make_core(nonza_namespaces={"urn:xmpp:csi:0"}))
    assert driver.feed(ACTIVE) == [ClientStateChanged(active=True)]


@pytest.mark.parametrize(
    "element",
    [
        b"<unknown xmlns='urn:xmpp:csi:0'/>",  # only the two XEP-0352 elements exist
        b"<active xmlns='urn:xmpp:csi:1'/>",  # another namespace
        b"<active/>",  # jabber:client, not a stanza
    ],
)
def test_other_elements_are_still_stream_errors(element: bytes) -> None:
    driver = login()
    events = driver.feed(element)
    assert failed(events).condition == "unsupported-stanza-type"
    assert stream_error_condition(driver.take()) == "unsupported-stanza-type"


def test_not_before_bind() -> None:
    # Before a resource is bound the client has no session whose state could change.
    driver = Driver(make_core())
    driver.feed(HEADER + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    driver.feed(HEADER)
    events = driver.feed(INACTIVE)
    assert not any(isinstance(e, ClientStateChanged) for e in events)
    assert driver.core.state is State.CLOSED


def _run(chunks: list[bytes]) -> list[object]:
    driver = login()
    for chunk in chunks:
        driver.feed(chunk)
    return [
        (type(e).__name__, e.element.tag) if isinstance(e, StanzaIn | NonzaIn) else e for e in driver.events
    ]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(SESSION)), max_size=20))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [SESSION[a:b] for a, b in zip([0, *points], [*points, len(SESSION)], strict=True)]
    assert _run(chunks) == _run([SESSION])
