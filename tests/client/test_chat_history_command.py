"""The interactive client's /history command (xmlchat chat)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from xmlchat.cli.chat import HISTORY_LINES, _command
from xmlchat.client.native import ArchivedMessage, HistoryPage

T = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)


class FakeClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str | None, int]] = []

    async def history(
        self, with_: str | None = None, max: int = 50, before: str | None = None
    ) -> HistoryPage:
        self.calls.append((with_, max))
        if with_ == "nobody":
            return HistoryPage([], True)
        message = ArchivedMessage("a1", "c1", "alice@localhost", "bob@localhost", T, "lunch?")
        return HistoryPage([message], with_ != "bob")


async def test_history_command_calls_the_library(capsys: pytest.CaptureFixture[str]) -> None:
    client: Any = FakeClient()
    for line in ("/history", "/history bob", "/history 7", "/history carol 100", "/history nobody"):
        await _command(client, line)
    for line in ("/history 101", "/history 0", "/history a b"):  # usage, no request
        await _command(client, line)
    assert client.calls == [
        (None, HISTORY_LINES),
        ("bob", HISTORY_LINES),
        (None, 7),
        ("carol", 100),
        ("nobody", 20),
    ]
    out = capsys.readouterr().out
    assert out.count("alice@localhost -> bob@localhost: lunch?\n") == 4
    assert out.count("(older messages not shown)") == 1  # bob's page only
    assert out.count("(no archived messages)") == 1
    assert out.count("type /history [NAME] [N], N from 1 to 100") == 3
