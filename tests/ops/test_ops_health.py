"""``xmlchat health``: exit 0 while the server answers on every enabled listener, 1 otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from conftest import ServerProcess
from ops.helpers import free_port

from xmlchat.cli import probes
from xmlchat.config import Config

STREAM_HEADER = (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='x1' version='1.0'>"
)


def test_health_against_a_running_then_a_stopped_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "xmlchat.toml"
    names = ("native", "native_plain", "xmpp", "xmpp_tls", "http", "https", "component")
    ports = {name: free_port() for name in names}
    config.write_text(
        'hosts = ["localhost"]\n'
        f"[listeners.native]\nport = {ports['native']}\n"
        f"[listeners.native_plain]\nenabled = true\nport = {ports['native_plain']}\n"
        f"[listeners.xmpp]\nport = {ports['xmpp']}\n"
        f"[listeners.xmpp_tls]\nenabled = true\nport = {ports['xmpp_tls']}\n"
        f"[listeners.http]\nport = {ports['http']}\n[listeners.https]\nport = {ports['https']}\n"
        f"[listeners.component]\nenabled = true\nport = {ports['component']}\n"
        '[components.secrets]\n"echo.localhost" = "s3cret"\n'
    )
    server = ServerProcess(data, config)
    server.start()
    try:
        result = server.cli("health", "--timeout", "5")
        assert result.returncode == 0, result.stdout + result.stderr
        # Every enabled listener is probed, each in its own protocol: the
        # HTTP ones (WebSocket, BOSH, the web page) and XEP-0114's too.
        probed = {line.split()[1] for line in result.stdout.splitlines()}
        assert probed == set(ports)
        assert all(line.startswith("ok    ") for line in result.stdout.splitlines())
        assert f"native native 127.0.0.1:{ports['native']} tls=direct: answered in" in result.stdout
        assert f"https http 127.0.0.1:{ports['https']} tls=direct: answered in" in result.stdout
        assert f"component component 127.0.0.1:{ports['component']} tls=none: answered in" in result.stdout
    finally:
        server.stop()
    result = server.cli("health", "--timeout", "2")
    assert result.returncode == 1
    assert f"FAIL  native native 127.0.0.1:{ports['native']} tls=direct:" in result.stdout


def test_health_with_a_bad_config_exits_1_not_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[listeners.native]\nport = 'x'\n")
    result = ServerProcess(tmp_path, config).cli("health")
    assert result.returncode == 1  # Docker reserves 2; a broken config is simply unhealthy
    assert "listeners.native.port" in result.stderr


# ---- the probes against stand-in servers, so the XMPP part is tested before XMPP lands


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def run_probe(handler: Handler, protocol: str, timeout: float = 2.0) -> str | None:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    probe = probes.Probe("test", protocol, "127.0.0.1", port, "none")
    try:
        _, problem, _ = await probes.probe_one(probe, Config(), timeout)
    finally:
        server.close()
    return problem


async def test_xmpp_probe_needs_stream_features() -> None:
    seen: list[bytes] = []
    closed = asyncio.Event()

    async def xmpp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.read(4096))
        writer.write(
            f"{STREAM_HEADER}<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
            "<required/></starttls></stream:features>".encode()
        )
        await writer.drain()
        seen.append(await reader.read(4096))
        writer.close()
        closed.set()

    assert await run_probe(xmpp, "xmpp") is None
    await asyncio.wait_for(closed.wait(), 2)
    assert b"<stream:stream to='localhost' version='1.0'" in seen[0]
    assert seen[1] == b"</stream:stream>"


async def test_xmpp_probe_reports_a_stream_error() -> None:
    async def refusing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(
            f"{STREAM_HEADER}<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
            "</stream:error></stream:stream>".encode()
        )
        await writer.drain()
        writer.close()

    assert await run_probe(refusing, "xmpp") == "error from the server: host-unknown"


async def test_native_probe_needs_pong_and_times_out_on_silence() -> None:
    async def native_error(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(
            b"<session xmlns='urn:xmlchat:native:1' version='1'>"
            b"<error><condition>system-shutdown</condition></error></session>"
        )
        await writer.drain()
        writer.close()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(4096):  # answers nothing, until the probe hangs up
            pass

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    assert await run_probe(native_error, "native") == "error from the server: system-shutdown"
    assert await run_probe(silent, "native", timeout=0.3) == "no answer within 0.3 s"
    problem = await run_probe(garbage, "native")
    assert problem is not None and problem.startswith("unreadable answer")


@pytest.mark.parametrize(
    ("address", "expected"), [("0.0.0.0", "127.0.0.1"), ("::", "::1"), ("10.1.2.3", "10.1.2.3")]
)
def test_wildcard_addresses_are_probed_over_loopback(address: str, expected: str) -> None:
    assert probes.connectable(address) == expected


async def test_http_probe_needs_host_meta_to_answer_200() -> None:
    """XEP-0156's host-meta is served by the same application as WebSocket
    and BOSH: a 200 there is the HTTP listener's sign of life."""
    requests: list[bytes] = []

    def answering(status: bytes) -> Handler:
        async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            requests.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            writer.close()

        return http

    assert await run_probe(answering(b"200 OK"), "http") is None
    assert requests[0].startswith(b"GET /.well-known/host-meta HTTP/1.1\r\n")
    assert b"\r\nHost: localhost\r\n" in requests[0]
    assert await run_probe(answering(b"503 Service Unavailable"), "http") == (
        "answered HTTP/1.1 503 Service Unavailable"
    )


async def test_component_probe_needs_a_stream_header() -> None:
    """XEP-0114 §3: the server answers a component's stream header with its
    own (and an id to hash the secret with), never with features."""
    seen: list[bytes] = []

    async def component(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.read(4096))
        writer.write(
            b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
            b"xmlns:stream='http://etherx.jabber.org/streams' from='probe.localhost' id='c1'>"
        )
        await writer.drain()
        await reader.read(4096)
        writer.close()

    assert await run_probe(component, "component") is None
    assert b"xmlns='jabber:component:accept'" in seen[0]
