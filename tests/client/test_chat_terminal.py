"""The plain line reader's stdin thread outlives the chat's event loop."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from xmlchat.cli.chat_terminal import PlainReader


def test_input_ending_after_the_loop_closed_raises_nothing_in_the_reader_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C ends the chat and closes its loop while the stdin thread still
    waits; when the input then ends (the parent closes the pipe) the thread
    has nobody to hand the end to and must say nothing: no traceback."""
    read_fd, write_fd = os.pipe()
    stdin = os.fdopen(read_fd, "r")
    monkeypatch.setattr("sys.stdin", stdin)
    failures: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", failures.append)
    reader = PlainReader()

    async def chat() -> None:
        os.write(write_fd, b"hello\n")
        assert await reader.read() == "hello"

    asyncio.run(chat())
    os.close(write_fd)
    (thread,) = [t for t in threading.enumerate() if t.name == "stdin"]
    thread.join(timeout=10)
    stdin.close()
    assert not thread.is_alive()
    assert failures == []
