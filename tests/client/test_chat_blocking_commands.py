"""The interactive client's /block, /unblock and /blocked commands (xmlchat chat)."""

from __future__ import annotations

from typing import Any

import pytest

from xmlchat.cli.chat import _command


class FakeClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    async def blocklist(self) -> list[str]:
        self.calls.append(("blocklist", ()))
        return ["bob@localhost"]

    async def block(self, *jids: str) -> list[str]:
        self.calls.append(("block", jids))
        return ["bob@localhost"]

    async def unblock(self, *jids: str) -> list[str]:
        self.calls.append(("unblock", jids))
        return []


async def test_blocking_commands_call_the_library(capsys: pytest.CaptureFixture[str]) -> None:
    client: Any = FakeClient()
    for line in ("/block bob", "/blocked", "/unblock bob", "/unblock", "/block"):
        await _command(client, line)
    assert client.calls == [("block", ("bob",)), ("blocklist", ()), ("unblock", ("bob",)), ("unblock", ())]
    out = capsys.readouterr().out
    assert out.count("  bob@localhost blocked\n") == 2
    assert out.count("(nobody blocked: /block NAME)") == 2
    help_line = out.rstrip().splitlines()[-1]  # "/block" without a name: the help
    assert "/block NAME" in help_line and help_line.endswith(" or /quit")
