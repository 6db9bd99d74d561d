"""Record one real slixmpp session against xmlchat as an annotated transcript.

    python -m xmlchat.tools.transcript                  # rewrites docs/xmpp-transcript.md
    python -m xmlchat.tools.transcript -o -             # to stdout

It starts a server in-process (a temporary data directory, free loopback
ports), creates alice and bob, logs bob in over the native protocol and makes
him alice's contact, then runs the bundled slixmpp client as alice: STARTTLS,
SASL SCRAM-SHA-1, bind, initial presence, roster get, one message from bob
and one to him, and the closing of the stream. The client's transport is
tapped above TLS, so every byte is recorded decrypted, in the order it was
written or read, with its time and size. The notes on each chunk (its step,
the RFC sections) come from :mod:`xmlchat.tools.transcript_notes`.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from xmlchat import __version__
from xmlchat import config as config_mod
from xmlchat.client.native import NativeClient
from xmlchat.client.xmpp import XmppClient
from xmlchat.jid import JID
from xmlchat.server.tls import client_context
from xmlchat.tools.transcript_notes import STEPS, TITLES, Chunk, Direction, annotate

# Also importable from here, as before the rules moved to transcript_notes.py.
__all__ = [
    "DEFAULT_OUTPUT",
    "STEPS",
    "TITLES",
    "Chunk",
    "Recorder",
    "RecordingClient",
    "annotate",
    "main",
    "record",
    "render",
]

DEFAULT_OUTPUT: Final = Path("docs/xmpp-transcript.md")
PAUSE: Final = 0.2  # seconds between the login and bob's message


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
                "listeners.http.enabled": False,
                "listeners.https.enabled": False,
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
