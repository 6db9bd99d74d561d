from __future__ import annotations

from modules.fakes import Harness, iq_get, session

from xmlchat.modules.ping import NS, Ping


async def test_a_ping_to_the_server_gets_an_empty_result_and_is_advertised() -> None:
    server = Harness()
    server.load(Ping)
    assert NS in server.registry.features
    handler = server.registry.iq_handlers[("get", f"{{{NS}}}ping")]
    assert await handler.handle(session(), iq_get(f"{{{NS}}}ping")) is None
