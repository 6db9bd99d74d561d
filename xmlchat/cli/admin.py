"""The operator's commands for a running server, through its admin channel
(``DATA_DIR/admin.sock``, :mod:`xmlchat.client.admin`):

xmlchat who                    who is logged in, on which protocol, from where
xmlchat kick JID [--reason T]  end a user's sessions (a full JID: that one)
xmlchat stats                  connections, sessions, accounts, queues, limits hit
xmlchat reload                 read the configuration again (as SIGHUP does)
xmlchat announce "text"        a headline to everyone online (--offline: and later to the rest)
xmlchat queue JID              the messages waiting for a user
xmlchat log-level LEVEL        change the log level until the next reload
xmlchat backup FILE            a consistent copy of the database (the server may run)
xmlchat restore FILE           replace the database (only while no server runs)

``--json`` prints the server's answer as it came, for scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xmlchat.client import admin
from xmlchat.config import Config
from xmlchat.server.datadir import DataDirInUse, DataDirLock
from xmlchat.storage import backup


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    channel = argparse.ArgumentParser(add_help=False, parents=[common])
    channel.add_argument("--json", action="store_true", help="print the server's answer as JSON")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, parents=[channel], help=help)
        parser.set_defaults(run=_run, command=name)
        return parser

    command("who", "who is logged in (running server)")
    kick = command("kick", "end a user's sessions (running server)")
    kick.add_argument("jid", help="user@host for every session, user@host/resource for one")
    kick.add_argument("--reason", help="the text the client is shown")
    command("stats", "the running server's counts")
    command("reload", "read the configuration again: log, limits, certificate (as SIGHUP)")
    announce = command("announce", "send a headline to every online user")
    announce.add_argument("text")
    announce.add_argument("--offline", action="store_true", help="store it for users not online too")
    announce.add_argument("--host", help="only the users of this virtual host")
    queue = command("queue", "the offline messages waiting for a user")
    queue.add_argument("jid")
    level = command("log-level", "change the running server's log level")
    level.add_argument("level", choices=("debug", "info", "warning", "error"))
    back = command("backup", "copy the database consistently, even while the server runs")
    back.add_argument("file", type=Path)
    back.set_defaults(run=_backup)
    restore = sub.add_parser(
        "restore", parents=[common], help="replace the database with a backup (server stopped)"
    )
    restore.add_argument("file", type=Path)
    restore.set_defaults(run=_restore)


def _arguments(args: argparse.Namespace) -> dict[str, Any]:
    names = ("jid", "reason", "text", "offline", "host", "level")
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _run(args: argparse.Namespace, config: Config) -> int:
    try:
        answer = admin.request(config.data_path, args.command, **_arguments(args))
    except admin.ServerNotRunning as e:
        print(f"xmlchat {args.command}: {e} (start it with: xmlchat serve)", file=sys.stderr)
        return 1
    except admin.AdminError as e:
        print(f"xmlchat {args.command}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"xmlchat {args.command}: admin channel: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        _SHOW[args.command](answer)
    return 0


def _who(sessions: list[dict[str, Any]]) -> None:
    for s in sessions:
        state = "available" if s["available"] else "connected"
        security = "TLS" if s["tls"] else "plaintext"
        protocol = s["protocol"] if s["transport"] == "tcp" else f"{s['protocol']} over {s['transport']}"
        print(f"{s['jid']}  {protocol}  {state}  {s['address']} {security}  {s['connected_seconds']} s")
    print(f"{len(sessions)} session(s)")


def _stats(stats: dict[str, Any]) -> None:
    for key, value in stats.items():
        if isinstance(value, dict):
            shown = ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
        elif isinstance(value, list):
            shown = "; ".join(_listener(item) for item in value) or "none"
        else:
            shown = str(value)
        print(f"{key.replace('_', ' ')}: {shown}")


def _listener(bound: Any) -> str:
    if not isinstance(bound, dict):
        return str(bound)
    return f"{bound['name']} {bound['protocol']} {bound['address']}:{bound['port']} tls={bound['tls']}"


def _reloaded(plan: dict[str, list[str]]) -> None:
    print(f"reloaded: {', '.join(plan['applied']) or 'nothing changed'}")
    if plan["needs_restart"]:
        print(f"changed, needs a restart to take effect: {', '.join(plan['needs_restart'])}")


def _queue(messages: list[dict[str, str]]) -> None:
    for m in messages:
        print(f"[{m['received']}] {m['from']} ({m['type']}): {m['body']}")
    print(f"{len(messages)} message(s) waiting")


_SHOW: dict[str, Callable[[Any], None]] = {
    "who": _who,
    "kick": lambda r: print(f"closed {r['closed']} session(s)"),
    "stats": _stats,
    "reload": _reloaded,
    "announce": lambda r: print(
        f"sent to {r['sessions']} session(s)"
        + (f", stored for {r['stored']} offline user(s)" if r["stored"] else "")
        + (f"; {r['queue_full']} queue(s) full, not stored" if r["queue_full"] else "")
    ),
    "queue": _queue,
    "log-level": lambda r: print(f"log level {r['level']} (was {r['was']})"),
}


def _backup(args: argparse.Namespace, config: Config) -> int:
    """Through the server when it runs (its database, its moment); else directly."""
    target = args.file.expanduser().absolute()
    try:
        answer = admin.request(config.data_path, "backup", file=str(target))
    except admin.AdminError as e:
        print(f"xmlchat backup: {e}", file=sys.stderr)
        return 1
    except admin.ServerNotRunning:
        if not config.database_path.exists():
            print(f"xmlchat backup: no database in {config.data_path}", file=sys.stderr)
            return 1
        try:
            answer = {"file": str(target), "bytes": backup.backup_database(config.database_path, target)}
        except backup.BackupError as e:
            print(f"xmlchat backup: {e}", file=sys.stderr)
            return 1
    print(f"backed up {config.database_path} to {answer['file']} ({answer['bytes']} bytes)")
    return 0


def _restore(args: argparse.Namespace, config: Config) -> int:
    """Only with no server on the data directory: its lock is held meanwhile,
    so none can start half-way through."""
    config.data_path.mkdir(parents=True, exist_ok=True)
    lock = DataDirLock(config.data_path)
    try:
        lock.acquire()
    except DataDirInUse as e:
        print(
            f"xmlchat restore: {e}; stop it first (a restore replaces every account and message)",
            file=sys.stderr,
        )
        return 1
    try:
        kept = backup.restore_database(args.file.expanduser().absolute(), config.database_path)
    except backup.BackupError as e:
        print(f"xmlchat restore: {e}", file=sys.stderr)
        return 1
    finally:
        lock.release()
    print(f"restored {config.database_path} from {args.file}")
    if kept is not None:
        print(f"the database it replaced is kept as {kept}")
    return 0
