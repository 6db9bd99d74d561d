"""Configuration: one typed, frozen object.

Sources, later ones winning: built-in defaults, a TOML file, then environment
variables named after the key path: ``[listeners.native] port = 5290`` is
``XMLCHAT_LISTENERS_NATIVE_PORT=5290``; top-level ``hosts`` is ``XMLCHAT_HOSTS``
(comma separated). Unknown keys are errors, so a typo never goes unnoticed.
``docs/configuration.md`` lists every key.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from xmlchat.config_lines import toml_line
from xmlchat.configsource import ConfigError, env_items, env_name, merge, set_path

__all__ = ["Config", "ConfigError", "env_name", "load", "toml_line"]

TlsMode = Literal["none", "starttls", "direct"]
LogFormat = Literal["text", "json"]
EventLoop = Literal["auto", "asyncio", "uvloop"]
Synchronous = Literal["normal", "full"]


@dataclass(frozen=True)
class Listener:
    enabled: bool = True
    address: str = "127.0.0.1"
    port: int = 0
    # "direct": TLS from the first byte; "starttls": XMPP negotiates it (RFC 6120 §5);
    # "none": plaintext.
    tls: TlsMode = "none"


@dataclass(frozen=True)
class Listeners:
    # Native protocol over TLS: on by default.
    native: Listener = Listener(port=5290, tls="direct")
    # Native protocol in plaintext: for loopback demos and benchmarks only.
    native_plain: Listener = Listener(enabled=False, port=5291, tls="none")
    # XMPP client-to-server with STARTTLS (RFC 6120), and direct TLS (XEP-0368).
    xmpp: Listener = Listener(port=5222, tls="starttls")
    xmpp_tls: Listener = Listener(enabled=False, port=5223, tls="direct")
    # HTTP: XMPP over WebSocket (RFC 7395) and BOSH (XEP-0206), the native
    # protocol over WebSocket, XEP-0156 discovery, the web chat page at /.
    # Plain on loopback, and TLS.
    http: Listener = Listener(port=5280, tls="none")
    https: Listener = Listener(port=5443, tls="direct")
    # XEP-0114 external components: plaintext by the XEP, so loopback by default.
    component: Listener = Listener(enabled=False, port=5347, tls="none")


@dataclass(frozen=True)
class Tls:
    # PEM files; when both are empty a self-signed pair is generated into data_dir.
    cert_file: str = ""
    key_file: str = ""


@dataclass(frozen=True)
class Limits:
    # Prosody's c2s_stanza_size_limit is 256 KiB; its unauthenticated limit is 10 000 B.
    max_stanza_bytes: int = 256 * 1024
    max_unauthenticated_stanza_bytes: int = 10_000
    max_depth: int = 32
    # Seconds a connection may stay silent before it is pinged, then dropped.
    idle_timeout: float = 300.0
    # Before login (docs/security.md): ejabberd's negotiation timeout, until
    # logged in (XMPP: bound); caps on connections not logged in; listen(2).
    login_timeout: float = 30.0
    tls_handshake_timeout: float = 30.0
    max_pending_per_ip: int = 100
    max_pending: int = 1000
    listen_backlog: int = 1024
    # Outbound bytes queued for a slow reader before it is disconnected (messages
    # for a client that falls behind wait in the store instead, see stuck_timeout).
    max_send_buffer_bytes: int = 4 * 1024 * 1024
    # Seconds a client that is behind may take nothing before it is disconnected;
    # the messages it did not take stay stored for its next login.
    stuck_timeout: float = 60.0
    # Token buckets per connection and per IP (0 disables one): read slower, never cut.
    stanzas_per_second: float = 200.0
    stanza_burst: int = 1000
    bytes_per_second: float = 256 * 1024
    byte_burst: int = 1024 * 1024
    ip_stanzas_per_second: float = 1000.0
    ip_bytes_per_second: float = 2 * 1024 * 1024
    # Failed logins allowed on one connection before it is closed.
    max_login_attempts: int = 3
    # Brute-force protection (server/login_guard.py; ejabberd's mod_fail2ban: 20, 3600 s).
    login_backoff_after: int = 3
    login_backoff: float = 1.0
    login_backoff_max: float = 60.0
    login_lockout_after: int = 10
    login_ban_after: int = 20
    login_lockout_seconds: float = 3600.0
    # Offline messages kept per user; older ones are refused with an error.
    max_offline_messages: int = 1000
    # Connections open at once from one IP address, on every listener together
    # (a WebSocket or a BOSH session counts as one); 0 disables.
    max_connections_per_ip: int = 100
    # Loopback peers (a reverse proxy, benchmarks) are not counted.
    exempt_loopback: bool = True
    # What each account may keep on the server (XEP-0054, XEP-0049, XEP-0163).
    # A vCard carries its avatar in base64: 128 KiB holds a 96 KiB photo.
    max_vcard_bytes: int = 128 * 1024
    max_private_bytes: int = 64 * 1024
    max_pep_item_bytes: int = 128 * 1024
    max_pep_nodes: int = 64
    max_pep_items: int = 256


@dataclass(frozen=True)
class Xmpp:
    # As Prosody's c2s_require_encryption / allow_unencrypted_plain_auth.
    require_encryption: bool = True
    allow_unencrypted_plain_auth: bool = False


@dataclass(frozen=True)
class Http:
    # The plain listener counts as encrypted: only behind a reverse proxy that
    # terminates TLS (as Prosody's consider_websocket_secure/consider_bosh_secure).
    consider_secure: bool = False
    # The public base URL host-meta advertises (https://chat.example); empty:
    # the scheme and Host of each request.
    public_url: str = ""
    # Origins (scheme://host[:port]) allowed to open WebSockets; "*" is any.
    websocket_origins: tuple[str, ...] = ("*",)
    # Origins allowed by CORS to use BOSH and read host-meta; "*" is any.
    cors_origins: tuple[str, ...] = ("*",)
    # Largest request body (a BOSH <body>) in bytes; larger is refused with 413.
    max_body_bytes: int = 300 * 1024
    # Longest request line and header field, in bytes (aiohttp's defaults).
    max_header_bytes: int = 8190
    # BOSH (XEP-0124): sessions open at once, the longest wait, the most
    # requests held, seconds without a request before a session ends, and the
    # shortest polling interval a hold=0 client may use.
    bosh_max_sessions: int = 1000
    bosh_max_wait: float = 60.0
    bosh_max_hold: int = 1
    bosh_inactivity: float = 60.0
    bosh_polling: float = 2.0


@dataclass(frozen=True)
class Native:
    # Allow passwords over the plaintext native listener only where the operator says so.
    allow_plaintext_login: bool = True
    # The plaintext listener refuses non-loopback addresses unless this is set.
    allow_plaintext_on_network: bool = False


@dataclass(frozen=True)
class Storage:
    # `storage = "postgresql://…"` is short for `[storage] url = "postgresql://…"`.
    shorthand: ClassVar[str] = "url"
    # Empty: SQLite at `path`. A postgresql:// URL: that database, shared by a cluster's nodes.
    url: str = ""
    # SQLite file; relative paths are inside data_dir.
    path: str = "xmlchat.sqlite3"
    # PostgreSQL: connections in this node's pool.
    pool_size: int = 10
    # PBKDF2 iterations for new SCRAM keys (RFC 7677 recommends at least 4096).
    scram_iterations: int = 4096
    # "normal": commits survive a killed server (WAL); "full": a power cut too, slower.
    synchronous: Synchronous = "normal"


@dataclass(frozen=True)
class Log:
    level: str = "info"
    format: LogFormat = "text"
    # Log whole stanzas (bodies included) at debug level: never on in production.
    stanzas: bool = False


@dataclass(frozen=True)
class Metrics:
    enabled: bool = False
    address: str = "127.0.0.1"
    port: int = 9290


@dataclass(frozen=True)
class Archive:
    # XEP-0313 message archive of one-to-one chats. Off by default, as Prosody's
    # mod_mam: it writes every message twice more to the store.
    enabled: bool = False
    # Messages older than this many days are deleted (hourly); 0 keeps them forever.
    retention_days: int = 365
    # Largest page a client may ask for (XEP-0059 max); more is a policy-violation.
    max_page: int = 100


@dataclass(frozen=True)
class Runtime:
    # "auto": uvloop when installed (the speed extra) and no direct-TLS listener is on, else asyncio.
    event_loop: EventLoop = "auto"
    # Move everything alive once the server is up out of the collector's sight (gc.freeze).
    gc_freeze: bool = True
    # Allocations between two youngest-generation collections (CPython's default: 700).
    gc_threshold: int = 10000


@dataclass(frozen=True)
class Muc:
    # XEP-0045 multi-user chat at <subdomain>.<host>, for both protocols.
    enabled: bool = True
    subdomain: str = "conference"
    # Rooms that may exist at once (persistent or with occupants); creating more
    # is refused with resource-constraint.
    max_rooms: int = 1000
    # Occupants of one room (a room's own maxusers may be lower); XEP-0045 §7.2.10.
    max_occupants: int = 1000
    # Messages a room keeps for the history sent on join (XEP-0045 §7.2.15).
    history_size: int = 20
    # Token bucket of groupchat messages per occupant (0 disables), as Prosody's mod_muc_limits.
    messages_per_second: float = 5.0
    message_burst: int = 20


@dataclass(frozen=True)
class Components:
    # XEP-0114: the shared secret of each component, by its domain (a
    # subdomain of a host, e.g. "echo.localhost").
    secrets: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Cluster:
    # Empty: a single node. A nats:// URL (comma-separated for several servers): join the
    # cluster there; every node must share one PostgreSQL store (storage.url).
    nats_url: str = ""
    # This node's name, unique in the cluster; empty: the host name.
    node_name: str = ""
    # Prefix of every NATS subject, so several clusters can share one NATS.
    subject_prefix: str = "xmlchat"
    # Seconds between this node's heartbeats (a starting node waits one before it serves).
    heartbeat_interval: float = 1.0
    # Seconds without a heartbeat after which a node counts as dead and its sessions are forgotten.
    node_timeout: float = 5.0
    # Seconds a node waits for another to take a relayed message (it stays stored either way),
    # or to answer a stanza for a room it serves.
    relay_timeout: float = 5.0


@dataclass(frozen=True)
class Delivery:  # docs/delivery.md; configdoc.py says what each key does
    durable: bool = True  # off only to measure what storing before the ack costs
    dedupe_window: float = 3600.0  # seconds a re-send (same sender and id) is recognised
    resume_timeout: float = 300.0  # XEP-0198 §5 (Prosody's default: 600)


@dataclass(frozen=True)
class Config:
    hosts: tuple[str, ...] = ("localhost",)
    # Empty: the platform's data directory for this user (default_data_dir()).
    data_dir: str = ""
    listeners: Listeners = field(default_factory=Listeners)
    tls: Tls = field(default_factory=Tls)
    limits: Limits = field(default_factory=Limits)
    xmpp: Xmpp = field(default_factory=Xmpp)
    native: Native = field(default_factory=Native)
    http: Http = field(default_factory=Http)
    storage: Storage = field(default_factory=Storage)
    log: Log = field(default_factory=Log)
    metrics: Metrics = field(default_factory=Metrics)
    archive: Archive = field(default_factory=Archive)
    runtime: Runtime = field(default_factory=Runtime)
    muc: Muc = field(default_factory=Muc)
    cluster: Cluster = field(default_factory=Cluster)
    delivery: Delivery = field(default_factory=Delivery)
    components: Components = field(default_factory=Components)

    @property
    def domain(self) -> str:
        """The default virtual host: where bare user names (``alice``) live."""
        return self.hosts[0]

    @property
    def data_path(self) -> Path:
        """Absolute, so it names the same place whatever the current directory."""
        return Path(self.data_dir).expanduser().absolute() if self.data_dir else default_data_dir()

    @property
    def database_path(self) -> Path:
        return self.data_path / self.storage.path

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The XDG base directory spec's data home: ``$XDG_DATA_HOME/xmlchat``, else
    ``~/.local/share/xmlchat`` (the same for ``serve`` and ``adduser`` run from
    any directory). The container sets ``XMLCHAT_DATA_DIR`` instead."""
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME", "")
    # The spec: a relative XDG_DATA_HOME is invalid and ignored.
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "xmlchat"


def load(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Defaults, then the TOML file at ``path``, then ``XMLCHAT_*`` from ``env``,
    then ``overrides`` (dotted key paths, e.g. from command-line flags)."""
    data: dict[str, Any] = {}
    text = ""
    if path is not None:
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8")
            data = _expand_shorthands(tomllib.loads(text))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: {e}") from e
        except OSError as e:
            raise ConfigError(f"{path}: {e.strerror}") from e
    env = os.environ if env is None else env
    sources: dict[tuple[str, ...], str] = {}
    for key, value in env_items(Config, "XMLCHAT", (), env):
        set_path(data, key, value)
        sources[key] = env_name(key)
    for dotted, value in (overrides or {}).items():
        set_path(data, tuple(dotted.split(".")), value)
        sources[tuple(dotted.split("."))] = "command line"
    try:
        config: Config = merge(Config(), data, ())
    except ConfigError as e:
        if e.key is None or e.where is not None:
            raise
        key = tuple(e.key.split("."))
        where = sources.get(key)
        if where is None and path is not None:
            line = toml_line(text, key)
            where = f"{path} line {line}" if line else str(path)
        raise ConfigError(str(e), e.key, where) from None
    return config


def _expand_shorthands(data: dict[str, Any]) -> dict[str, Any]:
    """A table set by its one main key (``storage = "postgresql://…"``) as
    the table it stands for, before environment overrides are added to it."""
    for f in dataclasses.fields(Config):
        shorthand = getattr(f.default_factory, "shorthand", None)
        if shorthand is not None and f.name in data and not isinstance(data[f.name], dict):
            data[f.name] = {shorthand: data[f.name]}
    return data
