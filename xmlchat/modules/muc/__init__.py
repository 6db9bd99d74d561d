"""XEP-0045 Multi-User Chat: rooms at ``conference.<host>`` for both protocols.

* :mod:`.names`: namespaces, status codes, the nickname profile;
* :mod:`.form`: a room's configuration and its XEP-0004 form;
* :mod:`.room`: a room's state and who may do what (roles, affiliations);
* :mod:`.history`: the messages sent to a new occupant;
* :mod:`.stanzas`: what a room sends;
* :mod:`.service`: the rooms, entering and leaving;
* :mod:`.talk`: groupchat, subject, private messages, invitations;
* :mod:`.admin`: moderation and configuration;
* :mod:`.disco`: the service's and rooms' disco;
* :mod:`.module`: :class:`Muc`, what the hub dispatches to.
"""

from xmlchat.modules.muc.module import Muc
from xmlchat.modules.muc.service import MucStore

__all__ = ["Muc", "MucStore"]
