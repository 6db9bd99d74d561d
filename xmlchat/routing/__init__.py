"""The protocol-neutral middle of the server: sessions, the router, one
delivery path with its hook chains, and the API feature modules are written
against (:mod:`xmlchat.routing.api`).

Nothing here knows a socket or a wire format: the native and XMPP front ends
(:mod:`xmlchat.server`) translate at their edge into XMPP-form stanzas
(``jabber:client``) and :class:`~xmlchat.routing.session.Session` objects.
"""
