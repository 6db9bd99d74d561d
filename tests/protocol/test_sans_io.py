"""The sans-IO core imports no I/O, concurrency, storage or server code.

The core is ``xmlchat/xml/`` and ``xmlchat/protocol/`` (every subpackage),
``xmlchat/stanza.py``, ``xmlchat/jid.py`` and ``xmlchat/errors.py``. The check
reads real import statements with :mod:`ast` — ``import x``, ``from x import
y``, relative imports, and imports inside functions — so a new subpackage
cannot break the rule unnoticed. The lead's import-linter contracts are the
whole-project guard; this one is the fast unit-level one.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import xmlchat

FORBIDDEN = (
    "asyncio",
    "socket",
    "ssl",
    "selectors",
    "threading",
    "trio",
    "xmlchat.server",
    "xmlchat.storage",
    "xmlchat.modules",
)
CORE_PACKAGES = ("xmlchat/xml", "xmlchat/protocol")
CORE_MODULES = ("xmlchat/stanza.py", "xmlchat/jid.py", "xmlchat/errors.py")
SOURCE_ROOT = Path(xmlchat.__file__).parent.parent


def core_files(root: Path) -> list[Path]:
    """Every Python file of the core under ``root`` (the directory holding ``xmlchat/``)."""
    files = [root / name for name in CORE_MODULES if (root / name).exists()]
    for package in CORE_PACKAGES:
        files += (root / package).rglob("*.py")
    return sorted(files)


def imported_names(path: Path, root: Path) -> Iterator[str]:
    """The absolute module names ``path`` imports, anywhere in the file.

    ``from a import b`` yields both ``a`` and ``a.b``: ``b`` may be a submodule
    (``from xmlchat import server``).
    """
    package = list(path.relative_to(root).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                # `from ..x import y` in package a.b.c is a.b.x: level 1 is the package itself.
                parent = package[: len(package) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def is_forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def violations(root: Path) -> list[tuple[str, str]]:
    """(file relative to ``root``, forbidden module) for every bad import of the core."""
    found = []
    for path in core_files(root):
        for name in imported_names(path, root):
            if is_forbidden(name):
                found.append((path.relative_to(root).as_posix(), name))
    return found


def test_the_checker_sees_every_core_file() -> None:
    files = {p.relative_to(SOURCE_ROOT).as_posix() for p in core_files(SOURCE_ROOT)}
    # Files in subpackages, which a non-recursive glob would miss.
    assert "xmlchat/protocol/xmpp/stream.py" in files
    assert "xmlchat/protocol/sasl/scram.py" in files
    assert {"xmlchat/stanza.py", "xmlchat/jid.py", "xmlchat/errors.py"} <= files
    assert "xmlchat/server/xmpp.py" not in files


def test_sans_io_core_imports_no_networking() -> None:
    assert violations(SOURCE_ROOT) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import asyncio\n", "asyncio"),
        ("import socket as s\n", "socket"),
        ("from ssl import SSLContext\n", "ssl"),
        ("import selectors, os\n", "selectors"),
        ("def f() -> None:\n    import threading\n", "threading"),
        ("class C:\n    def m(self) -> None:\n        from asyncio import sleep\n", "asyncio"),
        ("from xmlchat import server\n", "xmlchat.server"),
        ("from xmlchat.storage.sqlite import Store\n", "xmlchat.storage.sqlite"),
        ("import xmlchat.modules.roster\n", "xmlchat.modules.roster"),
        # In xmlchat/protocol/extra/deep/: three dots are xmlchat.protocol.
        ("from ... import native\nfrom ....server import xmpp\n", "xmlchat.server"),
    ],
)
def test_the_checker_catches_a_violation_in_a_new_subpackage(
    tmp_path: Path, source: str, expected: str
) -> None:
    deep = tmp_path / "xmlchat" / "protocol" / "extra" / "deep"
    deep.mkdir(parents=True)
    (deep / "__init__.py").write_text("")
    (deep / "clean.py").write_text("import base64\nfrom lxml import etree\nfrom ..x import socketish\n")
    (deep / "bad.py").write_text(source)
    (tmp_path / "xmlchat" / "jid.py").write_text("import unicodedata\n")
    found = violations(tmp_path)
    assert found
    assert {path for path, _ in found} == {"xmlchat/protocol/extra/deep/bad.py"}
    assert expected in {name for _, name in found}


def test_the_checker_covers_the_top_level_core_modules(tmp_path: Path) -> None:
    (tmp_path / "xmlchat").mkdir()
    (tmp_path / "xmlchat" / "errors.py").write_text("import asyncio\n")
    assert violations(tmp_path) == [("xmlchat/errors.py", "asyncio")]


def test_protocol_package_imports_no_networking() -> None:
    """Importing the core pulls in no asyncio, server or storage, even transitively.

    (scramp imports ssl, hence socket, for its channel-binding helpers; that
    is a transitive import we tolerate — asyncio is checked transitively.)
    """
    code = (
        "import sys, xmlchat.protocol.xmpp, xmlchat.protocol.sasl, xmlchat.protocol.native\n"
        "import xmlchat.xml.writer\n"
        "banned = ('asyncio', 'xmlchat.server', 'xmlchat.storage', 'xmlchat.modules')\n"
        "print(','.join(m for m in banned if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
