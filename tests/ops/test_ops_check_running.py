"""``check`` against a running server, and ``--host``/``--port`` on ``check`` and ``health``."""

from __future__ import annotations

from conftest import ServerProcess
from ops.helpers import free_port

from xmlchat.server.app import HTTP_LISTENERS, PROTOCOLS


def test_check_passes_against_the_running_server(server: ServerProcess) -> None:
    result = server.cli("check")
    assert result.returncode == 0, result.stdout
    assert "ok    server: running (pid" in result.stdout
    for name in ("native", "native_plain", "xmpp", "xmpp_tls", "http", "https"):
        port = server.ports[name]
        line = next(line for line in result.stdout.splitlines() if f"listener {name}:" in line)
        assert f":{port} " in line and "served by the running server, answered in" in line, line
    assert "FAIL" not in result.stdout
    # Listeners configured on port 0: health learns their ports from the server,
    # the HTTP ones (WebSocket, BOSH, the web page) included.
    health = server.cli("health")
    assert health.returncode == 0, health.stdout
    probed = sorted(line.split()[1] for line in health.stdout.splitlines())
    assert probed == sorted(name for name in server.ports if name in (*PROTOCOLS, *HTTP_LISTENERS))
    assert {"http", "https"} <= set(probed)


def test_health_and_check_look_where_host_and_port_say(server: ServerProcess) -> None:
    plain = server.ports["native_plain"]
    one = server.cli("health", "--host", "127.0.0.1", "--port", str(plain))
    assert one.returncode == 0
    [line] = one.stdout.splitlines()
    assert line.startswith(f"ok    native_plain native 127.0.0.1:{plain} tls=none: answered in")
    http = server.ports["http"]
    web = server.cli("health", "--port", str(http), "--listener", "http")
    assert web.returncode == 0, web.stdout
    assert web.stdout.startswith(f"ok    http http 127.0.0.1:{http} tls=none: answered in")
    nowhere = free_port()
    missing = server.cli("health", "--port", str(nowhere), "--listener", "xmpp", "--timeout", "2")
    assert missing.returncode == 1
    assert f"FAIL  xmpp xmpp 127.0.0.1:{nowhere} tls=starttls:" in missing.stdout
    free = server.cli("check", "--port", str(nowhere))
    assert free.returncode == 0, free.stdout
    assert f"ok    listener native: native 127.0.0.1:{nowhere} tls=direct" in free.stdout
    assert "listener xmpp" not in free.stdout  # --port looks at one listener
