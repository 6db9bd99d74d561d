"""What each chunk of a recorded XMPP session is: its step and the RFC sections behind it.

No I/O here: :func:`annotate` reads chunks that :mod:`xmlchat.tools.transcript`
recorded, and a test can feed it made-up ones.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

Direction = Literal["C", "S", "#"]  # client to server, server to client, a note


@dataclass(frozen=True, slots=True)
class Chunk:
    time: float  # seconds since the TCP connection opened
    direction: Direction
    data: bytes



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
