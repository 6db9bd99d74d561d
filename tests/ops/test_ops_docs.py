"""docs/configuration.md lists every key, generated from the dataclasses: it cannot drift."""

from __future__ import annotations

from ops.helpers import REPO

from xmlchat import configdoc

DOC = REPO / "docs" / "configuration.md"


def test_every_key_has_a_description() -> None:
    undocumented = [key.dotted for key in configdoc.all_keys() if key.dotted not in configdoc.DESCRIPTIONS]
    assert not undocumented, f"describe these in xmlchat/configdoc.py DESCRIPTIONS: {undocumented}"
    stale = set(configdoc.DESCRIPTIONS) - {key.dotted for key in configdoc.all_keys()}
    assert not stale, f"descriptions of keys that no longer exist: {sorted(stale)}"


def test_configuration_doc_is_up_to_date() -> None:
    text = DOC.read_text()
    assert configdoc.render(text) == text, "run: python -m xmlchat.configdoc docs/configuration.md"
    for key in configdoc.all_keys():
        assert f"| `{key.dotted}` |" in text and f"`{key.env}`" in text


def test_operations_doc_covers_the_container_and_the_tools() -> None:
    text = (REPO / "docs" / "operations.md").read_text()
    for needle in (
        "docker compose up -d",
        "docker compose exec xmlchat xmlchat adduser alice@localhost",
        "xmlchat health",
        "xmlchat check",
        "/metrics",
        'log.format = "json"',
        "Backups",
    ):
        assert needle in text
