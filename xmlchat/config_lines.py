"""Where in a TOML file a key is set, for error messages that name the line
(tomllib keeps no positions)."""

from __future__ import annotations

import re

__all__ = ["toml_line"]


def toml_line(text: str, key: tuple[str, ...]) -> int | None:
    """The line of ``text`` (TOML) that sets ``key`` or opens its table, if found.

    A line scanner rather than a parser (tomllib keeps no positions): it follows
    ``[table]`` headers and ``a.b = ...`` keys, and falls back to the line of an
    inline table that contains the key.
    """
    table: tuple[str, ...] = ()
    fallback = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        header = re.match(r"^\[\[?([^\]]+)\]\]?", stripped)
        if header:
            table = _key_parts(header.group(1))
            if table == key:
                return number
            continue
        assignment = re.match(r"^([A-Za-z0-9_\-.\"' ]+?)\s*=", stripped)
        if assignment:
            full = table + _key_parts(assignment.group(1))
            if full == key:
                return number
            if fallback is None and key[: len(full)] == full:
                fallback = number
    return fallback


def _key_parts(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in dotted.split("."))
