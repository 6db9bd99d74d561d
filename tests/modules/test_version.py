from __future__ import annotations

from modules.fakes import Harness, iq_get, session

from xmlchat import __version__
from xmlchat.modules.version import NS, Version


async def test_name_and_version_without_os_unless_asked() -> None:
    server = Harness()
    version = server.load(Version)
    assert NS in server.registry.features
    query = await version.version(session(), iq_get(f"{{{NS}}}query"))
    assert [(child.tag, child.text) for child in query] == [
        (f"{{{NS}}}name", "xmlchat"),
        (f"{{{NS}}}version", __version__),
    ]
    chatty = Harness().load(lambda s: Version(s, show_os=True))
    query = await chatty.version(session(), iq_get(f"{{{NS}}}query"))
    assert query.findtext(f"{{{NS}}}os")
