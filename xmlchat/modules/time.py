"""XEP-0202 Entity Time: the server's clock, as UTC plus its offset (§3, §4).

Both fields use the XEP-0082 profiles: ``tzo`` is ``±hh:mm``, ``utc`` is a
DateTime in UTC with a ``Z`` (milliseconds, as the server stamps messages).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

from lxml import etree

from xmlchat.routing.api import Feature, IqHandler, Registration
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.session import Session

XEP: Final = 202
NS: Final = "urn:xmpp:time"


class Time:
    name = "time"

    def __init__(self, ctx: ModuleContext[None], clock: Callable[[], datetime] | None = None) -> None:
        self.ctx = ctx
        self.clock = clock or (lambda: datetime.now().astimezone())  # aware, in local time

    def setup(self) -> list[Registration]:
        return [Feature(NS), IqHandler("get", f"{{{NS}}}time", self.time)]

    async def time(self, session: Session, iq: etree._Element) -> etree._Element:
        now = self.clock()
        minutes = int((now.utcoffset() or timedelta(0)).total_seconds()) // 60
        sign, offset = ("-" if minutes < 0 else "+"), abs(minutes)
        time = etree.Element(f"{{{NS}}}time", nsmap={None: NS})
        etree.SubElement(time, f"{{{NS}}}tzo").text = f"{sign}{offset // 60:02d}:{offset % 60:02d}"
        stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        etree.SubElement(time, f"{{{NS}}}utc").text = stamp
        return time
