"""The shared chat commands (xmlchat/cli/chat_shell.py) on the native backend,
with a fake client library: which calls each line makes, and what is shown."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from xmlchat.cli.chat import NativeChat
from xmlchat.cli.chat_shell import HISTORY_LINES, ChatCommands
from xmlchat.cli.chat_terminal import PlainReader, Terminal
from xmlchat.client.native import ArchivedMessage, HistoryPage
from xmlchat.config import Config

T = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
CONFIG = Config()
CONFIG = dataclasses.replace(CONFIG, limits=dataclasses.replace(CONFIG.limits, max_stanza_bytes=8192))


class FakeClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    async def send(self, to: str, body: str) -> None:
        self.calls.append(("send", (to, body)))

    async def blocklist(self) -> list[str]:
        self.calls.append(("blocklist", ()))
        return ["bob@localhost"]

    async def block(self, *jids: str) -> list[str]:
        self.calls.append(("block", jids))
        return ["bob@localhost"]

    async def unblock(self, *jids: str) -> list[str]:
        self.calls.append(("unblock", jids))
        return []

    async def history(self, with_: str | None = None, max: int = 50) -> HistoryPage:
        self.calls.append(("history", (with_, max)))
        if with_ == "nobody":
            return HistoryPage([], True)
        message = ArchivedMessage("a1", "c1", "alice@localhost", "bob@localhost", T, "lunch?")
        return HistoryPage([message], with_ != "bob")


async def run_lines(*lines: str) -> tuple[FakeClient, ChatCommands]:
    client = FakeClient()
    backend = NativeChat(client, Terminal(PlainReader()), CONFIG)  # type: ignore[arg-type]
    commands = ChatCommands(backend, backend.terminal)
    for line in lines:
        assert await commands.handle(line)
    return client, commands


async def test_a_line_goes_as_typed_to_the_current_conversation(capsys: pytest.CaptureFixture[str]) -> None:
    client, commands = await run_lines(
        "bob: hi", "/to bob", "bob: hi", "/msg carol a: b", "//slash", "   ", "/msg carol"
    )
    assert client.calls == [
        ("send", ("bob", "bob: hi")),
        ("send", ("carol", "a: b")),
        ("send", ("bob", "/slash")),
    ]
    assert commands.current == "bob"  # /msg does not change the conversation
    out = capsys.readouterr().out
    assert "! whom to? /to NAME first, or /msg NAME TEXT" in out
    assert "! type /msg NAME TEXT" in out
    assert not await commands.handle("/quit")


async def test_a_long_line_is_split_or_refused(capsys: pytest.CaptureFixture[str]) -> None:
    long = "x" * 10_000
    huge = "y" * 100_000
    client, _ = await run_lines("/to bob", long, huge)
    sent = [args[1] for _, args in client.calls]
    assert "".join(sent) == long and len(sent) == 2
    out = capsys.readouterr().out
    assert "~ long message: sending it as 2 messages" in out
    assert "! not sent: 98 KiB is more than 8 messages of 6144 bytes" in out


async def test_unknown_commands_answer_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    client, _ = await run_lines("/join", "/leave", "/frobnicate", "/allow bob")
    assert client.calls == []
    out = capsys.readouterr().out
    assert "! type /join ROOM [NICK]" in out and "! type /leave ROOM" in out
    assert "! unknown command /frobnicate; /help lists them" in out
    assert "! native contacts are mutual" in out


async def test_blocking_commands_call_the_library(capsys: pytest.CaptureFixture[str]) -> None:
    client, _ = await run_lines("/block bob", "/blocked", "/unblock bob", "/unblock", "/block")
    assert client.calls == [("block", ("bob",)), ("blocklist", ()), ("unblock", ("bob",)), ("unblock", ())]
    out = capsys.readouterr().out
    assert out.count("  bob@localhost blocked\n") == 2
    assert out.count("(nobody blocked: /block NAME)") == 2
    assert out.rstrip().endswith("! type /block NAME")


async def test_history_command_calls_the_library(capsys: pytest.CaptureFixture[str]) -> None:
    lines = ("/history", "/history bob", "/history 7", "/history carol 100", "/history nobody")
    usage = ("/history 101", "/history 0", "/history a b")  # usage, no request
    client, _ = await run_lines(*lines, *usage)
    assert client.calls == [
        ("history", (None, HISTORY_LINES)),
        ("history", ("bob", HISTORY_LINES)),
        ("history", (None, 7)),
        ("history", ("carol", 100)),
        ("history", ("nobody", 20)),
    ]
    out = capsys.readouterr().out
    assert out.count("alice@localhost -> bob@localhost: lunch?\n") == 4
    assert out.count("(older messages not shown)") == 1  # bob's page only
    assert out.count("(no archived messages)") == 1
    assert out.count("! type /history [NAME] [N], N from 1 to 100") == 2
    assert out.count("! type /history [NAME] [N]\n") == 1
