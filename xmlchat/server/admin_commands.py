"""The admin channel's commands that concern the server as a whole.

Feature modules add their own (``announce``, ``queue``) with
:class:`~xmlchat.routing.api.AdminCommand`; these need what only the server
has: its connections, its configuration, its storage. The account commands
are here too, so that a change takes effect at once (issue: an account
deleted or its password changed must not stay logged in): ``deluser`` and
``passwd`` end the account's connections with ``not-authorized``, the same
condition on both protocols.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from xmlchat import __version__
from xmlchat.errors import StreamCondition, StreamError
from xmlchat.jid import JID, InvalidJID
from xmlchat.routing.api import AdminCommandError
from xmlchat.storage import NoSuchUser, UserExists, backup

if TYPE_CHECKING:
    from xmlchat.server.app import Server

Command = Callable[[Mapping[str, Any]], Awaitable[Any]]

LOG_LEVELS: Final = ("debug", "info", "warning", "error")


def server_commands(server: Server) -> dict[str, Command]:
    """Every command of the channel: the server's own and the modules'."""
    commands = ServerCommands(server)
    own: dict[str, Command] = {
        "who": commands.who,
        "kick": commands.kick,
        "stats": commands.stats,
        "reload": commands.reload,
        "log-level": commands.log_level,
        "backup": commands.backup,
        "adduser": commands.adduser,
        "passwd": commands.passwd,
        "deluser": commands.deluser,
        "users": commands.users,
    }
    for name, registered in server.hub.registry.admin_commands.items():
        if name in own:
            raise ValueError(f"admin command {name!r} is the server's own")
        own[name] = registered.handle
    return own


class ServerCommands:
    def __init__(self, server: Server) -> None:
        self.server = server

    def _jid(self, args: Mapping[str, Any], bare: bool = True) -> JID:
        try:
            jid = JID.user(str(args.get("jid", "")), self.server.config.domain)
        except InvalidJID as e:
            raise AdminCommandError(str(e)) from None
        if jid.domain not in self.server.config.hosts:
            hosts = ", ".join(self.server.config.hosts)
            raise AdminCommandError(f"{jid.domain} is not one of the hosts ({hosts})")
        return jid.bare if bare else jid

    # ---- who is here

    async def who(self, args: Mapping[str, Any]) -> list[dict[str, Any]]:
        now = asyncio.get_running_loop().time()
        rows = [
            {
                "jid": str(c.session.jid),
                "protocol": c.protocol,
                "transport": c.transport.kind,  # tcp, websocket or bosh
                "available": c.session.available,
                "address": c.peer,
                "tls": c.tls,
                "connected_seconds": round(now - c.opened_at),
            }
            for c in list(self.server.connections)
            if c.session is not None and not c.closing
        ]
        return sorted(rows, key=lambda row: row["jid"])

    async def kick(self, args: Mapping[str, Any]) -> dict[str, int]:
        jid = self._jid(args, bare=False)
        reason = str(args.get("reason") or "disconnected by the operator")
        closed = self.server.close_sessions(jid, StreamError(StreamCondition.POLICY_VIOLATION, reason))
        if not closed:
            raise AdminCommandError(f"{jid} has no session")
        return {"closed": closed}

    async def stats(self, args: Mapping[str, Any]) -> dict[str, Any]:
        server = self.server
        connections = Counter(
            f"{c.protocol} {_state(c.closing, c.authenticated)}" for c in server.connections
        )
        return {
            "version": __version__,
            "pid": os.getpid(),
            "uptime_seconds": round(time.time() - server.started_at),
            "data_dir": str(server.config.data_path.resolve()),
            "listeners": [dataclasses.asdict(bound) for bound in server.bound],
            "connections": dict(sorted(connections.items())),
            "sessions": dict(sorted(server.sessions_by_protocol().items())),
            "registered_users": await server.count_users(),
            "offline_messages": await server.count_offline(),
            "limits_hit": dict(sorted(server.metrics.limits_hit.items())),
        }

    # ---- the running configuration

    async def reload(self, args: Mapping[str, Any]) -> dict[str, list[str]]:
        try:
            plan = await self.server.reload()
        except ValueError as e:  # ConfigError is one: the message names the key
            raise AdminCommandError(f"not reloaded: {e}") from None
        return {"applied": plan.applied, "needs_restart": plan.needs_restart}

    async def log_level(self, args: Mapping[str, Any]) -> dict[str, str]:
        """Until the next reload or restart, which go back to ``log.level``."""
        level = str(args.get("level", "")).lower()
        if level not in LOG_LEVELS:
            raise AdminCommandError(f"log level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
        root = logging.getLogger()
        before = logging.getLevelName(root.level).lower()
        root.setLevel(level.upper())
        logging.getLogger("xmlchat").warning("log level %s (was %s), set by the operator", level, before)
        return {"level": level, "was": before}

    async def backup(self, args: Mapping[str, Any]) -> dict[str, Any]:
        target = Path(str(args.get("file", "")))
        if not target.is_absolute():
            raise AdminCommandError("the backup file must be an absolute path")
        try:
            size = await asyncio.to_thread(backup.backup_database, self.server.config.database_path, target)
        except backup.BackupError as e:
            raise AdminCommandError(str(e)) from None
        return {"file": str(target), "bytes": size}

    # ---- accounts

    async def adduser(self, args: Mapping[str, Any]) -> dict[str, str]:
        jid = self._jid(args)
        try:
            await self.server.storage.create_user(jid, _password(args))
        except UserExists:
            raise AdminCommandError(f"{jid} already exists") from None
        except ValueError as e:
            raise AdminCommandError(str(e)) from None
        return {"jid": str(jid)}

    async def passwd(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """The sessions logged in with the old password end, unless ``keep_sessions``."""
        jid = self._jid(args)
        try:
            await self.server.storage.set_password(jid, _password(args))
        except NoSuchUser:
            raise AdminCommandError(f"no such user {jid}") from None
        closed = 0
        if not args.get("keep_sessions"):
            error = StreamError(StreamCondition.NOT_AUTHORIZED, "the password was changed")
            closed = self.server.close_sessions(jid, error)
        return {"jid": str(jid), "sessions_closed": closed}

    async def deluser(self, args: Mapping[str, Any]) -> dict[str, Any]:
        jid = self._jid(args)
        if not await self.server.storage.delete_user(jid):
            raise AdminCommandError(f"no such user {jid}")
        error = StreamError(StreamCondition.NOT_AUTHORIZED, "the account was deleted")
        return {"jid": str(jid), "sessions_closed": self.server.close_sessions(jid, error)}

    async def users(self, args: Mapping[str, Any]) -> list[str]:
        host = args.get("host")
        return [str(jid) for jid in await self.server.storage.list_users(host)]


def _state(closing: bool, authenticated: bool) -> str:
    return "closing" if closing else "authenticated" if authenticated else "unauthenticated"


def _password(args: Mapping[str, Any]) -> str:
    password = args.get("password")
    if not isinstance(password, str) or not password:
        raise AdminCommandError("empty password")
    return password
