"""SCRAM key derivation shared by every backend: stores keep keys, never passwords.

Everything here is CPU work with no I/O; callers decide which thread runs it
(the SQLite store uses the loop's default executor, the in-memory one runs it
inline).
"""

from __future__ import annotations

import hmac
import os
from typing import Final

import scramp

from xmlchat.storage.base import SCRAM_MECHANISMS, ScramCredentials

# scramp refuses fewer (RFC 7677 §4: "at least 4096").
MIN_SCRAM_ITERATIONS: Final = 4096
# check_password() hashes with this mechanism's keys.
CHECK_MECHANISM: Final = "SCRAM-SHA-256"


def require_iterations(iterations: int) -> None:
    if iterations < MIN_SCRAM_ITERATIONS:
        raise ValueError(f"scram_iterations must be >= {MIN_SCRAM_ITERATIONS}")


def make_keys(
    mechanism: str, password: str, iterations: int, salt: bytes | None = None
) -> ScramCredentials:
    """PBKDF2 (RFC 5802 §3) via scramp, which also applies SASLprep (RFC 4013).

    Raises ValueError if SASLprep rejects ``password``.
    """
    try:
        salt, stored, server, i = scramp.ScramMechanism(mechanism).make_auth_info(
            password, iteration_count=iterations, salt=salt
        )
    except scramp.ScramException as e:
        raise ValueError(f"password rejected: {e}") from None
    return ScramCredentials(mechanism, salt, i, stored, server)


def derive_all(password: str, iterations: int) -> list[ScramCredentials]:
    """Fresh salted keys for every mechanism in :data:`SCRAM_MECHANISMS`."""
    return [make_keys(m, password, iterations) for m in SCRAM_MECHANISMS]


def make_decoy(iterations: int) -> ScramCredentials:
    """Random keys to hash against for unknown users, so check_password() costs
    the same whether or not the account exists."""
    return ScramCredentials(
        CHECK_MECHANISM, os.urandom(16), iterations, os.urandom(32), os.urandom(32)
    )


def password_matches(
    password: str, stored: ScramCredentials | None, decoy: ScramCredentials
) -> bool:
    """For PLAIN: hash ``password`` with the stored salt and compare StoredKeys
    in constant time; False for no account (``stored`` None) or a password
    SASLprep rejects."""
    target = stored or decoy
    try:
        keys = make_keys(CHECK_MECHANISM, password, target.iterations, target.salt)
    except ValueError:
        return False
    match = hmac.compare_digest(keys.stored_key, target.stored_key)
    return match and stored is not None
