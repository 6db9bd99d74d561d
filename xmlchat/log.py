"""Logging an operator can read: one line per event, the connection id on each.

``text`` (default): ``2026-11-22 10:00:00 INFO  xmlchat.connection [native#a1b2c3] connected``.
``json``: one JSON object per line with the same fields, for log shippers.
Passwords are never logged; message bodies only with ``log.stanzas = true``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import MutableMapping
from typing import Any


class ConnectionLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes every line with the connection id, and passes it to JSON logs."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        conn = (self.extra or {}).get("conn", "?")
        kwargs.setdefault("extra", {})["conn"] = conn
        return f"[{conn}] {msg}", kwargs


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        conn = getattr(record, "conn", None)
        if conn is not None:
            out["conn"] = conn
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup(level: str = "info", format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s %(message)s", "%Y-%m-%d %H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
