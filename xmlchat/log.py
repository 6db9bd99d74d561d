"""Logging an operator can read: one line per event, the connection id on each.

``text`` (default): ``2026-11-22 10:00:00 INFO  xmlchat.connection [native#a1b2c3] connected``.
``json``: one JSON object per line with the same fields, for log shippers.
Passwords are never logged; message bodies only with ``log.stanzas = true``.

The connection id reaches every line logged while a connection's task runs,
whatever the logger (a module, storage): :data:`CONNECTION` is a context
variable that ``Connection.run`` sets, and the handler's filter copies it into
records that lack one. Lines about the server as a whole have no id.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

# The id of the connection whose task is running ("native#a1b2c3"), if any.
CONNECTION: ContextVar[str | None] = ContextVar("xmlchat_connection", default=None)


class ConnectionLogger(logging.LoggerAdapter[logging.Logger]):
    """Tags every record with the connection id (``record.conn``); the
    formatters show it: ``[native#a1b2c3]`` in text, ``"conn"`` in JSON."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs.setdefault("extra", {})["conn"] = (self.extra or {}).get("conn", "?")
        return msg, kwargs


class ConnectionFilter(logging.Filter):
    """Gives records logged inside a connection's task that connection's id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "conn", None) is None:
            conn = CONNECTION.get()
            if conn is not None:
                record.conn = conn
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s", "%Y-%m-%d %H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:
        conn = getattr(record, "conn", None)
        if conn is None:
            return super().formatMessage(record)
        saved = record.message
        record.message = f"[{conn}] {saved}"
        try:
            return super().formatMessage(record)
        finally:
            record.message = saved


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
    handler.addFilter(ConnectionFilter())
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # Python's warnings too, in the same format


def say(text: str, format: str = "text", *, error: bool = False, logger: str = "xmlchat") -> None:
    """A line the command prints for its operator (``listening: ...``, ``ready: ...``,
    ``cannot start: ...``): as is in text mode, and in JSON mode as one JSON
    object like every log line, so a log shipper never meets plain text."""
    stream = sys.stderr if error else sys.stdout
    if format == "json":
        level = logging.ERROR if error else logging.INFO
        record = logging.LogRecord(logger, level, "", 0, text, None, None)
        text = JsonFormatter().format(record)
    print(text, file=stream, flush=True)
