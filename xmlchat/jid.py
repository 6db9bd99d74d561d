"""JIDs (RFC 7622): ``local@domain/resource``.

Native-protocol users are addressed by the same JIDs, so ``alice`` on the
native protocol is ``alice@<domain>`` to XMPP users.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

# RFC 7622 §3.3.1 / §3.4.1: localpart excludes these characters.
_LOCAL_FORBIDDEN = frozenset("\"&'/:<>@ \t\r\n")
_MAX_PART = 1023  # RFC 7622 §3.2/3.3/3.4: each part is 1..1023 octets


class InvalidJID(ValueError):
    """The string is not a valid JID."""


def _prep_local(local: str) -> str:
    # A pragmatic subset of PRECIS UsernameCaseMapped (RFC 8265 §3.3): NFC + case fold.
    out = unicodedata.normalize("NFC", local).lower()
    if not out or len(out.encode()) > _MAX_PART or any(c in _LOCAL_FORBIDDEN for c in out):
        raise InvalidJID(f"invalid localpart {local!r}")
    if any(unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn") for c in out):
        raise InvalidJID(f"invalid localpart {local!r}")
    return out


def _prep_domain(domain: str) -> str:
    out = unicodedata.normalize("NFC", domain).lower().rstrip(".")
    if not out or len(out.encode()) > _MAX_PART or any(c in _LOCAL_FORBIDDEN for c in out):
        raise InvalidJID(f"invalid domainpart {domain!r}")
    return out


def _prep_resource(resource: str) -> str:
    out = unicodedata.normalize("NFC", resource)
    if not out or len(out.encode()) > _MAX_PART:
        raise InvalidJID(f"invalid resourcepart {resource!r}")
    if any(unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn") for c in out):
        raise InvalidJID(f"invalid resourcepart {resource!r}")
    return out


@dataclass(frozen=True, slots=True)
class JID:
    local: str | None
    domain: str
    resource: str | None = None
    # The bare JID, made once: routing asks for it several times per stanza,
    # and parsed JIDs are shared (see _parse), so it is made once per address.
    _bare: JID = field(init=False, repr=False, compare=False)
    # The hash and the text, made once too: JIDs key the routing tables and are
    # written into every stanza, and the dataclass's own hash built a tuple per call.
    _hash: int = field(init=False, repr=False, compare=False)
    _text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        bare = self if self.resource is None else JID(self.local, self.domain)
        object.__setattr__(self, "_bare", bare)
        object.__setattr__(self, "_hash", hash((self.local, self.domain, self.resource)))
        text = f"{self.local}@{self.domain}" if self.local is not None else self.domain
        object.__setattr__(self, "_text", f"{text}/{self.resource}" if self.resource is not None else text)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True  # parsed JIDs are shared: the usual case
        if type(other) is not JID:
            return NotImplemented
        return (
            self._hash == other._hash
            and self.local == other.local
            and self.domain == other.domain
            and self.resource == other.resource
        )

    @classmethod
    def parse(cls, text: str) -> JID:
        """Parse and normalise ``text``; raises :class:`InvalidJID`."""
        return _parse(text)

    @classmethod
    def _parse_uncached(cls, text: str) -> JID:
        rest, slash, resource = text.partition("/")
        local, at, domain = rest.rpartition("@")
        if slash and not resource:
            raise InvalidJID(f"empty resource in {text!r}")
        return cls(
            _prep_local(local) if at else None,
            _prep_domain(domain),
            _prep_resource(resource) if slash else None,
        )

    @classmethod
    def user(cls, name: str, default_domain: str) -> JID:
        """Parse a user address, accepting a bare name (``alice``) on ``default_domain``."""
        jid = cls.parse(name if "@" in name else f"{name}@{default_domain}")
        if jid.local is None:
            raise InvalidJID(f"{name!r} is not a user address")
        return jid

    @classmethod
    def parse_or_none(cls, text: str | None) -> JID | None:
        """An address attribute as filters read it: absent or malformed is None
        (the stanza's own checks answer malformed addresses)."""
        if not text:
            return None
        try:
            return _parse(text)
        except InvalidJID:
            return None

    @property
    def bare(self) -> JID:
        return self._bare

    @property
    def is_bare(self) -> bool:
        return self.resource is None

    def with_resource(self, resource: str) -> JID:
        return JID(self.local, self.domain, _prep_resource(resource))

    def __str__(self) -> str:
        return self._text


# Every stanza carries JIDs, and the same few recur: normalising each once pays
# (JIDs are immutable, so sharing the parsed value is safe).
@lru_cache(maxsize=16384)
def _parse(text: str) -> JID:
    return JID._parse_uncached(text)


@lru_cache(maxsize=16384)
def bare_str(text: str) -> str:
    """``"alice@localhost/phone"`` -> ``"alice@localhost"``, normalised; raises InvalidJID."""
    return str(_parse(text).bare)
