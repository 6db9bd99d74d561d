"""Log formatting: the connection id on every line of a connection, in text and JSON."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from xmlchat.log import CONNECTION, ConnectionFilter, ConnectionLogger, JsonFormatter, TextFormatter


def capture(formatter: logging.Formatter) -> tuple[io.StringIO, logging.Logger]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(ConnectionFilter())
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"test.ops.logs.{id(out)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return out, logger


async def log_in_tasks(logger: logging.Logger) -> None:
    # Both tasks log "connected" before either logs again, so each task's second
    # line comes after the other task set its own connection id.
    both_connected = asyncio.Barrier(2)

    async def connection(conn: str) -> None:
        CONNECTION.set(conn)  # as Connection.run does
        ConnectionLogger(logger, {"conn": conn}).info("connected")
        await both_connected.wait()
        logger.info("a module logs on its behalf")  # a plain logger, same task

    await asyncio.gather(connection("native#aaaaaa"), connection("xmpp#bbbbbb"))
    logger.info("server-wide line")


def test_text_lines_are_prefixed_with_the_connection() -> None:
    out, logger = capture(TextFormatter())
    asyncio.run(log_in_tasks(logger))
    lines = out.getvalue().splitlines()
    assert sum("[native#aaaaaa] connected" in line for line in lines) == 1
    assert sum("[xmpp#bbbbbb] a module logs on its behalf" in line for line in lines) == 1
    assert sum("[native#aaaaaa] a module logs on its behalf" in line for line in lines) == 1
    server = [line for line in lines if "server-wide" in line]
    assert len(server) == 1 and "[" not in server[0].split("INFO")[1]


def test_json_lines_carry_conn_as_a_field() -> None:
    out, logger = capture(JsonFormatter())
    asyncio.run(log_in_tasks(logger))
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    by_conn: dict[str | None, list[str]] = {}
    for record in records:
        by_conn.setdefault(record.get("conn"), []).append(record["message"])
    assert by_conn == {
        "native#aaaaaa": ["connected", "a module logs on its behalf"],
        "xmpp#bbbbbb": ["connected", "a module logs on its behalf"],
        None: ["server-wide line"],
    }
