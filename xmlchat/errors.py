"""Errors as types, mapped to the wire in one place.

Two families, as in RFC 6120:

* :class:`StreamError` is fatal (§4.9): the peer gets ``<stream:error/>`` (XMPP) or
  a closing ``<error/>`` (native), then the stream is closed.
* :class:`StanzaError` answers one stanza (§8.3) and the stream lives on.

The native protocol reuses the same condition names, so one exception serves both
protocols; ``docs/native-protocol.md`` lists which conditions close the connection.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class StreamCondition(StrEnum):
    """RFC 6120 §4.9.3 stream error conditions."""

    BAD_FORMAT = "bad-format"
    BAD_NAMESPACE_PREFIX = "bad-namespace-prefix"
    CONFLICT = "conflict"
    CONNECTION_TIMEOUT = "connection-timeout"
    HOST_GONE = "host-gone"
    HOST_UNKNOWN = "host-unknown"
    IMPROPER_ADDRESSING = "improper-addressing"
    INTERNAL_SERVER_ERROR = "internal-server-error"
    INVALID_FROM = "invalid-from"
    INVALID_NAMESPACE = "invalid-namespace"
    INVALID_XML = "invalid-xml"
    NOT_AUTHORIZED = "not-authorized"
    NOT_WELL_FORMED = "not-well-formed"
    POLICY_VIOLATION = "policy-violation"
    REMOTE_CONNECTION_FAILED = "remote-connection-failed"
    RESET = "reset"
    RESOURCE_CONSTRAINT = "resource-constraint"
    RESTRICTED_XML = "restricted-xml"
    SEE_OTHER_HOST = "see-other-host"
    SYSTEM_SHUTDOWN = "system-shutdown"
    UNDEFINED_CONDITION = "undefined-condition"
    UNSUPPORTED_ENCODING = "unsupported-encoding"
    UNSUPPORTED_FEATURE = "unsupported-feature"
    UNSUPPORTED_STANZA_TYPE = "unsupported-stanza-type"
    UNSUPPORTED_VERSION = "unsupported-version"


class ErrorType(StrEnum):
    """RFC 6120 §8.3.2 stanza error types."""

    AUTH = "auth"
    CANCEL = "cancel"
    CONTINUE = "continue"
    MODIFY = "modify"
    WAIT = "wait"


class StanzaCondition(StrEnum):
    """RFC 6120 §8.3.3 stanza error conditions."""

    BAD_REQUEST = "bad-request"
    CONFLICT = "conflict"
    FEATURE_NOT_IMPLEMENTED = "feature-not-implemented"
    FORBIDDEN = "forbidden"
    GONE = "gone"
    INTERNAL_SERVER_ERROR = "internal-server-error"
    ITEM_NOT_FOUND = "item-not-found"
    JID_MALFORMED = "jid-malformed"
    NOT_ACCEPTABLE = "not-acceptable"
    NOT_ALLOWED = "not-allowed"
    NOT_AUTHORIZED = "not-authorized"
    POLICY_VIOLATION = "policy-violation"
    RECIPIENT_UNAVAILABLE = "recipient-unavailable"
    REDIRECT = "redirect"
    REGISTRATION_REQUIRED = "registration-required"
    REMOTE_SERVER_NOT_FOUND = "remote-server-not-found"
    REMOTE_SERVER_TIMEOUT = "remote-server-timeout"
    RESOURCE_CONSTRAINT = "resource-constraint"
    SERVICE_UNAVAILABLE = "service-unavailable"
    SUBSCRIPTION_REQUIRED = "subscription-required"
    UNDEFINED_CONDITION = "undefined-condition"
    UNEXPECTED_REQUEST = "unexpected-request"


# RFC 6120 §8.3.3: the type each condition is usually returned with.
DEFAULT_ERROR_TYPE: dict[StanzaCondition, ErrorType] = {
    StanzaCondition.BAD_REQUEST: ErrorType.MODIFY,
    StanzaCondition.CONFLICT: ErrorType.CANCEL,
    StanzaCondition.FEATURE_NOT_IMPLEMENTED: ErrorType.CANCEL,
    StanzaCondition.FORBIDDEN: ErrorType.AUTH,
    StanzaCondition.GONE: ErrorType.CANCEL,
    StanzaCondition.INTERNAL_SERVER_ERROR: ErrorType.CANCEL,
    StanzaCondition.ITEM_NOT_FOUND: ErrorType.CANCEL,
    StanzaCondition.JID_MALFORMED: ErrorType.MODIFY,
    StanzaCondition.NOT_ACCEPTABLE: ErrorType.MODIFY,
    StanzaCondition.NOT_ALLOWED: ErrorType.CANCEL,
    StanzaCondition.NOT_AUTHORIZED: ErrorType.AUTH,
    StanzaCondition.POLICY_VIOLATION: ErrorType.MODIFY,
    StanzaCondition.RECIPIENT_UNAVAILABLE: ErrorType.WAIT,
    StanzaCondition.REDIRECT: ErrorType.MODIFY,
    StanzaCondition.REGISTRATION_REQUIRED: ErrorType.AUTH,
    StanzaCondition.REMOTE_SERVER_NOT_FOUND: ErrorType.CANCEL,
    StanzaCondition.REMOTE_SERVER_TIMEOUT: ErrorType.WAIT,
    StanzaCondition.RESOURCE_CONSTRAINT: ErrorType.WAIT,
    StanzaCondition.SERVICE_UNAVAILABLE: ErrorType.CANCEL,
    StanzaCondition.SUBSCRIPTION_REQUIRED: ErrorType.AUTH,
    StanzaCondition.UNDEFINED_CONDITION: ErrorType.CANCEL,
    StanzaCondition.UNEXPECTED_REQUEST: ErrorType.WAIT,
}


class XmlChatError(Exception):
    """Base of every protocol error the server maps to the wire."""


class StreamError(XmlChatError):
    """A fatal error: report it, close the stream (RFC 6120 §4.9.1.1)."""

    def __init__(
        self,
        condition: StreamCondition,
        text: str = "",
        app_condition: str | None = None,
        app_attributes: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{condition}: {text}" if text else str(condition))
        self.condition = condition
        self.text = text
        # RFC 6120 §4.9.4 application-specific condition, e.g. ``stanza-too-big``
        # in the urn:xmpp:errors namespace (as Prosody sends), and its attributes
        # (XEP-0198 §4 ``<handled-count-too-high h='…' send-count='…'/>``).
        self.app_condition = app_condition
        self.app_attributes = dict(app_attributes or {})
        # Set by the stanza stream: what the failing read completed before the
        # offending bytes, so a good stanza before garbage is still handled.
        self.events: list[Any] = []


class StanzaError(XmlChatError):
    """An error answering one stanza; the stream lives on (RFC 6120 §8.3)."""

    def __init__(
        self,
        condition: StanzaCondition,
        text: str = "",
        type_: ErrorType | None = None,
        application: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(f"{condition}: {text}" if text else str(condition))
        self.condition = condition
        self.text = text
        self.type = type_ or DEFAULT_ERROR_TYPE[condition]
        # RFC 6120 §8.3.2: an application-specific condition, (namespace, name),
        # e.g. XEP-0191's ("urn:xmpp:blocking:errors", "blocked").
        self.application = application


# Errors the XML stream itself raises (see xmlchat.xml.stream). Each is a
# StreamError, because after malformed input the parser state is unusable.


class NotWellFormed(StreamError):
    def __init__(self, text: str = "") -> None:
        super().__init__(StreamCondition.NOT_WELL_FORMED, text)


class RestrictedXml(StreamError):
    """DTDs, entity declarations, comments, PIs (RFC 6120 §11.1)."""

    def __init__(self, text: str = "") -> None:
        super().__init__(StreamCondition.RESTRICTED_XML, text)


class UnsupportedEncoding(StreamError):
    """Anything but well-formed UTF-8 (RFC 6120 §11.6, §4.9.3.22)."""

    def __init__(self, text: str = "") -> None:
        super().__init__(StreamCondition.UNSUPPORTED_ENCODING, text)


class StanzaTooBig(StreamError):
    """A stanza exceeded the configured size (RFC 6120 §13.12, policy-violation)."""

    def __init__(self, text: str = "") -> None:
        super().__init__(StreamCondition.POLICY_VIOLATION, text, app_condition="stanza-too-big")


class TooDeep(StreamError):
    """Elements nested deeper than the configured maximum."""

    def __init__(self, text: str = "") -> None:
        super().__init__(StreamCondition.POLICY_VIOLATION, text)


class AdmissionRefused(StreamError):
    """A connection refused before anything is spent on it: too many not yet
    logged in (per IP or in all) or its IP locked out; ``reason`` labels the
    metric. ``policy-violation`` (§4.9.3.14) on a stream that can still say so."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(StreamCondition.POLICY_VIOLATION, text)
        self.reason = reason


class LoginRefused(XmlChatError):
    """A login attempt refused unchecked by the brute-force protection: the
    account is in back-off or locked out for this IP, or the IP is. XMPP
    answers SASL ``temporary-auth-failure`` (RFC 6120 §6.5.12), the native
    protocol ``<login-failed>`` with ``policy-violation``."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        self.text = f"too many failed logins; try again in {max(1, round(retry_after))} s"
        super().__init__(self.text)
