"""A client that cannot verify the server's certificate says why and what to
do; ``--cafile`` and ``--trust-on-first-use`` (pinning, as ssh's known_hosts) work."""

from __future__ import annotations

from pathlib import Path

from conftest import ServerProcess
from ops.helpers import clean_env, xmlchat


def send(server: ServerProcess, tmp_path: Path, *options: str) -> tuple[int, str, str]:
    """``xmlchat send`` as a user elsewhere runs it: another data directory."""
    env = clean_env(
        XMLCHAT_DATA_DIR=str(tmp_path / "elsewhere"),
        XMLCHAT_PASSWORD="alicepw",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    server_address = f"127.0.0.1:{server.ports['native']}"
    result = xmlchat("send", "alice", "bob", "hello", "--server", server_address, *options, env=env)
    return result.returncode, result.stdout, result.stderr


def test_an_unverifiable_certificate_is_explained(server: ServerProcess, tmp_path: Path) -> None:
    status, _, err = send(server, tmp_path)
    assert status == 1 and "Traceback" not in err
    assert f"cannot verify the certificate of 127.0.0.1:{server.ports['native']} (self-signed" in err
    assert "--cafile PATH" in err and "--trust-on-first-use" in err
    assert str(tmp_path / "elsewhere" / "tls" / "cert.pem") in err
    status, out, err = send(server, tmp_path, "--cafile", server.cafile)
    assert status == 0 and out.startswith("sent"), err


def test_trust_on_first_use_pins_and_refuses_a_changed_certificate(
    server: ServerProcess, tmp_path: Path
) -> None:
    status, out, err = send(server, tmp_path, "--trust-on-first-use")
    known_hosts = tmp_path / "config" / "xmlchat" / "known_hosts"
    assert status == 0 and out.startswith("sent"), err
    assert "trusting certificate SHA256:" in err and str(known_hosts) in err
    name, pinned = known_hosts.read_text().split()
    assert name == f"127.0.0.1:{server.ports['native']}" and len(pinned) == len("SHA256:") + 32 * 3 - 1
    status, out, err = send(server, tmp_path, "--trust-on-first-use")
    assert status == 0 and f"certificate {pinned} matches" in err
    forged = pinned[:-2] + ("00" if not pinned.endswith("00") else "11")
    known_hosts.write_text(f"{name} {forged}\n")
    status, out, err = send(server, tmp_path, "--trust-on-first-use")
    assert status == 1 and "CHANGED" in err and forged in err and pinned in err
    assert out == ""  # nothing was sent
