"""Server-side SASL mechanisms as small sans-IO state machines (RFC 4422, RFC 6120 §6).

No I/O and no storage: a mechanism asks for what it needs by returning a step,
and the caller answers through a method. The XML framing (``<auth/>``,
``<challenge/>``, base64) is the stream's business (:mod:`xmlchat.protocol.xmpp`);
here data is raw bytes.

Steps returned by :meth:`ServerMechanism.start`, :meth:`~ServerMechanism.respond`,
:meth:`~ServerMechanism.provide_credentials` and :meth:`~ServerMechanism.password_checked`:

* :class:`Challenge` — send these bytes to the client, wait for its response;
* :class:`CredentialsNeeded` — SCRAM: look up the stored keys for ``authcid``,
  then call ``provide_credentials(creds_or_None)``;
* :class:`PasswordCheckNeeded` — PLAIN: verify the password, then call
  ``password_checked(ok)``;
* :class:`Success` — authenticated; ``data`` is the additional data for
  ``<success/>`` (SCRAM's server-final message) or None.

Every failure is raised as :class:`SaslFailure` with an RFC 6120 §6.5 condition;
after one, the mechanism object is spent.

Mechanisms:

* ``PLAIN`` (RFC 4616). The password is handed over as sent (UTF-8 decoded, not
  SASLprepped): whoever checks it derives SCRAM keys from it, and scramp's
  ``make_auth_info`` applies SASLprep (RFC 4013) itself.
* ``SCRAM-SHA-1``, ``SCRAM-SHA-256`` (RFC 5802, RFC 7677) and their ``-PLUS``
  variants, via scramp's server. scramp wants the stored keys from a synchronous
  callback inside ``set_client_first``; we parse the client-first message
  ourselves to learn the user name, ask for the keys, and only then run scramp
  with a callback that returns what the caller provided.

  Channel binding (RFC 5056): scramp 1.5 implements ``tls-unique`` and
  ``tls-server-end-point`` only; it refuses ``tls-exporter`` (RFC 9266), the only
  type defined for TLS 1.3. So ``-PLUS`` is offered only when the transport
  supplies data for one of the first two.

  Unknown users get a simulated exchange (RFC 5802 §5.1 "Upon receipt of
  [an unknown username]…"): a challenge with a salt derived from the user name
  and a per-server secret, then ``not-authorized`` after the proof. A client
  cannot tell an unknown account from a wrong password.

  scramp refuses a non-empty gs2 authzid (``a=``), so SCRAM with an authzid
  fails with ``invalid-authzid``; PLAIN accepts one that names the user itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from xmlchat.protocol.sasl.base import (
    ALL_MECHANISMS,
    DEFAULT_FAKE_ITERATIONS,
    MIN_ITERATIONS,
    PLUS_MECHANISMS,
    SCRAM_MECHANISMS,
    SUPPORTED_CHANNEL_BINDINGS,
    Challenge,
    CredentialsNeeded,
    PasswordCheckNeeded,
    SaslCondition,
    SaslFailure,
    ScramCredentialsLike,
    ServerMechanism,
    Step,
    Success,
)
from xmlchat.protocol.sasl.plain import Plain
from xmlchat.protocol.sasl.scram import Scram

__all__ = [
    "ALL_MECHANISMS",
    "DEFAULT_FAKE_ITERATIONS",
    "MIN_ITERATIONS",
    "PLUS_MECHANISMS",
    "SCRAM_MECHANISMS",
    "SUPPORTED_CHANNEL_BINDINGS",
    "Challenge",
    "CredentialsNeeded",
    "PasswordCheckNeeded",
    "Plain",
    "SaslCondition",
    "SaslFailure",
    "Scram",
    "ScramCredentialsLike",
    "ServerMechanism",
    "Step",
    "Success",
    "channel_binding_types",
    "make_mechanism",
    "offered_mechanisms",
]


def offered_mechanisms(
    enabled: Sequence[str],
    *,
    encrypted: bool,
    allow_unencrypted_plain: bool,
    channel_binding: Mapping[str, bytes] | None,
) -> list[str]:
    """The mechanisms to advertise, in ``enabled`` order.

    PLAIN only over TLS unless explicitly allowed (RFC 6120 §13.8, §6.4.1);
    ``-PLUS`` only with channel-binding data scramp can check.
    """
    can_bind = any(k in SUPPORTED_CHANNEL_BINDINGS for k in (channel_binding or {}))
    out = []
    for name in enabled:
        if name not in ALL_MECHANISMS:
            raise ValueError(f"unknown SASL mechanism {name!r}")
        if name in PLUS_MECHANISMS and not (encrypted and can_bind):
            continue
        if name == "PLAIN" and not (encrypted or allow_unencrypted_plain):
            continue
        out.append(name)
    return out


def channel_binding_types(channel_binding: Mapping[str, bytes] | None) -> list[str]:
    """Types to advertise with XEP-0440 ``<sasl-channel-binding/>``."""
    return [k for k in SUPPORTED_CHANNEL_BINDINGS if k in (channel_binding or {})]


def make_mechanism(
    name: str,
    *,
    channel_binding: Mapping[str, bytes] | None = None,
    plus_offered: bool = False,
    nonce_factory: Callable[[], str] | None = None,
    fake_secret: bytes = b"",
    fake_iterations: int = DEFAULT_FAKE_ITERATIONS,
) -> ServerMechanism:
    """A fresh server mechanism called ``name`` (one of :data:`ALL_MECHANISMS`)."""
    if name == "PLAIN":
        return Plain()
    return Scram(
        name,
        channel_binding=channel_binding,
        plus_offered=plus_offered,
        nonce=nonce_factory() if nonce_factory is not None else None,
        fake_secret=fake_secret,
        fake_iterations=fake_iterations,
    )
