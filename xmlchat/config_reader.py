"""Reading a tree of frozen dataclasses from TOML tables and environment
variables: the generic half of :mod:`xmlchat.config`, which knows no section.

Values are converted to each field's type (bool, int, float, str, a Literal's
choices, a tuple of strings); unknown keys and wrong types are a
:class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Mapping
from typing import Any, Literal


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key.

    ``key`` is the dotted key path at fault, when there is one; ``where`` says
    where its value came from (``xmlchat.toml line 7``, ``XMLCHAT_LIMITS_...``).
    """

    def __init__(self, message: str, key: str | None = None, where: str | None = None) -> None:
        super().__init__(f"{message} ({where})" if where else message)
        self.key, self.where = key, where


def env_name(key: tuple[str, ...]) -> str:
    """The environment variable that sets ``key``: ``XMLCHAT_LISTENERS_NATIVE_PORT``."""
    return "_".join(("XMLCHAT", *key)).upper()


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


def env_items(
    cls: type, prefix: str, path: tuple[str, ...], env: Mapping[str, str]
) -> list[tuple[tuple[str, ...], str]]:
    out = []
    for f in dataclasses.fields(cls):
        key = (*path, f.name)
        ftype = _hints(cls)[f.name]
        if dataclasses.is_dataclass(ftype):
            out += env_items(typing.cast(type, ftype), prefix, key, env)
            continue
        name = "_".join((prefix, *key)).upper()
        if name in env:
            out.append((key, env[name]))
    return out


def set_path(data: dict[str, Any], key: tuple[str, ...], value: Any) -> None:
    for part in key[:-1]:
        data = data.setdefault(part, {})
    data[key[-1]] = value


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def merge(base: Any, raw: Any, path: tuple[str, ...]) -> Any:
    """``base`` (a dataclass instance) with the values of table ``raw`` applied.

    Nested tables merge into the base's own field value, so a partial
    ``[listeners.native]`` keeps the native listener's default port and TLS mode.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{'.'.join(path) or 'top level'}: expected a table", ".".join(path) or None)
    hints = _hints(type(base))
    unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(base)})
    if unknown:
        bad = ".".join((*path, unknown[0]))
        raise ConfigError(f"unknown key {bad!r}", bad)
    changes = {}
    for name, value in raw.items():
        current = getattr(base, name)
        if dataclasses.is_dataclass(current):
            changes[name] = merge(current, value, (*path, name))
        else:
            changes[name] = _convert(hints[name], value, (*path, name))
    return dataclasses.replace(base, **changes)


def _convert(tp: Any, raw: Any, path: tuple[str, ...]) -> Any:
    key = ".".join(path)
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if raw not in choices:
            raise ConfigError(f"{key}: must be one of {', '.join(map(repr, choices))}, not {raw!r}", key)
        return raw
    if origin is tuple:
        if isinstance(raw, str):
            raw = [p.strip() for p in raw.split(",") if p.strip()]
        if not isinstance(raw, list) or not raw or not all(isinstance(x, str) for x in raw):
            raise ConfigError(f"{key}: expected a non-empty list of strings", key)
        return tuple(raw)
    return _convert_scalar(tp, raw, key)


def _convert_scalar(tp: Any, raw: Any, key: str) -> Any:
    if tp is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return raw.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{key}: expected true or false, not {raw!r}", key)
    if tp is int:
        try:
            if isinstance(raw, bool):
                raise ValueError
            return int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected an integer, not {raw!r}", key) from None
    if tp is float:
        try:
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, not {raw!r}", key) from None
    if tp is str:
        if not isinstance(raw, str):
            raise ConfigError(f"{key}: expected a string, not {raw!r}", key)
        return raw
    raise ConfigError(f"{key}: unsupported type {tp!r}", key)
