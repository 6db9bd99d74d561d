"""Where ``chat``/``send`` (native) and ``xmpp-chat``/``xmpp-send`` connect:
``--server HOST:PORT``, else the configured listener. Both read it the same way."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from xmlchat.cli.chat import make_client
from xmlchat.cli.xmpp_chat import _Connection
from xmlchat.config import Config


def _args(**given: Any) -> argparse.Namespace:
    defaults = {"jid": "alice", "password": "pw", "server": None, "plain": True, "direct_tls": False,
                "resource": None, "cafile": None, "insecure": True, "pin": False}
    return argparse.Namespace(**{**defaults, **given})


def _native(server: str | None) -> tuple[str, int]:
    client = make_client(_args(server=server), Config())
    return client.host, client.port


def _xmpp(server: str | None) -> tuple[str, int]:
    connection = _Connection(_args(server=server), Config())
    return connection.host, connection.port


@pytest.mark.parametrize("where", [_native, _xmpp], ids=["native", "xmpp"])
@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("example.org:5999", ("example.org", 5999)),
        ("127.0.0.2:6000", ("127.0.0.2", 6000)),
        ("[::1]:6001", ("::1", 6001)),  # an IPv6 address in brackets, as in a URL
        ("0.0.0.0:6002", ("127.0.0.1", 6002)),  # a wildcard is this machine
    ],
)
def test_server_option_names_host_and_port(where: Any, server: str, expected: tuple[str, int]) -> None:
    assert where(server) == expected


def test_without_server_option_the_configured_listener() -> None:
    config = Config()
    assert _native(None) == ("127.0.0.1", config.listeners.native_plain.port)
    assert _xmpp(None) == ("127.0.0.1", config.listeners.xmpp.port)
