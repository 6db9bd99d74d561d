"""Accounts and SCRAM keys, against both backends (see conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import scramp
from storage.common import ALICE, BOB, CAROL, PASSWORD, OpenStorage

from xmlchat.jid import JID
from xmlchat.storage import NoSuchUser, Storage, UserExists

AuthFn = Callable[[str], tuple[bytes, bytes, bytes, int]]


# -- accounts ---------------------------------------------------------------------

async def test_create_duplicate_delete(storage: Storage) -> None:
    assert not await storage.user_exists(ALICE)
    await storage.create_user(ALICE, PASSWORD)
    assert await storage.user_exists(ALICE)
    assert await storage.user_exists(ALICE.with_resource("phone"))  # looked up as bare
    with pytest.raises(UserExists):
        await storage.create_user(JID.parse("ALICE@Example.com"), "other")
    assert await storage.delete_user(ALICE)
    assert not await storage.delete_user(ALICE)
    assert not await storage.user_exists(ALICE)

async def test_account_needs_a_localpart(storage: Storage) -> None:
    with pytest.raises(ValueError):
        await storage.create_user(JID.parse("example.com"), PASSWORD)
    assert not await storage.user_exists(JID.parse("example.com"))

async def test_list_users_sorted_and_by_host(storage: Storage) -> None:
    for jid in (CAROL, BOB, ALICE):
        await storage.create_user(jid, PASSWORD)
    assert await storage.list_users() == [ALICE, BOB, CAROL]
    assert await storage.list_users("example.com") == [ALICE, BOB]
    assert await storage.list_users("Other.Example") == [CAROL]
    assert await storage.list_users("nowhere.example") == []
    assert await storage.count_users() == 3
    await storage.delete_user(BOB)
    assert await storage.count_users() == 2

async def test_check_password(storage: Storage) -> None:
    await storage.create_user(ALICE, PASSWORD)
    assert await storage.check_password(ALICE, PASSWORD)
    assert not await storage.check_password(ALICE, PASSWORD + "!")
    assert not await storage.check_password(BOB, PASSWORD)
    assert not await storage.check_password(ALICE, "bad\x00password")  # SASLprep rejects

async def test_set_password(storage: Storage) -> None:
    await storage.create_user(ALICE, PASSWORD)
    await storage.set_password(ALICE, "new one")
    assert await storage.check_password(ALICE, "new one")
    assert not await storage.check_password(ALICE, PASSWORD)
    with pytest.raises(NoSuchUser):
        await storage.set_password(BOB, "x")

async def test_iterations_from_config(open_storage: OpenStorage) -> None:
    st = await open_storage(5000)
    await st.create_user(ALICE, PASSWORD)
    creds = await st.get_scram(ALICE, "SCRAM-SHA-1")
    assert creds is not None and creds.iterations == 5000
    assert await st.get_scram(ALICE, "SCRAM-SHA-512") is None
    assert await st.get_scram(BOB, "SCRAM-SHA-1") is None

async def test_too_few_iterations_are_refused(open_storage: OpenStorage) -> None:
    with pytest.raises(ValueError):
        await open_storage(1000)

def _scram_exchange(mechanism: str, password: str, auth_fn: AuthFn) -> None:
    server = scramp.ScramMechanism(mechanism).make_server(auth_fn)
    client = scramp.ScramClient([mechanism], "alice", password)
    server.set_client_first(client.get_client_first())
    client.set_server_first(server.get_server_first())
    server.set_client_final(client.get_client_final())
    client.set_server_final(server.get_server_final())  # verifies ServerSignature

@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-1", "SCRAM-SHA-256"])
async def test_stored_keys_complete_a_scram_exchange(storage: Storage, mechanism: str) -> None:
    await storage.create_user(ALICE, PASSWORD)
    creds = await storage.get_scram(ALICE, mechanism)
    assert creds is not None and creds.mechanism == mechanism

    def auth_fn(username: str) -> tuple[bytes, bytes, bytes, int]:
        assert username == "alice"
        return creds.salt, creds.stored_key, creds.server_key, creds.iterations

    _scram_exchange(mechanism, PASSWORD, auth_fn)
    with pytest.raises(scramp.ScramException):
        _scram_exchange(mechanism, "wrong", auth_fn)
