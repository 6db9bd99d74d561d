"""XEP-0092 Software Version: the server's name and version (§2).

The operating system is left out unless ``show_os`` is set: it tells an
attacker more than it tells a user (XEP-0092 §5; ejabberd's ``show_os``).
"""

from __future__ import annotations

import platform
from typing import Final

from lxml import etree

from xmlchat import __version__
from xmlchat.routing.api import Feature, IqHandler, Registration
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.session import Session

XEP: Final = 92
NS: Final = "jabber:iq:version"


class Version:
    name = "version"

    def __init__(self, ctx: ModuleContext[None], show_os: bool = False) -> None:
        self.ctx = ctx
        self.show_os = show_os

    def setup(self) -> list[Registration]:
        return [Feature(NS), IqHandler("get", f"{{{NS}}}query", self.version)]

    async def version(self, session: Session, iq: etree._Element) -> etree._Element:
        query = etree.Element(f"{{{NS}}}query", nsmap={None: NS})
        etree.SubElement(query, f"{{{NS}}}name").text = "xmlchat"
        etree.SubElement(query, f"{{{NS}}}version").text = __version__
        if self.show_os:
            etree.SubElement(query, f"{{{NS}}}os").text = f"{platform.system()} {platform.release()}"
        return query
