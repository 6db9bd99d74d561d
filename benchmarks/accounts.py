"""Benchmark accounts and their stored SCRAM-SHA-1 credentials.

Every server gets the same accounts with the same PBKDF2 iteration count
(:data:`ITERATIONS`), so a SASL PLAIN login costs each of them one PBKDF2 run of
that many rounds. Credentials are computed here, once, in a process pool, and
written straight into each server's store (Prosody, ejabberd); xmlchat derives its
own (it also stores SCRAM-SHA-256 and checks PLAIN against that).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass

ITERATIONS = 4096
PASSWORD = "bench-secret"


@dataclass(frozen=True)
class Account:
    user: str
    password: str = PASSWORD


@dataclass(frozen=True)
class ScramSha1:
    """RFC 5802 stored credentials: what a server keeps instead of the password."""

    user: str
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    @staticmethod
    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")


def derive(account: Account, salt: bytes, iterations: int = ITERATIONS) -> ScramSha1:
    salted = hashlib.pbkdf2_hmac("sha1", account.password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha1").digest()
    stored_key = hashlib.sha1(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha1").digest()
    return ScramSha1(account.user, salt, iterations, stored_key, server_key)


def _derive_one(args: tuple[Account, bytes, int]) -> ScramSha1:
    return derive(*args)


def derive_all(
    accounts: Sequence[Account], iterations: int = ITERATIONS, salt_len: int = 16
) -> list[ScramSha1]:
    """One random salt per account; PBKDF2 spread over the CPUs.

    Salts are printable (hex digits): Prosody stores the salt as a string and uses
    its bytes as they are, so every server then hashes the very same salt bytes.
    """
    key = (tuple(accounts), iterations, salt_len)
    if key in _derived:  # every server of one harness run gets the same credentials
        return _derived[key]
    jobs = [(a, os.urandom(salt_len).hex().encode(), iterations) for a in accounts]
    if len(jobs) < 200:
        out = [_derive_one(j) for j in jobs]
    else:
        with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:
            out = pool.map(_derive_one, jobs, chunksize=256)
    _derived.clear()
    _derived[key] = out
    return out


_derived: dict[tuple[tuple[Account, ...], int, int], list[ScramSha1]] = {}


@dataclass(frozen=True)
class AccountPool:
    """Who plays which part: one contiguous block of accounts per role.

    ``general`` accounts are for logins, idle sessions and churn; the others are
    reserved for message pairs, the fan-out and the ping-pong, so those never share an
    account (and so a session) with idle load.
    """

    general_count: int
    pair_count: int
    fanout_recipients: int

    def _block(self, prefix: str, n: int) -> list[Account]:
        return [Account(f"{prefix}{i}") for i in range(n)]

    def general(self, n: int | None = None) -> list[Account]:
        count = self.general_count if n is None else n
        if count > self.general_count:
            raise ValueError(f"only {self.general_count} general accounts, {count} wanted")
        return self._block("u", count)

    def pairs(self) -> list[tuple[Account, Account]]:
        return [(Account(f"ps{i}"), Account(f"pr{i}")) for i in range(self.pair_count)]

    def fanout(self) -> tuple[Account, list[Account]]:
        return Account("fs0"), self._block("fr", self.fanout_recipients)

    def pingpong(self) -> tuple[Account, Account]:
        return Account("pa0"), Account("pb0")

    def all(self) -> list[Account]:
        out = self.general()
        for s, r in self.pairs():
            out += [s, r]
        sender, recipients = self.fanout()
        out += [sender, *recipients, *self.pingpong()]
        return out
