"""Loading the configuration: file, environment, overrides, and errors that say where."""

from __future__ import annotations

from pathlib import Path

import pytest

from xmlchat import config
from xmlchat.config import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "xmlchat.toml"
    path.write_text(text)
    return path


def test_file_values_and_partial_tables_keep_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, 'hosts = ["a.example", "b.example"]\n[listeners.native]\naddress = "0.0.0.0"\n')
    cfg = config.load(path, env={})
    assert cfg.hosts == ("a.example", "b.example") and cfg.domain == "a.example"
    assert cfg.listeners.native.address == "0.0.0.0"
    assert (cfg.listeners.native.port, cfg.listeners.native.tls) == (5290, "direct")
    assert cfg.metrics.enabled is False and cfg.metrics.address == "127.0.0.1"


def test_environment_beats_file_and_overrides_beat_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "[listeners.native]\nport = 7000\n[log]\nformat = 'text'\n")
    env = {
        "XMLCHAT_LISTENERS_NATIVE_PORT": "7001",
        "XMLCHAT_HOSTS": "x.example, y.example",
        "XMLCHAT_METRICS_ENABLED": "yes",
        "XMLCHAT_LOG_FORMAT": "json",
        "XMLCHAT_LIMITS_IDLE_TIMEOUT": "12.5",
    }
    cfg = config.load(path, env=env)
    assert cfg.listeners.native.port == 7001
    assert cfg.hosts == ("x.example", "y.example")
    assert cfg.metrics.enabled is True and cfg.log.format == "json"
    assert cfg.limits.idle_timeout == 12.5
    cfg = config.load(path, env=env, overrides={"listeners.native.port": "7002"})
    assert cfg.listeners.native.port == 7002


@pytest.mark.parametrize(
    ("text", "key", "line", "words"),
    [
        (
            "hosts = ['h']\n\n[limits]\nidle_timeout = 3\nidle_timout = 4\n",
            "limits.idle_timout",
            5,
            "unknown key",
        ),
        ("[listeners.native]\nport = 'abc'\n", "listeners.native.port", 2, "expected an integer"),
        ("[log]\nformat = 'xml'\n", "log.format", 2, "must be one of"),
        ("[metrics]\nenabled = 'maybe'\n", "metrics.enabled", 2, "expected true or false"),
        ("hosts = []\n", "hosts", 1, "non-empty list"),
        ("listeners = { native = { tls = 'tcp' } }\n", "listeners.native.tls", 1, "must be one of"),
        ("[listeners]\nnative.port = 'x'\n", "listeners.native.port", 2, "expected an integer"),
        ("limits = 5\n", "limits", 1, "expected a table"),
    ],
)
def test_file_errors_name_the_key_and_line(
    tmp_path: Path, text: str, key: str, line: int, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        config.load(path, env={})
    assert error.value.key == key
    assert error.value.where == f"{path} line {line}"
    assert key in str(error.value) and words in str(error.value) and f"line {line}" in str(error.value)


def test_environment_errors_name_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "[limits]\nidle_timeout = 5\n")
    with pytest.raises(ConfigError) as error:
        config.load(path, env={"XMLCHAT_LIMITS_IDLE_TIMEOUT": "soon"})
    assert error.value.key == "limits.idle_timeout"
    assert error.value.where == "XMLCHAT_LIMITS_IDLE_TIMEOUT"
    with pytest.raises(ConfigError, match="command line"):
        config.load(None, env={}, overrides={"listeners.xmpp.port": "x"})


def test_syntax_errors_and_missing_files(tmp_path: Path) -> None:
    path = write(tmp_path, "[limits]\nidle_timeout = = 3\n")
    with pytest.raises(ConfigError, match=r"line 2"):
        config.load(path, env={})
    with pytest.raises(ConfigError, match="No such file"):
        config.load(tmp_path / "missing.toml", env={})
    (tmp_path / "latin1.toml").write_bytes(b"hosts = ['caf\xe9']\n")
    with pytest.raises(ConfigError):
        config.load(tmp_path / "latin1.toml", env={})


def test_unrelated_environment_is_ignored() -> None:
    cfg = config.load(None, env={"XMLCHAT_CONFIG": "/nowhere.toml", "XMLCHAT_NOT_A_KEY": "1"})
    assert cfg == config.Config()
