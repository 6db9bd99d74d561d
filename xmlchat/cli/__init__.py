"""The ``xmlchat`` command: wiring only, the logic lives in the package.

xmlchat serve                      start the server (Ctrl-C stops it cleanly)
xmlchat adduser alice@localhost    create an account (prompts for the password)
xmlchat passwd / deluser / users   manage accounts, like prosodyctl
xmlchat chat alice@localhost       interactive native-protocol client
xmlchat send alice bob "hi"        send one message and exit
xmlchat xmpp-chat alice@localhost  interactive XMPP client (slixmpp)
xmlchat xmpp-send alice bob "hi"   send one message over XMPP and exit
xmlchat check                      validate config, certificate and listeners
xmlchat health                     is the running server answering? (exit 0/1)
xmlchat who / kick / stats / reload / announce / queue / log-level / backup / restore
                                   the running server, through its admin channel
xmlchat compare                    XMPP versus the native protocol, measured on the wire
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from xmlchat import __version__, config_rules
from xmlchat import config as config_mod
from xmlchat import log as log_mod
from xmlchat.cli import accounts, admin, chat, compare, ops, serve, xmpp_chat
from xmlchat.config import Config, ConfigError

# Listener flags: --native 127.0.0.1:5290 sets listeners.native.{address,port} and enables it.
LISTENER_FLAGS = ("native", "native-plain", "xmpp", "xmpp-tls")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    # A reload (SIGHUP, xmlchat reload) reads the configuration again from the same places.
    args.load_config = lambda: _load_config(args)
    try:
        config = _load_config(args)
        if getattr(args, "server_logging", False):
            # The server checks the whole configuration before it does anything
            # with it, logging included (config_rules).
            config_rules.validate(config)
    except ConfigError as e:
        print(f"xmlchat: configuration error: {e}", file=sys.stderr)
        status: int = getattr(args, "config_error_status", 2)
        return status
    # Only the server logs at the configured level; tools stay quiet unless asked.
    default_level = config.log.level if getattr(args, "server_logging", False) else "warning"
    log_mod.setup(args.log_level or default_level, config.log.format)
    try:
        run: Callable[[argparse.Namespace, Config], int] = args.run
        return run(args, config)
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xmlchat", description="XML chat server: XMPP and a native protocol."
    )
    parser.add_argument("--version", action="version", version=f"xmlchat {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c", "--config", default=os.environ.get("XMLCHAT_CONFIG"), help="TOML file (default $XMLCHAT_CONFIG)"
    )
    common.add_argument("-d", "--data-dir", help="data directory (database, certificate)")
    common.add_argument("--log-level", help="debug, info, warning, error")
    sub = parser.add_subparsers(title="commands")

    serve.register(sub, common, LISTENER_FLAGS)
    accounts.register(sub, common)
    chat.register(sub, common)
    xmpp_chat.register(sub, common)
    ops.register(sub, common)
    admin.register(sub, common)
    compare.register(sub, common)
    return parser


def _load_config(args: argparse.Namespace) -> Config:
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    if getattr(args, "server_logging", False) and args.log_level:
        overrides["log.level"] = args.log_level  # so a reload keeps the level asked for
    for flag in LISTENER_FLAGS:
        value = getattr(args, flag.replace("-", "_"), None)
        if value:
            address, _, port = value.rpartition(":")
            name = flag.replace("-", "_")
            overrides[f"listeners.{name}.address"] = address.strip("[]") or "127.0.0.1"
            overrides[f"listeners.{name}.port"] = port
            overrides[f"listeners.{name}.enabled"] = True
    return config_mod.load(getattr(args, "config", None), overrides=overrides)
