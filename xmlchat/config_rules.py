"""The whole configuration checked at start: values each valid on their own
but wrong as a setting (a limit of 0), or contradicting each other (two
listeners on one port), or naming files that are not there.

:func:`problems` lists every problem, each a :class:`~xmlchat.config.ConfigError`
naming the key; ``xmlchat serve`` refuses to start on the first (one line,
exit status 2) and ``xmlchat check`` reports them all.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Final

from xmlchat.config import Config, ConfigError, Listener

# Keys that must be above zero: a zero size, count or timeout would refuse
# everyone (or, for a timeout, drop every connection at once).
_POSITIVE: Final = (
    "max_stanza_bytes", "max_unauthenticated_stanza_bytes", "max_depth", "idle_timeout",
    "login_timeout", "tls_handshake_timeout", "max_pending_per_ip", "max_pending",
    "listen_backlog", "max_send_buffer_bytes", "stuck_timeout", "stanza_burst", "byte_burst",
    "max_login_attempts", "max_offline_messages", "login_backoff_after", "login_backoff_max",
    "login_lockout_after", "login_ban_after", "login_lockout_seconds",
)  # fmt: skip
# Keys where 0 means "off" and only a negative value is wrong.
_NOT_NEGATIVE: Final = (
    "stanzas_per_second", "bytes_per_second", "ip_stanzas_per_second", "ip_bytes_per_second",
    "login_backoff",
)  # fmt: skip
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
MIN_SCRAM_ITERATIONS: Final = 4096  # RFC 7677 §4


def validate(config: Config) -> None:
    """Raise the first problem, if any."""
    found = problems(config)
    if found:
        raise found[0]


def problems(config: Config) -> list[ConfigError]:
    return [
        *_limits(config), *_others(config), *_rooms(config), *_listeners(config), *_components(config),
        *_tls_files(config),
    ]  # fmt: skip


def _limits(config: Config) -> list[ConfigError]:
    out = []
    limits = config.limits
    for name in _POSITIVE:
        value = getattr(limits, name)
        if value <= 0:
            out.append(ConfigError(f"limits.{name}: must be greater than 0, not {value}", f"limits.{name}"))
    for name in _NOT_NEGATIVE:
        value = getattr(limits, name)
        if value < 0:
            out.append(ConfigError(f"limits.{name}: must be 0 (off) or more, not {value}", f"limits.{name}"))
    return out


def _others(config: Config) -> list[ConfigError]:
    out = []
    if config.log.level.lower() not in LOG_LEVELS:
        out.append(
            ConfigError(
                f"log.level: must be one of {', '.join(LOG_LEVELS)}, not {config.log.level!r}", "log.level"
            )
        )
    if config.storage.scram_iterations < MIN_SCRAM_ITERATIONS:
        out.append(
            ConfigError(
                f"storage.scram_iterations: at least {MIN_SCRAM_ITERATIONS} (RFC 7677), "
                f"not {config.storage.scram_iterations}",
                "storage.scram_iterations",
            )
        )
    for key, value in (("archive.max_page", config.archive.max_page),):
        if value <= 0:
            out.append(ConfigError(f"{key}: must be greater than 0, not {value}", key))
    if config.archive.retention_days < 0:
        out.append(
            ConfigError("archive.retention_days: must be 0 (forever) or more", "archive.retention_days")
        )
    return out


def _rooms(config: Config) -> list[ConfigError]:
    muc = config.muc
    out = []
    if not _LABEL.fullmatch(muc.subdomain):
        # The hub finds a service by the first label of the domain addressed.
        why = f"muc.subdomain: must be one DNS label (e.g. conference), not {muc.subdomain!r}"
        out.append(ConfigError(why, "muc.subdomain"))
    for name in ("max_rooms", "max_occupants", "message_burst"):
        if getattr(muc, name) <= 0:
            out.append(
                ConfigError(f"muc.{name}: must be greater than 0, not {getattr(muc, name)}", f"muc.{name}")
            )
    for name in ("history_size", "messages_per_second"):
        if getattr(muc, name) < 0:
            out.append(
                ConfigError(f"muc.{name}: must be 0 (off) or more, not {getattr(muc, name)}", f"muc.{name}")
            )
    return out


def enabled_listeners(config: Config) -> dict[str, Listener]:
    return {
        f.name: getattr(config.listeners, f.name)
        for f in dataclasses.fields(config.listeners)
        if getattr(config.listeners, f.name).enabled
    }


def _listeners(config: Config) -> list[ConfigError]:
    out = []
    ports: list[tuple[str, str, int]] = [
        (f"listeners.{name}", listener.address, listener.port)
        for name, listener in enabled_listeners(config).items()
    ]
    if config.metrics.enabled:
        ports.append(("metrics", config.metrics.address, config.metrics.port))
    for key, _, port in ports:
        if not 0 <= port <= 65535:
            out.append(ConfigError(f"{key}.port: not a TCP port: {port}", f"{key}.port"))
    for i, (key, address, port) in enumerate(ports):
        for other, other_address, other_port in ports[:i]:
            if port and port == other_port and _overlap(address, other_address):
                out.append(
                    ConfigError(f"{key}.port: {port} is also {other}.port, on {other_address}", f"{key}.port")
                )
    for name, listener in enabled_listeners(config).items():
        if listener.tls == "none" and name.startswith("xmpp") and config.xmpp.require_encryption:
            out.append(
                ConfigError(
                    f'listeners.{name}.tls = "none" needs xmpp.require_encryption = false: '
                    "no client could log in on it",
                    f"listeners.{name}.tls",
                )
            )
    return out


def _components(config: Config) -> list[ConfigError]:
    """XEP-0114: a listener with no component is a mistake; the protocol has no
    TLS; a component's domain is served as a subdomain of a host."""
    out = []
    if config.listeners.component.enabled:
        if config.listeners.component.tls != "none":
            key = "listeners.component.tls"
            out.append(ConfigError(f'{key}: must be "none": XEP-0114 has no TLS', key))
        if not config.components.secrets:
            key = "components.secrets"
            out.append(ConfigError(f"{key}: listeners.component is enabled but names no component", key))
    for domain in config.components.secrets:
        label, _, parent = domain.partition(".")
        if not label or parent not in config.hosts:
            key = "components.secrets"
            hosts = ", ".join(config.hosts)
            out.append(ConfigError(f"{key}: {domain!r} must be a subdomain of a host ({hosts})", key))
    return out


def _overlap(a: str, b: str) -> bool:
    """Would binding both addresses on one port clash? (A wildcard takes every address.)"""
    wildcards = ("0.0.0.0", "::", "")
    names = {"localhost": "127.0.0.1"}
    return names.get(a, a) == names.get(b, b) or a in wildcards or b in wildcards


def _tls_files(config: Config) -> list[ConfigError]:
    if not any(listener.tls != "none" for listener in enabled_listeners(config).values()):
        return []
    cert, key = config.tls.cert_file, config.tls.key_file
    if bool(cert) != bool(key):
        missing = "tls.key_file" if cert else "tls.cert_file"
        return [ConfigError(f"{missing}: set tls.cert_file and tls.key_file both, or neither", missing)]
    out = []
    for name, value in (("tls.cert_file", cert), ("tls.key_file", key)):
        if value and not Path(value).is_file():
            out.append(ConfigError(f"{name}: {value}: no such file", name))
    return out
