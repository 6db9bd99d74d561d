"""PLAIN (RFC 4616): user name and password in one message."""

from __future__ import annotations

from typing import Final

import scramp
from scramp.utils import saslprep

from xmlchat.protocol.sasl.base import (
    Challenge,
    PasswordCheckNeeded,
    SaslCondition,
    SaslFailure,
    ServerMechanism,
    Step,
    Success,
)

# RFC 4616 §2: authzid, authcid and passwd are each at most 255 octets.
_PLAIN_MAX_FIELD: Final = 255


class Plain(ServerMechanism):
    """RFC 4616: ``[authzid] NUL authcid NUL passwd`` in one message."""

    name = "PLAIN"

    def __init__(self) -> None:
        self._state = "start"

    def start(self, initial_response: bytes | None) -> Step:
        if self._state != "start":
            raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "exchange already started")
        if initial_response is None:
            # RFC 4422 §3.3: no initial response, so send an empty challenge.
            self._state = "challenged"
            return Challenge(b"")
        return self._parse(initial_response)

    def respond(self, response: bytes) -> Step:
        if self._state != "challenged":
            raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "no challenge outstanding")
        return self._parse(response)

    def _parse(self, message: bytes) -> Step:
        self._state = "checking"
        parts = message.split(b"\0")
        if len(parts) != 3:
            raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "expected authzid NUL authcid NUL passwd")
        try:
            authzid, authcid, password = (p.decode("utf-8") for p in parts)
        except UnicodeDecodeError:
            raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "not UTF-8") from None
        if not authcid or not password or any(len(p) > _PLAIN_MAX_FIELD for p in parts):
            raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "empty or overlong field")
        try:
            authcid = saslprep(authcid)
        except scramp.ScramException:
            raise SaslFailure(SaslCondition.NOT_AUTHORIZED, "invalid user name") from None
        return PasswordCheckNeeded(authcid, authzid or None, password)

    def password_checked(self, ok: bool) -> Step:
        if self._state != "checking":
            return super().password_checked(ok)
        self._state = "done"
        if not ok:
            raise SaslFailure(SaslCondition.NOT_AUTHORIZED)
        return Success()
