"""Reading a chat line and cutting a long body (xmlchat/cli/chat_lines.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xmlchat.cli.chat_lines import MAX_PARTS, Command, Text, TooLong, escaped_size, parse, split_body


def test_only_a_leading_slash_makes_a_command() -> None:
    assert parse("bob: hello") == Text("bob: hello")
    assert parse("/MSG bob  hi there ") == Command("msg", "bob  hi there")
    assert parse("//etc/passwd is a path") == Text("/etc/passwd is a path")
    assert parse("  ") is None


def test_escaped_size_counts_what_the_wire_carries() -> None:
    assert escaped_size("a<b&c") == len("a&lt;b&amp;c")
    assert escaped_size("你") == 3


@given(st.text(alphabet=st.sampled_from("ab <&你\n"), min_size=1, max_size=3000))
def test_parts_fit_the_limit_and_join_back(body: str) -> None:
    limit = 2048 + 500  # 500 bytes of body per part
    try:
        parts = split_body(body, limit)
    except TooLong:
        assert escaped_size(body) > 500 * (MAX_PARTS - 1)
        return
    assert "".join(parts) == body
    assert all(escaped_size(part) <= 500 for part in parts)


def test_a_body_over_the_parts_is_refused() -> None:
    with pytest.raises(TooLong, match="more than 8 messages"):
        split_body("x" * 9 * 1000, 2048 + 1000)
