"""XEP-0163 PEP: the service (:mod:`.service`), the wire (:mod:`.wire`) and the
contacts' ``+notify`` interests from XEP-0115 caps (:mod:`.interest`)."""

from xmlchat.modules.pep.service import Pep

__all__ = ["Pep"]
