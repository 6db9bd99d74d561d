"""``xmlchat check``: exit 0 when the server would start, 1 with a FAIL line when not."""

from __future__ import annotations

import datetime
import socket
from pathlib import Path

from cryptography import x509
from ops.helpers import clean_env, free_port, xmlchat

from xmlchat.server.tls import generate_self_signed


def config_file(tmp_path: Path, extra: str = "", native_port: int | None = None) -> Path:
    path = tmp_path / "xmlchat.toml"
    path.write_text(
        f'hosts = ["localhost"]\ndata_dir = "{tmp_path / "data"}"\n'
        f"[listeners.native]\nport = {native_port or free_port()}\n"
        f"[listeners.native_plain]\nenabled = true\nport = {free_port()}\n"
        f"[listeners.xmpp]\nport = {free_port()}\n"
        f"[listeners.http]\nport = {free_port()}\n[listeners.https]\nport = {free_port()}\n"
        f"[metrics]\nenabled = true\nport = {free_port()}\n{extra}"
    )
    return path


def test_good_file_reports_certificate_and_listeners(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    result = xmlchat("check", "--config", str(path), env=clean_env())
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "FAIL" not in out
    cert = tmp_path / "data" / "tls" / "cert.pem"
    assert cert.exists()  # generated, as serve would
    expires = x509.load_pem_x509_certificate(cert.read_bytes()).not_valid_after_utc
    assert (
        f"ok    certificate: {cert}: subject CN=localhost; names localhost; expires {expires:%Y-%m-%d}" in out
    )
    assert "ok    listener native: native 127.0.0.1:" in out and "tls=direct" in out
    assert "ok    listener native_plain: native 127.0.0.1:" in out
    assert "ok    metrics: http://127.0.0.1:" in out
    # The config file may come from $XMLCHAT_CONFIG, as in a container.
    again = xmlchat("check", env=clean_env(XMLCHAT_CONFIG=str(path)))
    assert again.returncode == 0 and str(path) in again.stdout


def test_bad_key_and_bad_type_exit_1_naming_key_and_line(tmp_path: Path) -> None:
    path = config_file(tmp_path, "[limits]\nidle_timout = 5\n")
    line = path.read_text().splitlines().index("idle_timout = 5") + 1
    result = xmlchat("check", "--config", str(path), env=clean_env())
    assert result.returncode == 1
    assert f"unknown key 'limits.idle_timout' ({path} line {line})" in result.stderr
    path = config_file(tmp_path, "[limits]\nidle_timeout = 'soon'\n")
    result = xmlchat("check", "--config", str(path), env=clean_env())
    assert result.returncode == 1
    assert f"limits.idle_timeout: expected a number, not 'soon' ({path} line {line})" in result.stderr


def test_configured_but_missing_certificate_fails(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "cert.pem"
    path = config_file(
        tmp_path, f'[tls]\ncert_file = "{missing}"\nkey_file = "{missing.with_name("key.pem")}"\n'
    )
    result = xmlchat("check", "--config", str(path), env=clean_env())
    assert result.returncode == 1
    assert f"FAIL  certificate: {missing}: no such file" in result.stdout
    assert not (tmp_path / "data" / "tls").exists()  # never silently replaced by a generated one


def test_expired_certificate_fails(tmp_path: Path) -> None:
    cert, key = tmp_path / "old.pem", tmp_path / "old.key"
    generate_self_signed(("localhost",), cert, key)
    # Re-sign the same key with validity in the past.
    from cryptography.hazmat.primitives import hashes, serialization

    private = serialization.load_pem_private_key(key.read_bytes(), None)
    old = x509.load_pem_x509_certificate(cert.read_bytes())
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    expired = (
        x509.CertificateBuilder()
        .subject_name(old.subject)
        .issuer_name(old.issuer)
        .public_key(old.public_key())
        .serial_number(old.serial_number)
        .not_valid_before(past)
        .not_valid_after(past + datetime.timedelta(days=1))
        .sign(private, hashes.SHA256())  # type: ignore[arg-type]
    )
    cert.write_bytes(expired.public_bytes(serialization.Encoding.PEM))
    path = config_file(tmp_path, f'[tls]\ncert_file = "{cert}"\nkey_file = "{key}"\n')
    result = xmlchat("check", "--config", str(path), env=clean_env())
    assert result.returncode == 1
    assert "expires 2020-01-02: EXPIRED" in result.stdout


def test_port_in_use_fails(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        path = config_file(tmp_path, native_port=port)
        result = xmlchat("check", "--config", str(path), env=clean_env())
    assert result.returncode == 1
    assert f"FAIL  listener native: native 127.0.0.1:{port}: port {port} is already in use" in result.stdout
    assert "ok    listener native_plain" in result.stdout  # the others are still checked


def test_plaintext_listener_on_network_fails(tmp_path: Path) -> None:
    path = config_file(tmp_path, "")
    text = path.read_text().replace(
        "[listeners.native_plain]\n", '[listeners.native_plain]\naddress = "0.0.0.0"\n'
    )
    path.write_text(text)
    result = xmlchat("check", "--config", str(path), env=clean_env())
    assert result.returncode == 1
    assert (
        "FAIL  listener native_plain: the plaintext native listener may only bind loopback" in result.stdout
    )
