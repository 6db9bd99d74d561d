"""Metrics and logs after a short native chat, from one server run.

The chat: alice and bob log in (TLS), alice writes to bob (delivered), to carol
who is offline (stored), and to nobody (service-unavailable); a wrong password
fails once. Then the metrics are scraped, carol logs in and gets her offline
message, and everyone leaves. The server logs JSON at debug level throughout.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ServerProcess, create_users, make_server
from polling import wait_until
from scrape import Samples, sample, scrape

from xmlchat.client.native import LoginFailed, NativeClient, ServerError

PASSWORDS = {"alice": "pw-alice-5c1d9e", "bob": "pw-bob-a0e7f2", "carol": "pw-carol-77b3c4"}
WRONG_PASSWORD = "pw-wrong-e4d2b8"
BODY_TO_BOB = "body-to-bob-3f9a61"
BODY_TO_CAROL = "body-to-carol-8b2e04"
BODY_TO_NOBODY = "body-to-nobody-c6d1f5"


@dataclass
class Run:
    metrics: Samples
    not_found_status: int
    log: str
    carol_got: str


async def chat(server: ServerProcess) -> tuple[Samples, int, str]:
    def client(user: str, password: str | None = None) -> NativeClient:
        return NativeClient(
            user,
            password or PASSWORDS[user],
            port=server.ports["native"],
            ssl=server.client_ssl(),
            reconnect=False,
        )

    alice, bob = client("alice"), client("bob")
    await alice.start()
    await bob.start()
    await alice.send("bob", BODY_TO_BOB)
    assert (await asyncio.wait_for(bob.incoming.get(), 5)).body == BODY_TO_BOB
    await alice.send("carol", BODY_TO_CAROL)
    with pytest.raises(ServerError, match="service-unavailable"):
        await alice.send("nobody", BODY_TO_NOBODY)
    with pytest.raises(LoginFailed):
        await client("alice", WRONG_PASSWORD).start()

    url = f"http://127.0.0.1:{server.ports['metrics']}"
    samples: Samples = {}

    async def bobs_message_settled() -> bool:
        # Stored before its ack, deleted once bob's client confirmed it: wait for
        # that, so only carol's is counted as waiting (docs/delivery.md).
        nonlocal samples
        samples = await asyncio.to_thread(scrape, server.ports["metrics"])
        return sample(samples, "xmlchat_offline_messages") == 1

    await wait_until(bobs_message_settled, 10, what="bob's message deleted once he confirmed it")
    try:
        await asyncio.to_thread(urllib.request.urlopen, f"{url}/other", timeout=5)
        not_found = 200
    except urllib.error.HTTPError as e:
        not_found = e.code

    carol = client("carol")
    await carol.start()
    carol_got = (await asyncio.wait_for(carol.incoming.get(), 5)).body
    for c in (alice, bob, carol):
        await c.close()
    return samples, not_found, carol_got


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    server = make_server(tmp_path_factory.mktemp("observability"))
    server.env = {
        "XMLCHAT_LOG_LEVEL": "debug",
        "XMLCHAT_LOG_FORMAT": "json",
        "XMLCHAT_METRICS_ENABLED": "true",
        "XMLCHAT_METRICS_PORT": "0",
    }
    for name, password in PASSWORDS.items():
        server.adduser(name, password)
    server.start()
    try:
        samples, not_found, carol_got = asyncio.run(chat(server))
    finally:
        assert server.stop() == 0
    return Run(samples, not_found, server.log(), carol_got)


def test_metrics_endpoint_counts_the_chat(run: Run) -> None:
    m = run.metrics
    native = {"protocol": "native"}
    assert sample(m, "xmlchat_connections", state="authenticated", **native) == 2  # alice and bob
    assert sample(m, "xmlchat_connections", state="unauthenticated", **native) == 0
    assert sample(m, "xmlchat_connections", state="authenticated", protocol="xmpp") == 0
    assert sample(m, "xmlchat_connections_opened_total", **native) == 3  # + the wrong password
    assert sample(m, "xmlchat_logins_total", result="ok", **native) == 2
    assert sample(m, "xmlchat_logins_total", result="failed", **native) == 1
    assert sample(m, "xmlchat_stanzas_received_total", kind="login", **native) == 3
    assert sample(m, "xmlchat_stanzas_received_total", kind="message", **native) == 3
    assert sample(m, "xmlchat_stanzas_sent_total", kind="message", **native) == 1  # to bob
    assert sample(m, "xmlchat_messages_routed_total", outcome="delivered") == 1
    assert sample(m, "xmlchat_messages_routed_total", outcome="stored") == 1
    assert sample(m, "xmlchat_messages_routed_total", outcome="dropped") == 0
    assert sample(m, "xmlchat_offline_messages") == 1  # carol's, before she logs in
    condition = {"type": "stanza", "condition": "service-unavailable"}
    assert sample(m, "xmlchat_errors_total", **condition, **native) == 1
    assert sample(m, "xmlchat_parse_seconds_count", **native) >= 6  # at least one read per stanza batch
    assert sample(m, "xmlchat_parse_seconds_bucket", le="+Inf", **native) == sample(
        m, "xmlchat_parse_seconds_count", **native
    )
    assert sample(m, "xmlchat_build_info", version="0.1.0") == 1
    assert sample(m, "process_resident_memory_bytes") > 0
    assert run.not_found_status == 404
    assert run.carol_got == BODY_TO_CAROL


def test_metrics_count_accounts_sessions_and_limits(run: Run) -> None:
    m = run.metrics
    assert sample(m, "xmlchat_registered_users") == 3
    assert sample(m, "xmlchat_sessions", protocol="native") == 2  # alice and bob, bound
    assert sample(m, "xmlchat_sessions", protocol="xmpp") == 0
    # One wrong password is not a limit; the series are there from the start, at zero.
    for limit in ("send_buffer", "stanza_rate", "login_attempts", "offline_queue"):
        assert sample(m, "xmlchat_limits_hit_total", limit=limit) == 0


def test_json_log_lines_carry_the_connection_id(run: Run) -> None:
    lines = [json.loads(line) for line in run.log.splitlines() if line.strip()]
    assert lines, "the server logged nothing"
    connections = {line["conn"] for line in lines if line["message"].startswith("connected from")}
    assert len(connections) == 4  # alice, bob, the wrong password, carol
    for conn in connections:
        protocol, _, tag = conn.partition("#")
        assert protocol == "native" and len(tag) == 6
    # Every line about a connection names it, including lines from other loggers
    # logged on its behalf (the offline delivery in xmlchat.modules.messages).
    about_connections = [
        line for line in lines if line["logger"] in ("xmlchat.connection", "xmlchat.modules.messages")
    ]
    assert about_connections and all(line.get("conn") in connections for line in about_connections)
    # (bob's login may race alice's message to him: then it reaches him through
    # the store, and his line names his own connection, which the check above covers.)
    offline = [line for line in lines if "offline message" in line["message"] and "carol@" in line["message"]]
    carol = next(line["conn"] for line in lines if "logged in as carol@localhost" in line["message"])
    assert [line["conn"] for line in offline] == [carol]
    assert all(set(line) <= {"time", "level", "logger", "message", "conn", "exception"} for line in lines)
    assert not any(line["message"].startswith("[") for line in lines)  # the id is a field, not a prefix


def test_debug_log_has_no_bodies_or_passwords(run: Run) -> None:
    assert "logged in as alice@localhost" in run.log  # the log is there (at debug level)
    for secret in (*PASSWORDS.values(), WRONG_PASSWORD, BODY_TO_BOB, BODY_TO_CAROL, BODY_TO_NOBODY):
        assert secret not in run.log


def test_stanza_logging_shows_bodies_but_never_passwords(tmp_path: Path) -> None:
    """``[log] stanzas = true``: bodies in the debug log (for debugging), still no password."""
    server = make_server(tmp_path)
    server.env = {"XMLCHAT_LOG_LEVEL": "debug", "XMLCHAT_LOG_STANZAS": "true"}
    create_users(server, PASSWORDS)
    server.start()

    async def talk() -> None:
        alice = NativeClient(
            "alice", PASSWORDS["alice"], port=server.ports["native"], ssl=server.client_ssl()
        )
        bob = NativeClient("bob", PASSWORDS["bob"], port=server.ports["native"], ssl=server.client_ssl())
        await alice.start()
        await bob.start()
        await alice.send("bob", BODY_TO_BOB)
        assert (await asyncio.wait_for(bob.incoming.get(), 5)).body == BODY_TO_BOB
        await alice.close()
        await bob.close()

    try:
        asyncio.run(talk())
    finally:
        assert server.stop() == 0
    log = server.log()
    assert BODY_TO_BOB in log
    assert not any(password in log for password in PASSWORDS.values())
