"""Does a SCRAM exchange take as long for an unknown user, or a wrong password,
as for a right one? (An attacker who could tell would learn which accounts exist.)

    python -m benchmarks.scram_timing [--rounds 200]

Starts ``xmlchat serve`` on loopback (plaintext XMPP, the login guard's back-off
and lock-outs out of the way), creates one account, and runs ``--rounds``
SCRAM-SHA-1 exchanges of each kind, interleaved: the right password, a wrong
one, and a user that does not exist. For each it times the server's two
answers: client-first to challenge (the store look-up), client-final to
success or failure (the proof check). Prints medians and 90th percentiles.
Not a test: timings on a shared machine are noisy, so nothing asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import scramp

HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"
)
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
CHALLENGE = re.compile(rb"<challenge[^>]*>([^<]*)</challenge>")
CONFIG = """
hosts = ["localhost"]
[listeners.native]
enabled = false
[listeners.xmpp]
port = 0
tls = "none"
[listeners.http]
enabled = false
[listeners.https]
enabled = false
[xmpp]
require_encryption = false
[limits]
login_backoff = 0
login_lockout_after = 1000000
login_ban_after = 1000000
[log]
level = "warning"
"""
CASES = {
    "right password": ("alice", "alicepw"),
    "wrong password": ("alice", "nope"),
    "unknown user": ("ghost", "x"),
}


async def exchange(port: int, user: str, password: str) -> tuple[float, float]:
    """Seconds from client-first to the challenge, and from client-final to the outcome."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(HEADER)
        await reader.readuntil(b"</stream:features>")
        client = scramp.ScramClient(["SCRAM-SHA-1"], user, password)
        first = base64.b64encode(client.get_client_first().encode()).decode()
        started = time.perf_counter()
        writer.write(f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-1'>{first}</auth>".encode())
        data = await reader.readuntil(b"</challenge>")
        lookup = time.perf_counter() - started
        match = CHALLENGE.search(data)
        assert match, data
        client.set_server_first(base64.b64decode(match.group(1)).decode())
        final = base64.b64encode(client.get_client_final().encode()).decode()
        started = time.perf_counter()
        writer.write(f"<response xmlns='{SASL}'>{final}</response>".encode())
        await reader.readuntil(b"</success>" if password == "alicepw" else b"</failure>")
        return lookup, time.perf_counter() - started
    finally:
        writer.close()


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return f"median {statistics.median(ordered) * 1e3:6.2f} ms, p90 {p90 * 1e3:6.2f} ms"


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "xmlchat.toml"
        config.write_text(CONFIG)
        env = {**os.environ, "XMLCHAT_DATA_DIR": str(Path(tmp) / "data")}
        cli = [sys.executable, "-m", "xmlchat"]
        subprocess.run(
            [*cli, "adduser", "alice", "--password", "alicepw", "--config", str(config)], env=env, check=True
        )
        server = subprocess.Popen(
            [*cli, "serve", "--config", str(config)], stdout=subprocess.PIPE, text=True, env=env
        )
        try:
            assert server.stdout is not None
            port = 0
            for line in server.stdout:
                if line.startswith("listening: xmpp"):
                    port = int(line.split(" port ")[1].split()[0])
                if line.startswith("ready:"):
                    break
            times: dict[str, list[tuple[float, float]]] = {case: [] for case in CASES}
            for _ in range(rounds):
                for case, (user, password) in CASES.items():
                    times[case].append(await exchange(port, user, password))
        finally:
            server.terminate()
            server.wait(30)
    for case, pairs in times.items():
        lookups, finals = [a for a, _ in pairs], [b for _, b in pairs]
        print(f"{case:15}  first→challenge {summary(lookups)};  final→outcome {summary(finals)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=200)
    asyncio.run(main(parser.parse_args().rounds))
