"""The fault suite's server fixture: alice, bob and carol, the token bucket off, and
ports pinned so a restarted server is where its clients left it.

Test modules import ``fault_server_fixture`` from here (a conftest.py in this folder
would shadow the top one's ``from conftest import``). It is a sync fixture
because creating the users runs its own event loop; a test needing other limits parametrizes it indirectly:
``@pytest.mark.parametrize("fault_server", [{"max_offline_messages": 20000}], indirect=True)``.
"""

from __future__ import annotations

import pytest
from conftest import ServerFactory, ServerProcess
from faults.peers import USERS, fault_config, pin_ports


@pytest.fixture(name="fault_server")
def fault_server_fixture(server_factory: ServerFactory, request: pytest.FixtureRequest) -> ServerProcess:
    limits = getattr(request, "param", {})
    server = server_factory(fault_config(**limits), USERS)
    pin_ports(server)
    return server
