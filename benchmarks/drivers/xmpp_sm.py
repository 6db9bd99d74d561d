"""The XMPP driver with XEP-0198 stream management: ``NAME:xmpp-sm``.

After the plain driver's login (bind, initial presence) the session sends
``<enable/>`` (§3, no resumption) and waits for ``<enabled/>``. Then:

* every message it sends is followed, in the same write, by an ``<r/>``
  (§4): the sender asks for an acknowledgement of **each** message, as the
  native protocol acknowledges each message with an ``<ack>``. This is the
  dearest policy for the server (one ``<a/>`` written per message), so the
  figures are an upper bound on what acknowledgements cost; a client that
  asks every N messages pays less;
* every ``<r/>`` from the server is answered at once with ``<a h/>``, h being
  the stanzas (``message``, ``presence``, ``iq``) received since
  ``<enabled/>``, modulo 2^32 (§4). Receivers acknowledge what they got, so
  a server that keeps messages until acknowledged (Prosody's ``mod_smacks``
  queue, xmlchat's durable store) can let go of them.

``<a/>`` from the server is counted (``acks``) and otherwise ignored: the
benchmark's latency is still the message's arrival at its recipient.
"""

from __future__ import annotations

import asyncio

from benchmarks.accounts import Account
from benchmarks.drivers import Driver, Endpoint, LoginError, Session
from benchmarks.drivers.xmpp import TAG_IQ, TAG_MESSAGE, TAG_PRESENCE, Element, XmppProtocol

NS_SM = "urn:xmpp:sm:3"
TAG_SM_FEATURE = f"{{{NS_SM}}}sm"
TAG_ENABLED = f"{{{NS_SM}}}enabled"
TAG_FAILED = f"{{{NS_SM}}}failed"
TAG_R = f"{{{NS_SM}}}r"
TAG_A = f"{{{NS_SM}}}a"
_COUNTED = frozenset({TAG_MESSAGE, TAG_PRESENCE, TAG_IQ})
_MODULUS = 2**32
_R = f"<r xmlns='{NS_SM}'/>"


class XmppSmProtocol(XmppProtocol):
    def __init__(self) -> None:
        super().__init__()
        self._sm_on = False
        self._enabled: asyncio.Future[None] | None = None
        self.handled = 0  # our h: stanzas received since <enabled/>
        self.acks = 0  # <a/> received from the server

    def send_message(self, to: str, body: str) -> None:
        assert self.transport is not None
        self.transport.write(
            f"<message to='{to}' type='chat'><body>{body}</body></message>{_R}".encode()
        )

    def send_messages(self, items: list[tuple[str, str]]) -> None:
        assert self.transport is not None
        self.transport.write("".join(
            f"<message to='{to}' type='chat'><body>{body}</body></message>{_R}"
            for to, body in items).encode())

    def _stanza(self, el: Element) -> None:
        tag = el.tag
        if self._sm_on:
            if tag in _COUNTED:
                self.handled = (self.handled + 1) % _MODULUS
            elif tag == TAG_R:
                assert self.transport is not None
                self.transport.write(f"<a xmlns='{NS_SM}' h='{self.handled}'/>".encode())
                return
            elif tag == TAG_A:
                self.acks += 1
                return
        elif tag in (TAG_ENABLED, TAG_FAILED) and self._enabled is not None:
            if not self._enabled.done():
                if tag == TAG_ENABLED:
                    # §4: the client's count starts at zero on <enabled/>.
                    self._sm_on = True
                    self._enabled.set_result(None)
                else:
                    self._enabled.set_exception(LoginError("stream management refused"))
            return
        super()._stanza(el)

    async def enable(self, timeout: float) -> None:
        assert self.transport is not None
        self._enabled = asyncio.get_running_loop().create_future()
        self.transport.write(f"<enable xmlns='{NS_SM}'/>".encode())
        await asyncio.wait_for(self._enabled, timeout)


class XmppSmDriver(Driver):
    name = "xmpp-sm"

    async def login(
        self, endpoint: Endpoint, account: Account, resource: str, timeout: float
    ) -> Session:
        loop = asyncio.get_running_loop()
        _, proto = await asyncio.wait_for(
            loop.create_connection(XmppSmProtocol, endpoint.host, endpoint.port), timeout
        )
        try:
            await asyncio.wait_for(proto.login(endpoint.domain, account, resource), timeout)
            await proto.enable(timeout)
        except BaseException:
            if proto.transport is not None:
                proto.transport.abort()
            raise
        return proto

