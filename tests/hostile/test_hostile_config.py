"""Issue 14, item 3: the whole configuration is checked at start; a setting
that is invalid or contradicts another is one line naming the key, exit
status 2, no traceback (and a FAIL line from ``xmlchat check``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ops.helpers import clean_env, free_port, xmlchat

PORT = free_port()
CASES = {
    "limits.max_pending": "[limits]\nmax_pending = 0\n",
    "limits.tls_handshake_timeout": "[limits]\ntls_handshake_timeout = -1\n",
    "limits.ip_bytes_per_second": "[limits]\nip_bytes_per_second = -5\n",
    "listeners.xmpp.port": (
        f"[listeners.native]\nport = {PORT}\n[listeners.xmpp]\nport = {PORT}\naddress = '0.0.0.0'\n"
    ),
    "tls.cert_file": "[tls]\ncert_file = '/nonexistent/cert.pem'\nkey_file = '/nonexistent/key.pem'\n",
    "tls.key_file": "[tls]\ncert_file = '/etc/hostname'\n",
    "log.level": "[log]\nlevel = 'loud'\n",
    # XEP-0114: no TLS in the protocol; a component's domain is a host's subdomain.
    "listeners.component.tls": (
        "[listeners.component]\nenabled = true\ntls = 'direct'\n"
        "[components.secrets]\n'echo.localhost' = 's'\n"
    ),
    "components.secrets": "[components.secrets]\n'echo.example.org' = 's'\n",
}


@pytest.mark.parametrize("key", sorted(CASES))
def test_serve_refuses_a_bad_setting_in_one_line_naming_the_key(tmp_path: Path, key: str) -> None:
    config = tmp_path / "xmlchat.toml"
    config.write_text(f"data_dir = '{tmp_path / 'data'}'\n" + CASES[key])
    result = xmlchat("serve", "--config", str(config), env=clean_env(), timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"xmlchat: configuration error: {key}: ")
    assert result.stdout == ""  # nothing was bound or announced


def test_check_reports_every_problem(tmp_path: Path) -> None:
    config = tmp_path / "xmlchat.toml"
    config.write_text(
        f"data_dir = '{tmp_path / 'data'}'\n" + CASES["limits.max_pending"] + "login_timeout = 0\n"
    )
    result = xmlchat("check", "--config", str(config), env=clean_env(), timeout=30)
    assert result.returncode == 1
    assert "FAIL  config: limits.login_timeout: must be greater than 0, not 0.0" in result.stdout
    assert "FAIL  config: limits.max_pending: must be greater than 0, not 0" in result.stdout
