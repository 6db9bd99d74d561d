"""The shape of the code base: files that fit in a head, packages that say what they are."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400
CHECKED = ("xmlchat", "benchmarks", "examples", "tests")


def python_files() -> list[Path]:
    return sorted(p for folder in CHECKED for p in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", python_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_file_fits_in_a_head(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines: split it by responsibility"


def test_the_layers_are_the_top_level_packages() -> None:
    """A newcomer names the layers from ``ls xmlchat/`` (docs/architecture.md)."""
    packages = {p.name for p in (ROOT / "xmlchat").iterdir() if (p / "__init__.py").exists()}
    layers = {"xml", "protocol", "storage", "routing", "modules", "server", "client", "cli"}
    assert layers <= packages
