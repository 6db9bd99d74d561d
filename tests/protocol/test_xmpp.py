"""The c2s stream core (xmlchat.protocol.xmpp), driven with bytes — no sockets.

The transcripts in tests/protocol/transcripts/ are real logins of slixmpp, aioxmpp
and xmpppy against Prosody; they are replayed byte for byte, and the server's
answers are compared with Prosody's.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import scramp
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from xmlchat.config import Config
from xmlchat.errors import StanzaCondition, StanzaError, StanzaTooBig, StreamCondition, StreamError
from xmlchat.jid import JID
from xmlchat.protocol.sasl import SaslCondition
from xmlchat.protocol.xmpp import (
    TRANSITIONS,
    Authenticated,
    AuthFailed,
    BindRequest,
    C2SLimits,
    C2SStream,
    Closed,
    Event,
    LocalProtocolError,
    NeedCredentials,
    NeedPasswordCheck,
    NonzaIn,
    StanzaIn,
    StartTls,
    State,
    StreamFailed,
)
from xmlchat.storage import ScramCredentials

TRANSCRIPTS = Path(__file__).parent / "transcripts"
SALT = base64.b64decode("OWJhMWE1ZGItOGJhMC00MTlkLThkYTctYmZhZTI1MzVhMzkz")  # Prosody's, from the transcripts
PASSWORD = "alicepw"
NS_SM = "urn:xmpp:sm:3"

HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"
)
FOOTER = b"</stream:stream>"


# -- helpers ------------------------------------------------------------------------------


def make_credentials(iterations: int = 10000) -> dict[str, ScramCredentials]:
    out = {}
    for mech in ("SCRAM-SHA-1", "SCRAM-SHA-256"):
        salt, stored, server, i = scramp.ScramMechanism(mech).make_auth_info(
            PASSWORD, iteration_count=iterations, salt=SALT
        )
        out[mech] = ScramCredentials(mech, salt, i, stored, server)
    return out


CREDENTIALS = make_credentials()


def counter(prefix: str) -> Callable[[], str]:
    n = iter(range(1, 1_000_000))
    return lambda: f"{prefix}{next(n)}"


def make_core(**kwargs: Any) -> C2SStream:
    kwargs.setdefault("tls_available", True)
    kwargs.setdefault("id_factory", counter("id"))
    return C2SStream(["localhost"], **kwargs)


@dataclass
class Driver:
    """Plays the transport and the server: answers every request at once."""

    core: C2SStream
    password: str = PASSWORD
    channel_binding: dict[str, bytes] | None = None
    events: list[Event] = field(default_factory=list)
    out: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[Event]:
        return self.handle(self.core.receive_data(data))

    def handle(self, events: list[Event]) -> list[Event]:
        work, handled = list(events), []
        while work:
            event = work.pop(0)
            handled.append(event)
            if isinstance(event, StartTls):
                self.out += self.core.data_to_send()  # the <proceed/> goes out in clear
                work[:0] = self.core.tls_started(self.channel_binding)
            elif isinstance(event, NeedCredentials):
                creds = CREDENTIALS[event.mechanism] if event.username == "alice" else None
                work[:0] = self.core.provide_credentials(creds)
            elif isinstance(event, NeedPasswordCheck):
                work[:0] = self.core.password_checked(
                    event.username == "alice" and event.password == self.password
                )
            elif isinstance(event, BindRequest):
                user = self.core.user
                assert user is not None
                work[:0] = self.core.bound(user.with_resource(event.resource or "generated"))
        self.events += handled
        self.out += self.core.data_to_send()
        return handled

    def take(self) -> bytes:
        self.out += self.core.data_to_send()
        out = bytes(self.out)
        self.out.clear()
        return out


def login(core: C2SStream | None = None, *, resource: str = "res") -> Driver:
    """A bound session (PLAIN over TLS): returns the driver with its output drained."""
    driver = Driver(core or make_core())
    driver.feed(HEADER + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    driver.feed(HEADER + auth_plain("alice", PASSWORD))
    driver.feed(HEADER + bind_iq(resource))
    assert driver.core.state is State.BOUND
    driver.take()
    driver.events.clear()
    return driver


def auth_plain(user: str, password: str, authzid: str = "") -> bytes:
    blob = base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()
    return f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{blob}</auth>".encode()


def bind_iq(resource: str | None, iq_id: str = "b1") -> bytes:
    inner = f"<resource>{resource}</resource>" if resource is not None else ""
    return (
        f"<iq type='set' id='{iq_id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>{inner}</bind></iq>"
    ).encode()


_HEADER_RE = re.compile(rb"(<\?xml[^>]*\?>)?<stream:stream\b[^>]*>")


def items(data: bytes) -> list[Any]:
    """Top-level items of server output, comparable: headers, elements, the footer."""
    out: list[Any] = []
    for part in re.split(rb"((?:<\?xml[^>]*\?>)?<stream:stream\b[^>]*>|</stream:stream>)", data):
        if not part:
            continue
        if part == FOOTER:
            out.append("footer")
        elif _HEADER_RE.fullmatch(part):
            root = etree.fromstring(part + FOOTER)
            out.append(("header", dict(root.attrib)))
        else:
            wrapped = (
                b"<w xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>" + part + b"</w>"
            )
            out.extend(canon(el) for el in etree.fromstring(wrapped))
    return out


def canon(el: etree._Element) -> Any:
    return (el.tag, sorted(el.attrib.items()), (el.text or "").strip(), [canon(c) for c in el])


def stream_error_condition(data: bytes) -> str:
    for item in items(data):
        if item[0] == "{http://etherx.jabber.org/streams}error":
            return etree.QName(item[3][0][0]).localname
    raise AssertionError(f"no stream error in {data!r}")


def failed(events: list[Event]) -> StreamError:
    assert isinstance(events[-1], StreamFailed), events
    return events[-1].error


# -- transcripts --------------------------------------------------------------------------


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
            nonza_namespaces={NS_SM},  # aioxmpp's stream management nonzas
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


# -- negotiation ---------------------------------------------------------------------------------


def test_pre_tls_features_require_starttls_and_offer_no_sasl() -> None:
    driver = Driver(make_core())
    driver.feed(HEADER)
    assert items(driver.take())[1] == canon(
        etree.fromstring(
            "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
            "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"
        )
    )
    assert driver.core.state is State.NEGOTIATING


def features_of(core: C2SStream, header: bytes = HEADER) -> list[Any]:
    driver = Driver(core)
    driver.feed(header)
    features = items(driver.take())[1]
    return [(etree.QName(c[0]).localname, [g[2] for g in c[3]]) for c in features[3]]


def test_optional_tls_offers_scram_but_not_plain_in_clear() -> None:
    assert features_of(make_core(require_encryption=False)) == [
        ("starttls", []),
        ("mechanisms", ["SCRAM-SHA-256", "SCRAM-SHA-1"]),
    ]


def test_plain_in_clear_when_allowed() -> None:
    core = make_core(tls_available=False, require_encryption=False, allow_unencrypted_plain_auth=True)
    assert features_of(core) == [("mechanisms", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])]


def test_direct_tls_offers_sasl_at_once() -> None:
    core = make_core(tls_available=False, tls_active=True)
    assert features_of(core) == [("mechanisms", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])]


def test_direct_tls_with_channel_binding_offers_plus() -> None:
    cb = {"tls-server-end-point": b"\x07" * 32}
    core = make_core(tls_available=False, tls_active=True, channel_binding=cb)
    assert features_of(core) == [
        ("mechanisms", ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]),
        ("sasl-channel-binding", [""]),
    ]


def test_require_encryption_without_tls_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        C2SStream(["localhost"], tls_available=False)


def test_starttls_restarts_with_a_fresh_stream() -> None:
    driver = Driver(make_core())
    events = driver.feed(HEADER + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert events == [StartTls()]
    assert driver.core.state is State.CONNECTED and driver.core.encrypted
    assert items(driver.take())[-1] == canon(
        etree.fromstring("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    )
    driver.feed(HEADER)
    assert features_of_output(driver.take()) == ["mechanisms"]


def features_of_output(data: bytes) -> list[str]:
    features = [i for i in items(data) if isinstance(i, tuple) and i[0].endswith("}features")]
    return [etree.QName(c[0]).localname for c in features[-1][3]]


def test_data_after_starttls_in_the_same_read_is_refused() -> None:
    # RFC 6120 §5.4.3.3; the STARTTLS injection attack (CVE-2011-0411 family).
    driver = Driver(make_core())
    events = driver.feed(
        HEADER
        + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'"
    )
    assert failed(events).condition is StreamCondition.POLICY_VIOLATION
    out = driver.take()
    assert b"proceed" not in out and stream_error_condition(out) == "policy-violation"
    assert out.endswith(FOOTER)


def test_data_while_tls_is_pending_is_refused() -> None:
    core = make_core()
    core.receive_data(HEADER + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert core.state is State.TLS_PENDING
    assert core.receive_data(b"  \n") == []  # whitespace is harmless
    assert failed(core.receive_data(b"<iq/>")).condition is StreamCondition.POLICY_VIOLATION


def test_starttls_not_offered_gets_the_tls_failure() -> None:
    # RFC 6120 §5.4.2.2: <failure/> in the TLS namespace, then close.
    core = make_core(tls_available=False, require_encryption=False)
    core.receive_data(HEADER)
    core.data_to_send()
    events = core.receive_data(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert isinstance(events[-1], StreamFailed)
    assert core.data_to_send() == b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" + FOOTER


def test_tls_started_out_of_turn() -> None:
    with pytest.raises(LocalProtocolError):
        make_core().tls_started(None)


# -- SASL over the stream ----------------------------------------------------------------------


def tls_driver(**kwargs: Any) -> Driver:
    driver = Driver(make_core(**kwargs))
    driver.feed(HEADER + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    driver.feed(HEADER)
    driver.take()
    driver.events.clear()
    return driver


def sasl_reply(data: bytes) -> tuple[str, str]:
    item = items(data)[0]
    return etree.QName(item[0]).localname, item[2] or (
        etree.QName(item[3][0][0]).localname if item[3] else ""
    )


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_scram_login_with_scramp_client(mechanism: str) -> None:
    driver = tls_driver()
    client = scramp.ScramClient([mechanism], "alice", PASSWORD)
    first = base64.b64encode(client.get_client_first().encode()).decode()
    events = driver.feed(
        f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mechanism}'>{first}</auth>".encode()
    )
    assert events == [NeedCredentials("alice", mechanism, "localhost")]
    kind, challenge = sasl_reply(driver.take())
    assert kind == "challenge"
    client.set_server_first(base64.b64decode(challenge).decode())
    final = base64.b64encode(client.get_client_final().encode()).decode()
    events = driver.feed(f"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{final}</response>".encode())
    assert events == [Authenticated(JID("alice", "localhost"))]
    kind, server_final = sasl_reply(driver.take())
    assert kind == "success"
    client.set_server_final(base64.b64decode(server_final).decode())
    assert driver.core.state is State.AUTHENTICATED and driver.core.user == JID("alice", "localhost")


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_scram_wrong_password_over_the_stream(mechanism: str) -> None:
    driver = tls_driver()
    client = scramp.ScramClient([mechanism], "alice", "wrong")
    first = base64.b64encode(client.get_client_first().encode()).decode()
    driver.feed(
        f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mechanism}'>{first}</auth>".encode()
    )
    client.set_server_first(base64.b64decode(sasl_reply(driver.take())[1]).decode())
    final = base64.b64encode(client.get_client_final().encode()).decode()
    assert driver.feed(f"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{final}</response>".encode()) == [
        AuthFailed(JID("alice", "localhost"), "not-authorized")
    ]
    assert sasl_reply(driver.take()) == ("failure", "not-authorized")
    assert driver.core.state is State.NEGOTIATING and driver.core.user is None


def test_scram_plus_over_the_stream() -> None:
    cb = {"tls-server-end-point": b"\x09" * 32}
    driver = Driver(make_core(), channel_binding=cb)
    driver.feed(HEADER + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    driver.feed(HEADER)
    assert "sasl-channel-binding" in features_of_output(driver.take())
    client = scramp.ScramClient(
        ["SCRAM-SHA-256-PLUS"],
        "alice",
        PASSWORD,
        channel_binding=("tls-server-end-point", cb["tls-server-end-point"]),
    )
    first = base64.b64encode(client.get_client_first().encode()).decode()
    mechanism = "SCRAM-SHA-256-PLUS"
    driver.feed(
        f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mechanism}'>{first}</auth>".encode()
    )
    client.set_server_first(base64.b64decode(sasl_reply(driver.take())[1]).decode())
    final = base64.b64encode(client.get_client_final().encode()).decode()
    events = driver.feed(f"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{final}</response>".encode())
    assert events == [Authenticated(JID("alice", "localhost"))]


def test_plain_refused_in_clear() -> None:
    core = make_core(tls_available=False, require_encryption=False)
    driver = Driver(core)
    driver.feed(HEADER)
    driver.take()
    assert driver.feed(auth_plain("alice", PASSWORD)) == [AuthFailed(None, "encryption-required")]
    assert sasl_reply(driver.take()) == ("failure", "encryption-required")  # RFC 6120 §6.5.4


def test_plain_in_clear_when_allowed_logs_in() -> None:
    core = make_core(tls_available=False, require_encryption=False, allow_unencrypted_plain_auth=True)
    driver = Driver(core)
    driver.feed(HEADER)
    events = driver.feed(auth_plain("alice", PASSWORD))
    assert events == [
        NeedPasswordCheck("alice", PASSWORD, "localhost"),
        Authenticated(JID("alice", "localhost")),
    ]


def test_auth_before_required_tls() -> None:
    driver = Driver(make_core())
    driver.feed(HEADER)
    driver.take()
    driver.feed(
        b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1hLHI9eA==</auth>"
    )
    assert sasl_reply(driver.take()) == ("failure", "encryption-required")


@pytest.mark.parametrize(
    ("auth", "condition"),
    [
        (b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='DIGEST-MD5'/>", "invalid-mechanism"),
        (b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>", "invalid-mechanism"),
        (
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!notbase64</auth>",
            "incorrect-encoding",
        ),
        (
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>YWJj</auth>",
            "malformed-request",
        ),
        (b"<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>", "aborted"),
        (b"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>YWJj</response>", "malformed-request"),
        (auth_plain("bob", "pw", authzid="alice@localhost"), "invalid-authzid"),
        (auth_plain("alice", "wrong"), "not-authorized"),
        (auth_plain("nobody", "pw"), "not-authorized"),
        (auth_plain("al@ice@x", "pw"), "not-authorized"),
        (auth_plain("alice@elsewhere", "pw"), "not-authorized"),
    ],
)
def test_sasl_failures(auth: bytes, condition: str) -> None:
    driver = tls_driver()
    driver.feed(auth)
    assert sasl_reply(driver.take()) == ("failure", condition)
    assert driver.core.state is State.NEGOTIATING


def test_plain_authzid_naming_the_user_itself_is_fine() -> None:
    driver = tls_driver()
    events = driver.feed(auth_plain("alice", PASSWORD, authzid="alice@localhost"))
    assert events[-1] == Authenticated(JID("alice", "localhost"))


def test_plain_without_initial_response() -> None:
    driver = tls_driver()
    driver.feed(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'/>")
    assert sasl_reply(driver.take()) == ("challenge", "=")  # RFC 6120 §6.4.2: empty is '='
    blob = base64.b64encode(b"\0alice\0" + PASSWORD.encode())
    events = driver.feed(b"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + blob + b"</response>")
    assert events[-1] == Authenticated(JID("alice", "localhost"))


def test_abort_during_an_exchange() -> None:
    driver = tls_driver()
    driver.feed(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'/>")
    driver.take()
    driver.feed(b"<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
    assert sasl_reply(driver.take()) == ("failure", "aborted")
    assert driver.core.state is State.NEGOTIATING


def test_retries_then_policy_violation() -> None:
    driver = tls_driver()
    for _ in range(2):
        assert driver.feed(auth_plain("alice", "wrong")) == [
            NeedPasswordCheck("alice", "wrong", "localhost"),
            AuthFailed(JID("alice", "localhost"), "not-authorized"),
        ]
        assert sasl_reply(driver.take()) == ("failure", "not-authorized")
    events = driver.feed(auth_plain("alice", "wrong"))
    assert failed(events).condition is StreamCondition.POLICY_VIOLATION
    out = driver.take()
    assert sasl_reply(out) == ("failure", "not-authorized")  # the client still learns why
    assert stream_error_condition(out) == "policy-violation" and out.endswith(FOOTER)


def test_retry_after_a_failure_succeeds() -> None:
    driver = tls_driver()
    driver.feed(auth_plain("alice", "wrong"))
    events = driver.feed(auth_plain("alice", PASSWORD))
    assert events[-1] == Authenticated(JID("alice", "localhost"))


def test_auth_failed_lets_the_server_choose_the_condition() -> None:
    core = make_core(tls_active=True, tls_available=False)
    core.receive_data(HEADER + auth_plain("alice", PASSWORD))
    core.data_to_send()
    assert core.auth_failed(SaslCondition.ACCOUNT_DISABLED, "ask the admin") == [
        AuthFailed(JID("alice", "localhost"), "account-disabled")
    ]
    assert sasl_reply(core.data_to_send()) == ("failure", "account-disabled")


def test_answers_out_of_turn_raise() -> None:
    core = make_core()
    with pytest.raises(LocalProtocolError):
        core.provide_credentials(None)
    with pytest.raises(LocalProtocolError):
        core.password_checked(True)
    with pytest.raises(LocalProtocolError):
        core.auth_failed(SaslCondition.ABORTED)
    with pytest.raises(LocalProtocolError):
        core.bound(JID("alice", "localhost", "r"))
    with pytest.raises(LocalProtocolError):
        core.bind_failed(StanzaError(StanzaCondition.CONFLICT))


def test_answers_after_the_stream_ended_are_ignored() -> None:
    core = make_core(tls_active=True, tls_available=False)
    core.receive_data(HEADER + auth_plain("alice", PASSWORD))
    core.send_stream_error(StreamError(StreamCondition.SYSTEM_SHUTDOWN))
    assert core.password_checked(True) == []
    assert core.state is State.CLOSED


def test_input_is_held_while_the_server_checks_the_password() -> None:
    core = make_core(tls_active=True, tls_available=False)
    assert core.receive_data(HEADER + auth_plain("alice", PASSWORD)) == [
        NeedPasswordCheck("alice", PASSWORD, "localhost")
    ]
    # A client that does not wait for <success/>: held, then refused (RFC 6120 §6.4.6).
    assert core.receive_data(HEADER) == []
    events = core.password_checked(True)
    assert events[0] == Authenticated(JID("alice", "localhost"))
    assert failed(events).condition is StreamCondition.POLICY_VIOLATION


def test_held_input_is_bounded() -> None:
    core = make_core(tls_active=True, tls_available=False)
    core.receive_data(HEADER + auth_plain("alice", PASSWORD))
    assert core.receive_data(b" " * 9_000) == []
    error = failed(core.receive_data(b"x" * 2_000))
    assert error.condition is StreamCondition.POLICY_VIOLATION and error.app_condition == "stanza-too-big"


# -- stream headers and stream errors (RFC 6120 §4.7, §4.9) ----------------------------------------


@pytest.mark.parametrize(
    ("header", "condition"),
    [
        (HEADER.replace(b"to='localhost'", b"to='example.org'"), "host-unknown"),
        (HEADER.replace(b" to='localhost'", b""), "improper-addressing"),
        (HEADER.replace(b"to='localhost'", b"to='alice@localhost'"), "improper-addressing"),
        (
            HEADER.replace(b"http://etherx.jabber.org/streams", b"http://example.org/streams"),
            "invalid-namespace",
        ),
        (HEADER.replace(b"xmlns='jabber:client'", b"xmlns='jabber:server'"), "invalid-namespace"),
        (HEADER.replace(b" to='localhost' version='1.0'", b" to='localhost'"), "unsupported-version"),
        (
            HEADER.replace(b"to='localhost' version='1.0'", b"to='localhost' version='2.0'"),
            "unsupported-version",
        ),
        (
            HEADER.replace(b"to='localhost' version='1.0'", b"to='localhost' version='x'"),
            "unsupported-version",
        ),
        (
            HEADER.replace(b"<stream:stream", b"<stream:strom").replace(b"'>", b"'/>")[:-2] + b">",
            "bad-format",
        ),
        (b"<?xml version='1.0'?><!-- hi --><stream:stream/>", "restricted-xml"),
        (b"hello", "not-well-formed"),
    ],
)
def test_header_errors_are_answered_after_our_header(header: bytes, condition: str) -> None:
    core = make_core()
    events = core.receive_data(header)
    assert failed(events).condition.value == condition
    out = core.data_to_send()
    found = items(out)
    # §4.9.1.2: our header first, from a host we serve, then the error and the close.
    assert found[0] == (
        "header",
        {
            "from": "localhost",
            "version": "1.0",
            "id": "id1",
            "{http://www.w3.org/XML/1998/namespace}lang": "en",
        },
    )
    assert stream_error_condition(out) == condition
    assert found[-1] == "footer"
    assert core.state is State.CLOSED
    assert core.receive_data(HEADER) == []


def test_version_1_1_is_answered_with_1_0() -> None:
    core = make_core()
    assert (
        core.receive_data(HEADER.replace(b"to='localhost' version='1.0'", b"to='localhost' version='1.1'"))
        == []
    )
    assert b"version='1.0'" in core.data_to_send()


def test_prefix_free_canonicalization() -> None:
    # RFC 6120 §4.8.2: no default namespace; every stanza qualified.
    header = (
        b"<s:stream xmlns:s='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"
        b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    )
    assert make_core().receive_data(header) == [StartTls()]


def test_virtual_hosts_and_case() -> None:
    core = C2SStream(["localhost", "Example.ORG"], tls_available=True, id_factory=counter("i"))
    core.receive_data(HEADER.replace(b"to='localhost'", b"to='EXAMPLE.org'"))
    assert core.host == "example.org"
    assert b"from='example.org'" in core.data_to_send()


def test_restart_to_another_host_is_refused() -> None:
    core = C2SStream(["localhost", "example.org"], tls_available=True)
    core.receive_data(HEADER + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    core.tls_started(None)
    events = core.receive_data(HEADER.replace(b"to='localhost'", b"to='example.org'"))
    assert failed(events).condition is StreamCondition.HOST_UNKNOWN


def test_unauthenticated_stanza_size_limit() -> None:
    core = make_core()
    core.receive_data(HEADER)
    core.data_to_send()
    events = core.receive_data(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>" + b"x" * 10_001)
    error = failed(events)
    assert error.condition is StreamCondition.POLICY_VIOLATION
    out = core.data_to_send()
    assert b'<stanza-too-big xmlns="urn:xmpp:errors"/>' in out


def test_authenticated_stanza_size_limit_is_larger() -> None:
    driver = login()
    body = b"x" * 20_000
    events = driver.feed(b"<message to='bob@localhost'><body>" + body + b"</body></message>")
    assert isinstance(events[0], StanzaIn)
    events = driver.feed(b"<message><body>" + b"x" * (256 * 1024 + 10_000) + b"</body></message>")
    assert failed(events).app_condition == "stanza-too-big"


def test_stanza_before_authentication() -> None:
    core = make_core()
    core.receive_data(HEADER)
    events = core.receive_data(b"<message to='bob@localhost'><body>hi</body></message>")
    assert failed(events).condition is StreamCondition.NOT_AUTHORIZED


def test_stanza_before_bind() -> None:
    driver = tls_driver()
    driver.feed(auth_plain("alice", PASSWORD))
    driver.feed(HEADER)
    events = driver.feed(b"<presence/>")
    assert failed(events).condition is StreamCondition.NOT_AUTHORIZED


@pytest.mark.parametrize(
    ("element", "condition"),
    [
        (b"<foo xmlns='urn:example'/>", StreamCondition.UNSUPPORTED_STANZA_TYPE),
        (b"<enable xmlns='urn:xmpp:sm:3'/>", StreamCondition.UNSUPPORTED_STANZA_TYPE),
        (
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'/>",
            StreamCondition.UNSUPPORTED_STANZA_TYPE,
        ),
        (b"<message xmlns='jabber:server'/>", StreamCondition.INVALID_NAMESPACE),
        (b"<iq xmlns='' type='get' id='1'/>", StreamCondition.INVALID_NAMESPACE),
    ],
)
def test_unknown_top_level_elements(element: bytes, condition: StreamCondition) -> None:
    driver = login()
    assert failed(driver.feed(element)).condition is condition


def test_parser_errors_become_stream_errors() -> None:
    driver = login()
    events = driver.feed(b"<message><body>hi</body></message><presence></message>")
    assert isinstance(events[0], StanzaIn)  # what completed before the error is delivered
    assert failed(events).condition is StreamCondition.NOT_WELL_FORMED
    assert stream_error_condition(driver.take()) == "not-well-formed"


def test_send_stream_error_with_text_and_app_condition() -> None:
    driver = login()
    driver.core.send_stream_error(StanzaTooBig("too big"))
    out = driver.take()
    assert out == (
        b'<stream:error><policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-streams"/>'
        b'<text xmlns="urn:ietf:params:xml:ns:xmpp-streams" xml:lang="en">too big</text>'
        b'<stanza-too-big xmlns="urn:xmpp:errors"/></stream:error></stream:stream>'
    )
    assert driver.core.state is State.CLOSED


def test_stream_error_before_any_header_sends_one_first() -> None:
    core = make_core()
    core.send_stream_error(StreamError(StreamCondition.SYSTEM_SHUTDOWN))
    assert items(core.data_to_send())[0][0] == "header"


# -- closing (RFC 6120 §4.4) ---------------------------------------------------------------------------


def test_peer_closes() -> None:
    driver = login()
    assert driver.feed(FOOTER) == [Closed()]
    assert driver.take() == FOOTER
    assert driver.core.state is State.CLOSED


def test_we_close_then_the_peer_does() -> None:
    driver = login()
    driver.core.close()
    assert driver.take() == FOOTER and driver.core.state is State.CLOSING
    assert driver.feed(b"<message><body>late</body></message>") == []  # nothing can be answered now
    driver.core.send_stanza(etree.fromstring("<message xmlns='jabber:client'/>"))  # dropped
    assert driver.feed(FOOTER) == [Closed()]
    assert driver.take() == b""  # no second closing tag


def test_closing_while_the_server_is_asked_cancels_the_request() -> None:
    core = make_core(tls_active=True, tls_available=False)
    core.receive_data(HEADER + auth_plain("alice", PASSWORD))
    core.data_to_send()
    core.close()
    assert core.state is State.CLOSING and core.data_to_send() == FOOTER
    assert core.password_checked(True) == []  # too late: a no-op, nothing after our footer
    assert core.data_to_send() == b""
    assert core.receive_data(FOOTER) == [Closed()]


def test_peer_stream_error() -> None:
    driver = login()
    events = driver.feed(
        b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
    )
    assert events == [Closed(peer_error="conflict")]
    assert driver.take() == FOOTER


# -- binding (RFC 6120 §7) and the session iq ------------------------------------------------------------


def authed_driver() -> Driver:
    driver = tls_driver()
    driver.feed(auth_plain("alice", PASSWORD))
    driver.feed(HEADER)
    assert features_of_output(driver.take()) == ["bind", "session"]
    driver.events.clear()
    return driver


def test_post_auth_features() -> None:
    driver = tls_driver()
    driver.feed(auth_plain("alice", PASSWORD))
    driver.feed(HEADER)
    features = next(i for i in items(driver.take()) if isinstance(i, tuple) and i[0].endswith("features"))
    session = features[3][1]
    assert session[0] == "{urn:ietf:params:xml:ns:xmpp-session}session"
    assert session[3][0][0] == "{urn:ietf:params:xml:ns:xmpp-session}optional"


def test_extra_post_auth_features() -> None:
    ver = etree.Element("{urn:xmpp:features:rosterver}ver", nsmap={None: "urn:xmpp:features:rosterver"})
    driver = Driver(make_core(features=[ver]))
    driver.feed(HEADER + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    driver.feed(HEADER + auth_plain("alice", PASSWORD))
    driver.feed(HEADER)
    assert features_of_output(driver.take()) == ["bind", "session", "ver"]


def test_bind_with_server_chosen_resource() -> None:
    driver = authed_driver()
    events = driver.core.receive_data(bind_iq(None))
    assert events == [BindRequest("b1", None)] and driver.core.state is State.BINDING
    driver.core.bound(JID("alice", "localhost", "abc123"))
    assert items(driver.core.data_to_send()) == items(
        b"<iq id='b1' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        b"<jid>alice@localhost/abc123</jid></bind></iq>"
    )
    assert driver.core.jid == JID("alice", "localhost", "abc123")


def test_bind_resource_is_normalised_or_refused() -> None:
    driver = authed_driver()
    assert driver.core.receive_data(bind_iq("Caf\u0065\u0301")) == [BindRequest("b1", "Caf\u00e9")]
    driver.core.bind_failed(StanzaError(StanzaCondition.CONFLICT))
    assert driver.core.state is State.UNBOUND
    out = items(driver.core.data_to_send())[0]
    assert ("type", "error") in out[1] and out[3][0][3][0][0].endswith("}conflict")
    driver.core.receive_data(bind_iq("\ue000private", iq_id="b2"))
    reply = items(driver.core.data_to_send())[0]
    assert reply[3][0][3][0][0].endswith("}bad-request") and driver.core.state is State.UNBOUND


def test_bound_must_be_the_users_full_jid() -> None:
    driver = authed_driver()
    driver.core.receive_data(bind_iq("r"))
    with pytest.raises(LocalProtocolError):
        driver.core.bound(JID("mallory", "localhost", "r"))
    with pytest.raises(LocalProtocolError):
        driver.core.bound(JID("alice", "localhost"))


def test_session_iq_before_and_after_bind() -> None:
    # xmpppy sends it after bind; RFC 3921 clients may send it before.
    driver = authed_driver()
    session = b"<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"
    assert driver.feed(session) == []
    assert items(driver.take()) == items(b"<iq type='result' id='s1'/>")
    driver.feed(bind_iq("r"))
    driver.take()
    assert driver.feed(session.replace(b"s1", b"s2")) == []
    assert items(driver.take()) == items(b"<iq type='result' id='s2' to='alice@localhost/r'/>")


def test_second_bind_is_not_allowed() -> None:
    driver = login()
    assert driver.feed(bind_iq("again", iq_id="b9")) == []
    assert items(driver.take())[0][3][0][3][0][0].endswith("}not-allowed")


def test_stanzas_pipelined_after_bind_are_held_until_bound() -> None:
    driver = authed_driver()
    events = driver.core.receive_data(bind_iq("r") + b"<presence/><message to='bob@localhost'/>")
    assert events == [BindRequest("b1", "r")]
    assert driver.core.receive_data(b"<presence type='unavailable'/>") == []
    events = driver.core.bound(JID("alice", "localhost", "r"))
    assert [type(e) for e in events] == [StanzaIn, StanzaIn, StanzaIn]
    assert all(isinstance(e, StanzaIn) and e.element.get("from") == "alice@localhost/r" for e in events)


# -- stanzas (RFC 6120 §8) -----------------------------------------------------------------------------------


def test_from_is_stamped_and_to_normalised() -> None:
    driver = login()
    [event] = driver.feed(
        b"<message from='mallory@evil/x' to='Bob@LocalHost/Phone' xml:lang='de'><body>hi</body></message>"
    )
    assert isinstance(event, StanzaIn)
    assert event.to == JID("bob", "localhost", "Phone")
    assert event.element.get("from") == "alice@localhost/res"  # §8.1.2.1: whatever the client wrote
    assert event.element.get("to") == "bob@localhost/Phone"
    assert event.element.get("{http://www.w3.org/XML/1998/namespace}lang") == "de"


def test_stream_language_is_stamped() -> None:
    driver = Driver(make_core())
    header = HEADER.replace(b"to='localhost'", b"to='localhost' xml:lang='fr'")
    driver.feed(header + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    driver.feed(header + auth_plain("alice", PASSWORD))
    driver.feed(header + bind_iq("r"))
    [event] = driver.feed(b"<presence/>")
    assert isinstance(event, StanzaIn)
    assert event.element.get("{http://www.w3.org/XML/1998/namespace}lang") == "fr"


@pytest.mark.parametrize(
    ("stanza", "condition"),
    [
        (b"<message to='a@@b' from='spoofed@x'><body>x</body></message>", "jid-malformed"),
        (b"<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>", "bad-request"),
        (b"<iq id='1'><ping xmlns='urn:xmpp:ping'/></iq>", "bad-request"),
        (b"<iq id='1' type='fetch'><ping xmlns='urn:xmpp:ping'/></iq>", "bad-request"),
        (b"<iq id='1' type='get'/>", "bad-request"),
        (b"<iq id='1' type='set'><a xmlns='x'/><b xmlns='x'/></iq>", "bad-request"),
        (b"<iq id='1' type='result'><a xmlns='x'/><b xmlns='x'/></iq>", "bad-request"),
        (b"<presence type='hello'/>", "bad-request"),
    ],
)
def test_malformed_stanzas_are_answered_by_the_core(stanza: bytes, condition: str) -> None:
    driver = login()
    assert driver.feed(stanza) == []
    reply = etree.fromstring(b"<w xmlns='jabber:client'>" + driver.take() + b"</w>")[0]
    assert reply.get("type") == "error"
    assert reply.get("from") is None  # from the server, not from a malformed address
    assert reply.get("to") == "alice@localhost/res"
    assert etree.QName(reply[0][0]).localname == condition
    assert driver.core.state is State.BOUND


def test_errors_are_never_answered() -> None:
    driver = login()
    assert driver.feed(b"<message type='error' to='a@@b'/>") == []
    assert driver.feed(b"<iq type='error'/>") == []
    assert driver.take() == b""


def test_unknown_message_type_passes() -> None:
    # RFC 6121 §5.2.2: treated as 'normal' by the recipient.
    driver = login()
    assert [type(e) for e in driver.feed(b"<message type='weird'/>")] == [StanzaIn]


def test_nonzas_in_configured_namespaces() -> None:
    driver = login(make_core(nonza_namespaces={"urn:xmpp:csi:0"}))
    [event] = driver.feed(b"<active xmlns='urn:xmpp:csi:0'/>")
    assert isinstance(event, NonzaIn) and event.element.tag == "{urn:xmpp:csi:0}active"


def test_send_stanza_writes_clean_xml() -> None:
    driver = login()
    message = etree.fromstring(
        b"<message xmlns='jabber:client' to='alice@localhost/res' from='bob@localhost/x' type='chat'>"
        b"<body>hi &amp; bye</body><x xmlns='vcard-temp:x:update'><photo/></x></message>"
    )
    message.tail = "junk"
    driver.core.send_stanza(message)
    assert driver.take() == (
        b'<message to="alice@localhost/res" from="bob@localhost/x" type="chat"><body>hi &amp; bye</body>'
        b'<x xmlns="vcard-temp:x:update"><photo/></x></message>'
    )
    # An element built without nsmap is rewritten with jabber:client as the default.
    iq = etree.Element("{jabber:client}iq", type="get", id="p1")
    etree.SubElement(iq, "{urn:xmpp:ping}ping")
    driver.core.send_stanza(iq)
    assert items(driver.take()) == items(b"<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")


def test_send_stanza_before_bind_raises() -> None:
    with pytest.raises(LocalProtocolError):
        make_core().send_stanza(etree.Element("{jabber:client}message"))


def test_stanza_error_reply_swaps_addresses() -> None:
    driver = login()
    [event] = driver.feed(b"<message to='bob@localhost' id='m1'><body>hi</body></message>")
    assert isinstance(event, StanzaIn)
    driver.core.stanza_error_reply(
        event.element, StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, "bob is away")
    )
    reply = items(driver.take())[0]
    assert reply[0] == "{jabber:client}message"
    assert dict(reply[1]) == {
        "from": "bob@localhost",
        "to": "alice@localhost/res",
        "id": "m1",
        "type": "error",
    }
    error = reply[3][0]
    assert dict(error[1]) == {"type": "cancel"}
    assert error[3][0][0] == "{urn:ietf:params:xml:ns:xmpp-stanzas}service-unavailable"
    assert error[3][1][2] == "bob is away"
    # Never an error in answer to an error (RFC 6120 §8.3.1).
    driver.core.stanza_error_reply(
        etree.fromstring(b"<message type='error'/>"), StanzaError(StanzaCondition.GONE)
    )
    assert driver.take() == b""


# -- the state machine as data -------------------------------------------------------------------------------


def test_every_state_but_closed_can_finish() -> None:
    finishing = {s for (s, i), t in TRANSITIONS.items() if t is State.CLOSED}
    assert finishing == set(State) - {State.CLOSED}


def test_from_config() -> None:
    config = Config()
    core = C2SStream.from_config(config, tls_available=True)
    core.receive_data(HEADER)
    assert b"<required/>" in core.data_to_send()
    limits = C2SLimits(max_unauthenticated_stanza_bytes=config.limits.max_unauthenticated_stanza_bytes)
    assert limits.max_unauthenticated_stanza_bytes == 10_000
