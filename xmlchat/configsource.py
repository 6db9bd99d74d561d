"""Where configuration values come from, and how they become typed: TOML
keys and their lines, ``XMLCHAT_*`` environment variables, and the conversion
of each raw value to its dataclass field's type. :mod:`xmlchat.config` holds
the dataclasses and :func:`~xmlchat.config.load`.
"""

from __future__ import annotations

import dataclasses
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
    if origin is dict:
        return _string_table(raw, key)
    if origin is tuple:
        if isinstance(raw, str):
            raw = [p.strip() for p in raw.split(",") if p.strip()]
        if not isinstance(raw, list) or not raw or not all(isinstance(x, str) for x in raw):
            raise ConfigError(f"{key}: expected a non-empty list of strings", key)
        return tuple(raw)
    return _convert_scalar(tp, raw, key)


def _string_table(raw: Any, key: str) -> dict[str, str]:
    """A TOML table of strings; from the environment, ``name=value`` pairs, comma separated."""
    if isinstance(raw, str):
        pairs = [p.strip().partition("=") for p in raw.split(",") if p.strip()]
        if any(not sep or not name.strip() for name, sep, _ in pairs):
            raise ConfigError(f"{key}: expected name=value pairs, comma separated", key)
        raw = {name.strip(): value.strip() for name, _, value in pairs}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ConfigError(f"{key}: expected a table of strings", key)
    return dict(raw)


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
