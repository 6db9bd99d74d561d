"""SCRAM-SHA-1/-256 and their -PLUS variants (RFC 5802, RFC 7677) over scramp's server.

See the package docstring for how the exchange is split around the storage
lookup, channel binding, and the simulated exchange for unknown users.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import scramp
from scramp.utils import saslprep

from xmlchat.protocol.sasl.base import (
    DEFAULT_FAKE_ITERATIONS,
    MIN_ITERATIONS,
    PLUS_MECHANISMS,
    SCRAM_MECHANISMS,
    SUPPORTED_CHANNEL_BINDINGS,
    Challenge,
    CredentialsNeeded,
    SaslCondition,
    SaslFailure,
    ScramCredentialsLike,
    ServerMechanism,
    Step,
    Success,
)

# scramp's upper bound for iteration counts, and its shortest salt.
_MAX_ITERATIONS: Final = 10_000_000
_MIN_SALT_BYTES: Final = 12
# The salt scramp's make_auth_info gives a new account.
_SALT_BYTES: Final = 32


@dataclass(frozen=True, slots=True)
class _ClientFirst:
    message: str  # the whole client-first-message, for scramp
    cb_flag: str  # "n", "y" or "p"
    cb_name: str | None
    authzid: str | None
    username: str  # unescaped and SASLprepped


def _parse_client_first(data: bytes) -> _ClientFirst:
    """Enough of RFC 5802 §7 to learn the user name; scramp checks the rest later."""
    try:
        message = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "not UTF-8") from None
    parts = message.split(",", 2)
    if len(parts) != 3:
        raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "no gs2 header")
    flag, authz, bare = parts
    cb_name: str | None = None
    if flag.startswith("p="):
        flag, cb_name = "p", flag[2:]
    elif flag not in ("n", "y"):
        raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "bad gs2 channel-binding flag")
    authzid: str | None = None
    if authz:
        if not authz.startswith("a="):
            raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "bad gs2 authzid")
        authzid = _scram_unescape(authz[2:])
    if not bare.startswith("n="):
        # An "m=" extension comes first when present; we support none (RFC 5802 §5.1).
        raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "client-first-message must start with n=")
    raw_name = bare[2:].split(",", 1)[0]
    try:
        username = saslprep(_scram_unescape(raw_name))
    except scramp.ScramException:
        raise SaslFailure(SaslCondition.NOT_AUTHORIZED, "invalid user name") from None
    if not username or ",r=" not in bare:
        raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "missing user name or nonce")
    return _ClientFirst(message, flag, cb_name, authzid, username)


def _scram_unescape(value: str) -> str:
    # RFC 5802 §5.1: ',' and '=' are sent as '=2C' and '=3D'; any other '=' is an error.
    pieces = value.split("=")
    for piece in pieces[1:]:
        if piece[:2] not in ("2C", "3D"):
            raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "bad '=' escape in saslname")
    return value.replace("=2C", ",").replace("=3D", "=")


# scramp ServerError values that mean "wrong secret or binding", as opposed to
# "the message was malformed".
_NOT_AUTHORIZED_ERRORS: Final = frozenset(
    {
        "invalid-proof",
        "channel-bindings-dont-match",
        "unknown-user",
        "server-does-support-channel-binding",
        "channel-binding-not-supported",
        "unsupported-channel-binding-type",
    }
)


def _scram_failure(e: scramp.ScramException) -> SaslFailure:
    code = e.server_error.value if e.server_error is not None else ""
    if code in _NOT_AUTHORIZED_ERRORS:
        return SaslFailure(SaslCondition.NOT_AUTHORIZED)
    return SaslFailure(SaslCondition.MALFORMED_REQUEST, str(e.args[0]) if e.args else "")


class Scram(ServerMechanism):
    """SCRAM-SHA-1/-256 and -PLUS (RFC 5802, RFC 7677) over scramp's server.

    ``channel_binding`` maps a channel-binding type to its data for this TLS
    connection (RFC 5929 / RFC 9266 values, e.g. the certificate hash for
    ``tls-server-end-point``). ``plus_offered`` says whether we advertised any
    ``-PLUS`` mechanism: then a client that sends gs2 flag 'y' ("I could bind,
    but you don't offer it") reveals a downgrade and is refused (RFC 5802 §6).
    """

    def __init__(
        self,
        name: str,
        *,
        channel_binding: Mapping[str, bytes] | None = None,
        plus_offered: bool = False,
        nonce: str | None = None,
        fake_secret: bytes = b"",
        fake_iterations: int = DEFAULT_FAKE_ITERATIONS,
    ) -> None:
        if name not in SCRAM_MECHANISMS + PLUS_MECHANISMS:
            raise ValueError(f"not a SCRAM mechanism we implement: {name}")
        self.name = name
        self.plus = name.endswith("-PLUS")
        self.credential_mechanism = name.removesuffix("-PLUS")
        self._bindings = {k: v for k, v in (channel_binding or {}).items() if k in SUPPORTED_CHANNEL_BINDINGS}
        self._plus_offered = plus_offered
        self._nonce = nonce
        self._fake_secret = fake_secret or secrets.token_bytes(32)
        self._fake_iterations = max(fake_iterations, MIN_ITERATIONS)
        self._client_first: _ClientFirst | None = None
        self._server: scramp.core.ScramServer | None = None
        self._state = "start"

    def start(self, initial_response: bytes | None) -> Step:
        if self._state != "start":
            raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "exchange already started")
        if not initial_response:
            # SCRAM is client-first; without an initial response the client sends
            # its first message as the response to an empty challenge (RFC 6120 §6.4.2).
            self._state = "want-client-first"
            return Challenge(b"")
        return self._client_first_received(initial_response)

    def respond(self, response: bytes) -> Step:
        if self._state == "want-client-first":
            return self._client_first_received(response)
        if self._state == "want-client-final":
            return self._client_final_received(response)
        raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "no challenge outstanding")

    def _client_first_received(self, data: bytes) -> Step:
        first = _parse_client_first(data)
        if first.authzid is not None:
            raise SaslFailure(SaslCondition.INVALID_AUTHZID, "authzid not supported with SCRAM")
        if self.plus and first.cb_flag != "p":
            raise SaslFailure(SaslCondition.MALFORMED_REQUEST, f"{self.name} requires channel binding")
        if not self.plus and first.cb_flag == "p":
            raise SaslFailure(SaslCondition.MALFORMED_REQUEST, f"{self.name} has no channel binding")
        if first.cb_flag == "p" and first.cb_name not in self._bindings:
            raise SaslFailure(SaslCondition.NOT_AUTHORIZED, "unsupported channel-binding type")
        if first.cb_flag == "y" and self._plus_offered:
            # "I support channel binding but think you don't": we offered -PLUS,
            # so someone removed it on the way — a downgrade (RFC 5802 §6).
            raise SaslFailure(SaslCondition.NOT_AUTHORIZED, "channel-binding downgrade detected")
        self._client_first = first
        self._state = "want-credentials"
        return CredentialsNeeded(first.username, None, self.credential_mechanism)

    def provide_credentials(self, credentials: ScramCredentialsLike | None) -> Step:
        first = self._client_first
        if self._state != "want-credentials" or first is None:
            return super().provide_credentials(credentials)
        if credentials is None or credentials.mechanism != self.credential_mechanism:
            # Unknown user, or no keys of this mechanism's hash: simulate (RFC 5802 §5.1).
            auth_info = self._fake_auth_info(first.username)
        else:
            auth_info = _checked_auth_info(credentials)
        binding: tuple[str, bytes] | None = None
        if first.cb_flag == "p" and first.cb_name is not None:
            binding = (first.cb_name, self._bindings[first.cb_name])
        try:
            server = scramp.ScramMechanism(self.name).make_server(
                lambda _username: auth_info, channel_binding=binding, s_nonce=self._nonce
            )
            server.set_client_first(first.message)
            server_first: str = server.get_server_first()
        except scramp.ScramException as e:
            raise _scram_failure(e) from None
        self._server = server
        self._state = "want-client-final"
        return Challenge(server_first.encode())

    def _client_final_received(self, data: bytes) -> Step:
        server = self._server
        assert server is not None
        self._state = "done"
        try:
            message = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "not UTF-8") from None
        try:
            server.set_client_final(message)
            server_final: str = server.get_server_final()
        except scramp.ScramException as e:
            raise _scram_failure(e) from None
        return Success(server_final.encode())

    def _fake_auth_info(self, username: str) -> tuple[bytes, bytes, bytes, int]:
        # A stable salt per (server secret, user name), so repeated attempts for
        # an unknown user look like a real account; random keys so no proof fits.
        # As long as a real account's (scramp makes 32 bytes): a shorter one
        # would tell an attacker the account does not exist.
        salt = hmac.new(self._fake_secret, b"salt:" + username.encode(), "sha256").digest()[:_SALT_BYTES]
        size = _DIGEST_SIZE[self.credential_mechanism]
        return salt, secrets.token_bytes(size), secrets.token_bytes(size), self._fake_iterations


_DIGEST_SIZE: Final = {"SCRAM-SHA-1": 20, "SCRAM-SHA-256": 32}


def _checked_auth_info(credentials: ScramCredentialsLike) -> tuple[bytes, bytes, bytes, int]:
    """The stored keys as scramp wants them, or temporary-auth-failure if unusable.

    scramp refuses salts under 12 bytes and iteration counts outside
    4096..10 000 000; such keys are a server-side problem, not the client's.
    """
    salt, iterations = credentials.salt, credentials.iterations
    if (
        not isinstance(salt, bytes)
        or len(salt) < _MIN_SALT_BYTES
        or not isinstance(iterations, int)
        or not MIN_ITERATIONS <= iterations <= _MAX_ITERATIONS
    ):
        raise SaslFailure(SaslCondition.TEMPORARY_AUTH_FAILURE, "unusable stored credentials")
    return salt, credentials.stored_key, credentials.server_key, iterations
