from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from modules.fakes import Harness, iq_get, session

from xmlchat.modules.time import NS, Time


@pytest.mark.parametrize(
    ("offset", "tzo", "utc"),
    [
        (timedelta(0), "+00:00", "2026-03-01T12:00:00.250Z"),
        (timedelta(hours=-6), "-06:00", "2026-03-01T18:00:00.250Z"),
        (timedelta(hours=5, minutes=45), "+05:45", "2026-03-01T06:15:00.250Z"),
        (timedelta(minutes=-30), "-00:30", "2026-03-01T12:30:00.250Z"),
    ],
)
async def test_tzo_and_utc_in_xep_0082_form(offset: timedelta, tzo: str, utc: str) -> None:
    local = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=timezone(offset))
    server = Harness()
    module = server.load(lambda s: Time(s, clock=lambda: local))
    assert NS in server.registry.features
    reply = await module.time(session(), iq_get(f"{{{NS}}}time"))
    assert (reply.findtext(f"{{{NS}}}tzo"), reply.findtext(f"{{{NS}}}utc")) == (tzo, utc)
