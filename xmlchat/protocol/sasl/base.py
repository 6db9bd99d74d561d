"""What every SASL mechanism shares: conditions, steps, the base class (RFC 4422, RFC 6120 §6)."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Protocol

# Mechanisms this package implements, strongest first (the order they are offered).
SCRAM_MECHANISMS: Final = ("SCRAM-SHA-256", "SCRAM-SHA-1")
PLUS_MECHANISMS: Final = ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS")
ALL_MECHANISMS: Final = (*PLUS_MECHANISMS, *SCRAM_MECHANISMS, "PLAIN")

# Channel-binding types scramp can verify, in order of preference. tls-exporter
# (RFC 9266) is missing: scramp 1.5 raises on it.
SUPPORTED_CHANNEL_BINDINGS: Final = ("tls-server-end-point", "tls-unique")

# scramp's own bounds (RFC 7677 §4 recommends at least 4096 iterations; scramp
# refuses fewer, and salts shorter than 12 bytes).
MIN_ITERATIONS: Final = 4096
DEFAULT_FAKE_ITERATIONS: Final = 4096


class SaslCondition(StrEnum):
    """RFC 6120 §6.5 SASL failure conditions."""

    ABORTED = "aborted"
    ACCOUNT_DISABLED = "account-disabled"
    CREDENTIALS_EXPIRED = "credentials-expired"
    ENCRYPTION_REQUIRED = "encryption-required"
    INCORRECT_ENCODING = "incorrect-encoding"
    INVALID_AUTHZID = "invalid-authzid"
    INVALID_MECHANISM = "invalid-mechanism"
    MALFORMED_REQUEST = "malformed-request"
    MECHANISM_TOO_WEAK = "mechanism-too-weak"
    NOT_AUTHORIZED = "not-authorized"
    TEMPORARY_AUTH_FAILURE = "temporary-auth-failure"


class SaslFailure(Exception):
    """The exchange failed; answer with ``<failure><condition/></failure>``."""

    def __init__(self, condition: SaslCondition, text: str = "") -> None:
        super().__init__(f"{condition}: {text}" if text else str(condition))
        self.condition = condition
        self.text = text


class ScramCredentialsLike(Protocol):
    """What ``xmlchat.storage.ScramCredentials`` holds (RFC 5802 §3), structurally.

    A Protocol so this package never imports storage (which imports asyncio).
    """

    @property
    def mechanism(self) -> str: ...
    @property
    def salt(self) -> bytes: ...
    @property
    def iterations(self) -> int: ...
    @property
    def stored_key(self) -> bytes: ...
    @property
    def server_key(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Challenge:
    data: bytes


@dataclass(frozen=True, slots=True)
class Success:
    data: bytes | None = None  # additional data with success (RFC 6120 §6.4.6)


@dataclass(frozen=True, slots=True)
class CredentialsNeeded:
    authcid: str  # SASLprepped user name as sent (may still need JID localpart prep)
    authzid: str | None
    mechanism: str  # the credential type: "SCRAM-SHA-1" or "SCRAM-SHA-256", never -PLUS


@dataclass(frozen=True, slots=True)
class PasswordCheckNeeded:
    authcid: str
    authzid: str | None
    password: str = field(repr=False)


Step = Challenge | Success | CredentialsNeeded | PasswordCheckNeeded


class ServerMechanism(abc.ABC):
    """One SASL exchange, server side. Use each instance for one exchange only."""

    name: str

    @abc.abstractmethod
    def start(self, initial_response: bytes | None) -> Step:
        """Begin; ``initial_response`` is None when the client sent none (RFC 6120 §6.4.2)."""

    @abc.abstractmethod
    def respond(self, response: bytes) -> Step:
        """The client's ``<response/>`` to our last challenge."""

    def provide_credentials(self, credentials: ScramCredentialsLike | None) -> Step:
        raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "unexpected credentials")

    def password_checked(self, ok: bool) -> Step:
        raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "unexpected password check")
