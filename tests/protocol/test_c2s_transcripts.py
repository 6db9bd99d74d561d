"""The c2s stream core replaying real logins, byte for byte.

The transcripts in tests/protocol/transcripts/ are real logins of slixmpp, aioxmpp
and xmpppy against Prosody; the server's answers are compared with Prosody's.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol.xmpp_core_helpers import PASSWORD, Driver, canon, items

from xmlchat.jid import JID
from xmlchat.protocol.xmpp import (
    Authenticated,
    BindRequest,
    C2SStream,
    Closed,
    NeedCredentials,
    NeedPasswordCheck,
    NonzaIn,
    StanzaIn,
    StartTls,
    State,
)

TRANSCRIPTS = Path(__file__).parent / "transcripts"
NS_SM = "urn:xmpp:sm:3"


@dataclass
class Transcript:
    """One connection of a transcript: (direction, bytes) in order, C or S."""

    client: str
    section: str
    chunks: list[tuple[str, bytes]]

    def client_streams(self) -> list[list[bytes]]:
        """The client's chunks, one list per XML stream (split at stream headers)."""
        streams: list[list[bytes]] = []
        for direction, data in self.chunks:
            if direction != "C":
                continue
            if data.startswith((b"<?xml", b"<stream:stream")):
                streams.append([])
            streams[-1].append(data)
        return streams

    def stream_ids(self) -> list[str]:
        ids = []
        for direction, data in self.chunks:
            if direction == "S":
                ids += re.findall(r"<stream:stream [^>]*id='([^']+)'", data.decode())
        return ids

    def scram_nonce(self) -> str | None:
        """Prosody's half of the SCRAM nonce (the challenge's r= minus the client's)."""
        client_nonce = None
        for _direction, data in self.chunks:
            text = data.decode()
            if "<auth " in text and "SCRAM" in text:
                first = base64.b64decode(re.sub(r"<[^>]+>", "", text)).decode()
                client_nonce = first.split("r=", 1)[1]
            elif "<challenge " in text and client_nonce is not None:
                server_first = base64.b64decode(re.sub(r"<[^>]+>", "", text)).decode()
                return server_first.split(",")[0][2:].removeprefix(client_nonce)
        return None

    def core(self, **kwargs: Any) -> C2SStream:
        ids = iter(self.stream_ids())
        nonce = self.scram_nonce()
        return C2SStream(
            ["localhost"],
            tls_available=True,
            mechanisms=("SCRAM-SHA-1", "PLAIN"),  # what Prosody offered
            id_factory=lambda: next(ids),
            scram_nonce_factory=(lambda: nonce) if nonce else None,
            # Prosody counted the stanzas it routed, which the core alone never
            # sends: stream management is tested in test_c2s_sm, and here
            # aioxmpp's nonzas just pass through.
            stream_management=False,
            nonza_namespaces={NS_SM},
            **kwargs,
        )


def load_transcripts() -> list[Transcript]:
    out = []
    for path in sorted(TRANSCRIPTS.glob("*.xml")):
        section, direction = "", None
        sections: dict[str, list[tuple[str, bytes]]] = {}
        for line in path.read_text().splitlines():
            if m := re.match(r"<!-- ===== (\w+): connection \d+ ===== -->$", line):
                section = m[1]
                sections[section] = []
            elif m := re.match(r"<!-- ([CS#]) \+[\d.]+", line):
                direction = m[1]
            elif line and direction in ("C", "S"):
                sections[section].append((direction, line.encode()))
                direction = None
        out += [Transcript(path.stem, name, chunks) for name, chunks in sections.items()]
    return out


TRANSCRIPT_LIST = load_transcripts() if TRANSCRIPTS.is_dir() else []
needs_transcripts = pytest.mark.skipif(not TRANSCRIPT_LIST, reason="no transcripts")


def transcript_ids() -> list[str]:
    return [f"{t.client}-{t.section}" for t in TRANSCRIPT_LIST]


# Elements Prosody sent that the stream core does not generate: routed stanzas
# and stream management (XEP-0198), which belong to the server layer.
_NOT_OURS = {"{jabber:client}presence", "{jabber:client}message", f"{{{NS_SM}}}a", f"{{{NS_SM}}}r"}
_NOT_OURS |= {f"{{{NS_SM}}}enabled"}


@needs_transcripts
@pytest.mark.parametrize("transcript", TRANSCRIPT_LIST, ids=transcript_ids())
def test_transcript_answers_match_prosody(transcript: Transcript) -> None:
    """Each client chunk, fed in order, gets the answer Prosody gave (features aside)."""
    driver = Driver(transcript.core())
    chunks = transcript.chunks
    for n, (direction, data) in enumerate(chunks):
        if direction != "C":
            continue
        driver.feed(data)
        ours = items(driver.take())
        theirs: list[Any] = []
        for d, s in chunks[n + 1 :]:
            if d == "C":
                break
            theirs += [i for i in items(s) if not (isinstance(i, tuple) and i[0] in _NOT_OURS)]
        assert [_kind(i) for i in ours] == [_kind(i) for i in theirs], data
        for mine, prosody in zip(ours, theirs, strict=True):
            if isinstance(mine, tuple) and mine[0] == "{http://etherx.jabber.org/streams}features":
                # Prosody offers more after login (csi, caps, sm…); ours must be a subset.
                assert {c[0] for c in mine[3]} <= {c[0] for c in prosody[3]}
                if not any(c[0].endswith("}bind") for c in mine[3]):
                    assert mine == prosody
            else:
                assert mine == prosody


def _kind(item: Any) -> Any:
    return item if isinstance(item, str) else item[0]


@needs_transcripts
@pytest.mark.parametrize("transcript", TRANSCRIPT_LIST, ids=transcript_ids())
def test_transcript_headers_are_byte_exact(transcript: Transcript) -> None:
    driver = Driver(transcript.core())
    for direction, data in transcript.chunks:
        if direction == "C":
            driver.feed(data)
    ours = re.findall(rb"<\?xml version='1.0'\?><stream:stream [^>]*>", bytes(driver.out))
    prosody = [
        m
        for d, data in transcript.chunks
        if d == "S"
        for m in re.findall(rb"<\?xml version='1.0'\?><stream:stream [^>]*>", data)
    ]
    assert ours == prosody and len(ours) == 3


EXPECTED_EVENTS = {
    "slixmpp": [
        StartTls,
        NeedCredentials("alice", "SCRAM-SHA-1", "localhost"),
        Authenticated(JID("alice", "localhost")),
        BindRequest,
        StanzaIn,
        StanzaIn,
        Closed(),
    ],
    "aioxmpp": [
        StartTls,
        NeedCredentials("alice", "SCRAM-SHA-1", "localhost"),
        Authenticated(JID("alice", "localhost")),
        BindRequest,
        NonzaIn,
        StanzaIn,
        NonzaIn,
        NonzaIn,
        StanzaIn,
        NonzaIn,
        NonzaIn,
        Closed(),
    ],
    "xmpppy": [
        StartTls,
        NeedPasswordCheck("alice", PASSWORD, "localhost"),
        Authenticated(JID("alice", "localhost")),
        BindRequest,
        StanzaIn,
        StanzaIn,
        Closed(),
    ],
}


@needs_transcripts
@pytest.mark.parametrize("transcript", TRANSCRIPT_LIST, ids=transcript_ids())
def test_transcript_events(transcript: Transcript) -> None:
    driver = Driver(transcript.core())
    for direction, data in transcript.chunks:
        if direction == "C":
            driver.feed(data)
    got = [
        e if isinstance(e, NeedCredentials | NeedPasswordCheck | Authenticated | Closed) else type(e)
        for e in driver.events
    ]
    assert got == _expected_for(transcript, EXPECTED_EVENTS[transcript.client])
    assert driver.core.state is State.CLOSED
    assert driver.core.jid == JID("alice", "localhost", transcript.client)
    for event in driver.events:
        if isinstance(event, StanzaIn):
            # §8.1.2.1: stamped with the full JID; §4.7.4: a language.
            assert event.element.get("from") == f"alice@localhost/{transcript.client}"
            assert event.element.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"


def _expected_for(transcript: Transcript, expected: list[Any]) -> list[Any]:
    # The recv connections send no message of their own.
    if transcript.section == "send":
        return expected
    out = list(expected)
    last_stanza = max(i for i, e in enumerate(out) if e is StanzaIn)
    del out[last_stanza]
    if transcript.client == "aioxmpp":
        del out[last_stanza]  # its <r/> went with the message
    return out


@needs_transcripts
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_chunking_gives_the_same_events_and_bytes(data: st.DataObject) -> None:
    transcript = data.draw(st.sampled_from(TRANSCRIPT_LIST))

    def run(split: Callable[[bytes], Iterator[bytes]]) -> tuple[list[Any], bytes]:
        driver = Driver(transcript.core())
        for stream in transcript.client_streams():
            for piece in split(b"".join(stream)):
                driver.feed(piece)
        comparable = [
            # Compared by expanded names: the parser may pick other prefixes per chunking.
            (type(e).__name__, canon(e.element)) if isinstance(e, StanzaIn | NonzaIn) else e
            for e in driver.events
        ]
        return comparable, bytes(driver.out)

    def random_split(blob: bytes) -> Iterator[bytes]:
        cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(blob) - 1)), max_size=12)))
        start = 0
        for cut in [*cuts, len(blob)]:
            yield blob[start:cut]
            start = cut

    whole = run(lambda blob: iter([blob]))
    assert whole == run(random_split)
    assert whole[0][-1] == Closed()


@needs_transcripts
def test_byte_at_a_time_login() -> None:
    transcript = next(t for t in TRANSCRIPT_LIST if t.client == "aioxmpp" and t.section == "send")
    whole, single = Driver(transcript.core()), Driver(transcript.core())
    for stream in transcript.client_streams():
        blob = b"".join(stream)
        whole.feed(blob)
        for i in range(len(blob)):
            single.feed(blob[i : i + 1])
    assert bytes(whole.out) == bytes(single.out)
    assert len(whole.events) == len(single.events)
