"""xmlchat: a chat server speaking XML streams over TCP — standard XMPP and a
small native protocol — with one user base."""

__version__ = "0.1.0"
