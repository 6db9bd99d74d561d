"""Record one real slixmpp session against xmlchat as an annotated transcript.

    python -m xmlchat.tools.transcript                  # rewrites docs/xmpp-transcript.md
    python -m xmlchat.tools.transcript -o -             # to stdout

It starts a server in-process (a temporary data directory, free loopback
ports), creates alice and bob, logs bob in over the native protocol and makes
him alice's contact, then runs the bundled slixmpp client as alice: STARTTLS,
SASL SCRAM-SHA-1, bind, initial presence, roster get, one message from bob
and one to him, and the closing of the stream. The client's transport is
tapped above TLS, so every byte is recorded decrypted, in the order it was
written or read, with its time and size.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import html
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from xmlchat import __version__
from xmlchat import config as config_mod
from xmlchat.client.native import NativeClient
from xmlchat.client.xmpp import XmppClient
from xmlchat.jid import JID
from xmlchat.server.tls import client_context

Direction = Literal["C", "S", "#"]  # client to server, server to client, a note
DEFAULT_OUTPUT: Final = Path("docs/xmpp-transcript.md")
PAUSE: Final = 0.2  # seconds between the login and bob's message


@dataclass(frozen=True, slots=True)
class Chunk:
    time: float  # seconds since the TCP connection opened
    direction: Direction
    data: bytes


@dataclass
class Recorder:
    chunks: list[Chunk] = field(default_factory=list)
    start: float | None = None

    def add(self, direction: Direction, data: bytes) -> None:
        now = time.perf_counter()
        if self.start is None:
            self.start = now
        self.chunks.append(Chunk(now - self.start, direction, data))


class RecordingClient(XmppClient):
    """The bundled client, with its decrypted traffic recorded."""

    def __init__(self, *args: Any, recorder: Recorder, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recorder = recorder
        self.add_event_handler("tls_success", self._tls_note)

    def send_raw(self, data: str | bytes) -> None:
        self.recorder.add("C", data.encode() if isinstance(data, str) else data)
        super().send_raw(data)

    def data_received(self, data: bytes | str) -> None:
        self.recorder.add("S", data.encode() if isinstance(data, str) else data)
        super().data_received(data)

    def _tls_note(self, _: Any) -> None:
        tls = self.transport.get_extra_info("ssl_object") if self.transport else None
        if tls is not None:
            cipher = tls.cipher()
            self.recorder.add(
                "#", f"TLS established: {tls.version()}, {cipher[0] if cipher else '?'}".encode()
            )


# ---- the session


async def record() -> tuple[Recorder, dict[str, str]]:
    from xmlchat.server.app import Server

    with tempfile.TemporaryDirectory(prefix="xmlchat-transcript-") as data_dir:
        config = config_mod.load(
            None,
            env={},
            overrides={
                "data_dir": data_dir,
                "listeners.native.port": 0,
                "listeners.xmpp.port": 0,
                "log.level": "warning",
            },
        )
        server = await Server.open(config)
        await server.start()
        for name in ("alice", "bob"):
            await server.storage.create_user(JID(name, "localhost"), f"{name}pw")
        ssl = client_context(str(Path(data_dir) / "tls" / "cert.pem"))
        bob = NativeClient("bob", "bobpw", port=server.port_of("native"), ssl=ssl, resource="phone")
        recorder = Recorder()
        alice = RecordingClient(
            "alice@localhost/laptop", "alicepw", ssl_context=ssl, sasl_mech="SCRAM-SHA-1", recorder=recorder
        )
        try:
            await bob.start()
            await bob.add_contact("alice")  # the native contact-add: both subscribed
            await alice.start("127.0.0.1", server.port_of("xmpp"))
            await asyncio.sleep(PAUSE)  # let presence settle, so the steps stay apart
            await bob.send("alice", "Hi Alice! 你好")
            await asyncio.wait_for(alice.incoming.get(), 5)
            alice.send_chat("bob@localhost", "Hello Bob, from slixmpp.")
            await asyncio.wait_for(bob.incoming.get(), 5)
            await alice.stop()
        finally:
            await bob.close()
            await server.stop()
        import slixmpp

        versions = {"xmlchat": __version__, "slixmpp": str(slixmpp.__version__)}
        return recorder, versions


# ---- annotations


@dataclass(frozen=True, slots=True)
class Rule:
    direction: Direction
    pattern: re.Pattern[str]
    step: str
    note: str | Callable[[re.Match[str]], str]


def _rule(direction: Direction, pattern: str, step: str, note: str | Callable[[re.Match[str]], str]) -> Rule:
    return Rule(direction, re.compile(pattern, re.S), step, note)


def _sasl_text(match: re.Match[str]) -> str:
    try:
        decoded = base64.b64decode(match.group("data")).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return ""
    return f" Decoded: `{decoded}`" if decoded else ""


# Steps, in order; a chunk counts towards the step of its first matching rule.
STEPS: Final = ("stream and STARTTLS", "SASL", "bind", "presence and roster", "messages", "close")
TITLES: Final = {
    "stream and STARTTLS": "Stream and STARTTLS (RFC 6120 §4, §5)",
    "SASL": "SASL authentication, SCRAM-SHA-1 (RFC 6120 §6, RFC 5802)",
    "bind": "Resource binding (RFC 6120 §7)",
    "presence and roster": "Presence and roster (RFC 6121 §2, §4)",
    "messages": "Messages (RFC 6121 §5)",
    "close": "Closing (RFC 6120 §4.4)",
}

RULES: Final = (
    _rule("C", r"^<stream:stream", "stream and STARTTLS", "RFC 6120 §4.2, §4.7: the client opens the stream"),
    _rule(
        "S",
        r"<stream:features><starttls[^>]*><required/>",
        "stream and STARTTLS",
        "RFC 6120 §4.2, §4.3.2: the server's header, then features: STARTTLS, mandatory (§5.3.1) — "
        "no SASL offered before TLS",
    ),
    _rule("C", r"^<starttls", "stream and STARTTLS", "RFC 6120 §5.4.2.1: the client asks for TLS"),
    _rule(
        "S",
        r"<proceed",
        "stream and STARTTLS",
        "RFC 6120 §5.4.2.3: proceed; the TLS handshake follows on the same TCP connection (§5.4.3.1)",
    ),
    _rule("C", r"^<stream:stream", "SASL", "RFC 6120 §5.4.3.3: inside TLS, the client opens a new stream"),
    _rule(
        "S",
        r"<mechanisms[^>]*>(?P<mechs>.*?)</mechanisms>",
        "SASL",
        lambda m: (
            "RFC 6120 §6.4.1: the server's new header and features: the SASL mechanisms "
            + ", ".join(re.findall(r"<mechanism>([^<]+)</mechanism>", m.group("mechs")))
        ),
    ),
    _rule(
        "C",
        r"<auth [^>]*mechanism=.(?P<mech>[\w-]+).[^>]*>(?P<data>[^<]*)</auth>",
        "SASL",
        lambda m: (
            f"RFC 6120 §6.4.2: SASL {m.group('mech')} begins with the RFC 5802 client-first-message "
            f"(gs2 header, user name, client nonce).{_sasl_text(m)}"
        ),
    ),
    _rule(
        "S",
        r"<challenge[^>]*>(?P<data>[^<]*)</challenge>",
        "SASL",
        lambda m: (
            "RFC 6120 §6.4.3: challenge, the RFC 5802 server-first-message "
            f"(combined nonce, salt, iteration count).{_sasl_text(m)}"
        ),
    ),
    _rule(
        "C",
        r"<response[^>]*>(?P<data>[^<]*)</response>",
        "SASL",
        lambda m: (
            "RFC 6120 §6.4.3: response, the client-final-message with the client proof "
            f"(the password itself never travels).{_sasl_text(m)}"
        ),
    ),
    _rule(
        "S",
        r"<success[^>]*>(?P<data>[^<]*)</success>",
        "SASL",
        lambda m: (
            "RFC 6120 §6.4.6: success, carrying the server signature the client verifies "
            f"(mutual authentication).{_sasl_text(m)}"
        ),
    ),
    _rule("C", r"^<stream:stream", "bind", "RFC 6120 §6.4.6: the client restarts the stream after SASL"),
    _rule(
        "S",
        r"<stream:features>[^#]*?<bind",
        "bind",
        "RFC 6120 §4.3.3, §7.4: the new stream's features: resource binding (and the optional "
        "legacy session, draft-cridland-xmpp-session)",
    ),
    _rule("C", r"<iq [^>]*><bind", "bind", "RFC 6120 §7.7.1: the client asks to bind the resource it chose"),
    _rule("S", r"<iq [^>]*><bind", "bind", "RFC 6120 §7.6.1, §7.7.1: the server answers with the full JID"),
    _rule(
        "C",
        r"^<presence(?![^>]*type=)[^>]*/?>",
        "presence and roster",
        "RFC 6121 §4.2.1: initial presence — alice is available",
    ),
    _rule(
        "C",
        r"<iq [^>]*type=.get.[^>]*><query xmlns=.jabber:iq:roster.",
        "presence and roster",
        "RFC 6121 §2.1.3: roster get; slixmpp sends it right after presence, without waiting",
    ),
    _rule(
        "S",
        r"<presence [^>]*from=.bob@localhost/",
        "presence and roster",
        "RFC 6121 §4.2.2, §4.3: bob's presence: he is alice's contact (subscription both) and online, "
        "so the server answers the presence probe itself",
    ),
    _rule(
        "S",
        r"<presence [^>]*from=.alice@localhost/laptop",
        "presence and roster",
        "RFC 6121 §4.2.2: the server reflects alice's own presence to her",
    ),
    _rule(
        "S",
        r"<iq [^>]*type=.result.[^>]*>\s*<query xmlns=.jabber:iq:roster.",
        "presence and roster",
        "RFC 6121 §2.1.4: the roster, with its version (§2.6)",
    ),
    _rule(
        "S",
        r"<message [^>]*from=.bob@localhost",
        "messages",
        "RFC 6121 §5.1, §5.2.2: a chat message from bob, who uses the native protocol; the server "
        "translated it, keeping its id, and stamped 'from' with his full JID (RFC 6120 §8.1.2.1). "
        "Sent to alice's bare JID, it goes to her available resources (RFC 6121 §8.5.2.1.1)",
    ),
    _rule(
        "C",
        r"<message [^>]*to=.bob@localhost",
        "messages",
        "RFC 6121 §5.1: alice answers; bob gets it over the native protocol with the server's timestamp",
    ),
    _rule(
        "S",
        r"<iq [^>]*type=.get.[^>]*><ping",
        "messages",
        "XEP-0199 §4.1: the server pings an idle client",
    ),
    _rule("C", r"<iq [^>]*type=.result", "messages", "XEP-0199 §4.1: the pong"),
    _rule("C", r"</stream:stream>", "close", "RFC 6120 §4.4: the client closes the stream"),
    _rule("S", r"</stream:stream>", "close", "RFC 6120 §4.4: the server closes its stream too; TCP closes"),
)


def annotate(chunks: list[Chunk]) -> list[tuple[Chunk, str, list[str]]]:
    """Each chunk with its step and notes. Rules are tried in order, each at
    most once for the whole session, so repeated shapes (the stream header)
    get the note of the step they belong to."""
    used: set[int] = set()
    step = STEPS[0]
    out = []
    for chunk in chunks:
        if chunk.direction == "#":
            out.append((chunk, step, [chunk.data.decode()]))
            continue
        text = chunk.data.decode("utf-8", "replace")
        found: list[tuple[int, str]] = []
        for index, rule in enumerate(RULES):
            behind = STEPS.index(rule.step) < STEPS.index(step)
            if index in used or rule.direction != chunk.direction or behind:
                continue
            match = rule.pattern.search(text)
            if match is None or any(start == match.start() for start, _ in found):
                continue  # one note per element
            used.add(index)
            found.append((match.start(), rule.note(match) if callable(rule.note) else rule.note))
            if len(found) == 1:
                step = rule.step
        found.sort()
        out.append((chunk, step, [note for _, note in found]))
    return out


# ---- rendering


def render(recorder: Recorder, versions: dict[str, str]) -> str:
    annotated = annotate(recorder.chunks)
    lines = [
        "# One XMPP session, byte for byte",
        "",
        "<!-- Generated by `python -m xmlchat.tools.transcript`; edit the tool, not this file. -->",
        "",
        "Regenerate with `.venv/bin/python -m xmlchat.tools.transcript` (rewrites this file). It starts",
        "xmlchat in-process on free loopback ports, logs **bob** in over the native protocol and makes him",
        "alice's contact, then runs the bundled slixmpp client (`xmlchat/client/xmpp.py`) as",
        "**alice@localhost/laptop**: STARTTLS, SASL SCRAM-SHA-1, resource binding, initial presence,",
        "roster get, one message from bob and one to him, then the closing of the stream.",
        "",
        f"Recorded with xmlchat {versions['xmlchat']} and slixmpp {versions['slixmpp']}. The client's",
        "transport is tapped *above* TLS, so everything after `<proceed/>` is shown decrypted. Each block",
        "is one write (C → S) or one read (S → C) as it happened, with its time since the TCP connection",
        "opened and its size in bytes of XML; TLS records, TCP and IP headers come on top (the wire-level",
        "numbers are in [protocols.md](protocols.md)). Ids, nonces and stamps change on every run.",
        "",
    ]
    totals: dict[str, list[int]] = {s: [0, 0, 0, 0] for s in STEPS}  # C bytes, C writes, S bytes, S reads
    step_seen = ""
    for chunk, step, notes in annotated:
        if chunk.direction == "#":
            lines += [f"> *+{chunk.time:.3f} s — {notes[0]}; all that follows is inside TLS.*", ""]
            continue
        if step != step_seen:
            lines += [f"## {STEPS.index(step) + 1}. {TITLES[step]}", ""]
            step_seen = step
        arrow = "C → S" if chunk.direction == "C" else "S → C"
        total = totals[step]
        if chunk.direction == "C":
            total[0] += len(chunk.data)
            total[1] += 1
        else:
            total[2] += len(chunk.data)
            total[3] += 1
        lines.append(f"**{arrow}** +{chunk.time:.3f} s, {len(chunk.data)} bytes")
        for note in notes:
            lines.append(f"— {note}")
        lines += ["", "```xml", chunk.data.decode("utf-8", "replace").rstrip("\n"), "```", ""]
    lines += [
        "## Bytes per step",
        "",
        "XML bytes only (above TLS).",
        "",
        "| step | C → S bytes | writes | S → C bytes | reads |",
        "|---|---:|---:|---:|---:|",
    ]
    sums = [0, 0, 0, 0]
    for step in STEPS:
        c_bytes, c_writes, s_bytes, s_reads = totals[step]
        sums = [a + b for a, b in zip(sums, totals[step], strict=True)]
        lines.append(f"| {html.escape(step)} | {c_bytes} | {c_writes} | {s_bytes} | {s_reads} |")
    lines.append(f"| **total** | **{sums[0]}** | **{sums[1]}** | **{sums[2]}** | **{sums[3]}** |")
    duration = recorder.chunks[-1].time if recorder.chunks else 0.0
    lines += [
        "",
        f"The whole session took {duration:.3f} s on loopback, {PAUSE} s of it a pause the script",
        "makes after the login, before bob writes.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xmlchat.tools.transcript", description=__doc__.split("\n")[0]
    )
    parser.add_argument("-o", "--output", default=str(DEFAULT_OUTPUT), help="markdown file, or - for stdout")
    args = parser.parse_args(argv)
    recorder, versions = asyncio.run(record())
    text = render(recorder, versions)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}: {len(recorder.chunks)} chunks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
