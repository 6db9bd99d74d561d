"""What a line typed into ``xmlchat chat`` / ``xmpp-chat`` means, without any I/O.

A line is a message as typed unless it starts with ``/``: ``bob: hi`` is the
text "bob: hi" to the current conversation, never a recipient. ``//text``
sends "/text". A body too big for one stanza is split before it reaches the
server's stanza limit (RFC 6120 §13.12's "maximum stanza size"), or refused.
"""

from __future__ import annotations

from dataclasses import dataclass

# What a message's stanza carries besides its body: the element names, the
# recipient, an id, and what the server adds (from, a timestamp). Generous.
ENVELOPE_BYTES = 2048
# A paste bigger than this many messages is refused rather than split.
MAX_PARTS = 8


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # without the slash, lower case
    args: str  # the rest of the line, stripped


@dataclass(frozen=True, slots=True)
class Text:
    body: str


def parse(line: str) -> Command | Text | None:
    """One line from the terminal (without its newline); None for a blank line."""
    if not line.strip():
        return None
    if line.startswith("//"):
        return Text(line[1:])
    if line.startswith("/"):
        name, _, args = line[1:].partition(" ")
        return Command(name.lower(), args.strip())
    return Text(line)


def escaped_size(text: str) -> int:
    """Bytes ``text`` takes as XML character data in UTF-8 (``&`` → ``&amp;``;
    quotes counted escaped too, as some serialisers write them)."""
    size = len(text.encode("utf-8"))
    for char, escape in (("&", 5), ("<", 4), (">", 4), ('"', 6), ("'", 6)):
        size += text.count(char) * (escape - 1)
    return size


class TooLong(ValueError):
    def __init__(self, size: int, part_bytes: int) -> None:
        super().__init__(
            f"not sent: {_kib(size)} is more than {MAX_PARTS} messages of {_kib(part_bytes)} "
            "(the server's stanza limit); send it another way"
        )


def split_body(body: str, stanza_limit: int) -> list[str]:
    """``body`` as the fewest messages that each fit ``stanza_limit``, cut at
    whitespace where one is near the end of a part. Raises TooLong when that
    takes more than MAX_PARTS messages."""
    part_bytes = max(256, stanza_limit - ENVELOPE_BYTES)
    total = escaped_size(body)
    if total <= part_bytes:
        return [body]
    if total > part_bytes * MAX_PARTS:
        raise TooLong(total, part_bytes)
    parts: list[str] = []
    rest = body
    while rest:
        cut = _fitting_prefix(rest, part_bytes)
        parts.append(rest[:cut])
        rest = rest[cut:]
    if len(parts) > MAX_PARTS:
        raise TooLong(total, part_bytes)
    return parts


def _fitting_prefix(text: str, budget: int) -> int:
    """The length of the longest prefix of ``text`` within ``budget`` bytes,
    moved back to just after a whitespace in its last tenth if there is one."""
    if escaped_size(text) <= budget:
        return len(text)
    low, high = 1, len(text)  # escaped_size is monotonic in the prefix length
    while low < high:
        middle = (low + high + 1) // 2
        if escaped_size(text[:middle]) <= budget:
            low = middle
        else:
            high = middle - 1
    space = max(text.rfind(" ", 0, low), text.rfind("\n", 0, low))
    return space + 1 if space >= low * 9 // 10 else low


def _kib(size: int) -> str:
    return f"{size / 1024:.0f} KiB" if size >= 10 * 1024 else f"{size} bytes"
