"""What nodes say to each other over NATS, and on which subjects.

* ``PREFIX.registry``, every node listens: JSON events about the sender's own
  sessions (``up`` with presence, ``gone``), about an account whose state
  the nodes cache changed on the sender (``changed``: ``topic``, e.g. its
  blocklist, and ``account``), and about itself (``beat``, ``hello`` when it
  starts or is back on NATS, ``bye`` when it stops; ``listing`` and
  ``listed``, numbered ``n``, around a publication of all its sessions).
  Each carries the node's
  name and its incarnation (random per start), so a restarted node's old
  sessions are told apart from its new ones.
* ``PREFIX.node.NAME``, only that node listens: a stanza for one of its
  sessions (``deliver``), a message to deliver and confirm (``relay``, a NATS
  request; header ``mid``: its id in the shared store, when it is stored), a
  session to close (``kick``), a request to republish its sessions
  (``sync``), a stanza to an address it owns (``forward``, a NATS request;
  headers ``from`` and ``xmpp`` name the sender; the answer is JSON: what
  was written to the sender, and the error). The operation and the addressing ride in NATS headers; the
  payload is the stanza as serialized XML.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from xmlchat.errors import ErrorType, StanzaCondition, StanzaError
from xmlchat.jid import JID
from xmlchat.routing.cluster import Forwarded, RemoteSession
from xmlchat.routing.session import Session
from xmlchat.stanza import to_bytes

# NATS subject tokens: no dots, spaces or wildcards.
NODE_NAME: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def registry_subject(prefix: str) -> str:
    return f"{prefix}.registry"


def node_subject(prefix: str, node: str) -> str:
    return f"{prefix}.node.{node}"


@dataclass(frozen=True, slots=True)
class NodeEvent:
    """One registry event, as received."""

    op: str  # up | gone | changed | beat | hello | bye | listing | listed
    node: str
    incarnation: str
    body: dict[str, Any]

    def remote_session(self) -> RemoteSession:
        presence = self.body.get("presence")
        return RemoteSession(
            node=self.node,
            jid=JID.parse(self.body["jid"]),
            full_xmpp=bool(self.body.get("xmpp")),
            priority=int(self.body.get("priority", 0)),
            presence=None if presence is None else presence.encode(),
            shared=frozenset(self.body.get("shared", ())),
        )


def event(op: str, node: str, incarnation: str, **body: Any) -> bytes:
    return json.dumps({"op": op, "node": node, "inc": incarnation, **body}).encode()


def session_up(node: str, incarnation: str, session: Session) -> bytes:
    presence = session.available_presence
    return event(
        "up", node, incarnation,
        jid=str(session.jid),
        xmpp=session.capabilities.full_xmpp,
        priority=session.priority,
        presence=None if presence is None else to_bytes(presence).decode(),
        shared=sorted(session.shared),
    )


def session_gone(node: str, incarnation: str, session: Session) -> bytes:
    return event("gone", node, incarnation, jid=str(session.jid))


def parse_event(data: bytes) -> NodeEvent:
    raw = json.loads(data)
    return NodeEvent(raw.pop("op"), raw.pop("node"), raw.pop("inc"), raw)


def stanza_headers(op: str, to: list[JID], stamp: datetime, delayed: bool = False) -> dict[str, str]:
    # JSON: a resourcepart may hold spaces (RFC 7622 §3.4).
    headers = {"op": op, "to": json.dumps([str(jid) for jid in to]), "stamp": stamp.isoformat()}
    if delayed:
        headers["delayed"] = "1"
    return headers


def addressed(headers: dict[str, str]) -> tuple[list[JID], datetime, bool]:
    to = [JID.parse(jid) for jid in json.loads(headers.get("to", "[]"))]
    return to, datetime.fromisoformat(headers["stamp"]), headers.get("delayed") == "1"


def forwarded(answer: Forwarded) -> bytes:
    error = answer.error
    return json.dumps({
        "written": [[data.decode(), stamp.isoformat(), delayed] for data, stamp, delayed in answer.written],
        "error": None if error is None else [str(error.condition), str(error.type), error.text],
    }).encode()


def parse_forwarded(data: bytes) -> Forwarded:
    raw = json.loads(data)
    written = [
        (xml.encode(), datetime.fromisoformat(stamp), bool(delayed)) for xml, stamp, delayed in raw["written"]
    ]
    error = raw.get("error")
    return Forwarded(
        written,
        None if error is None else StanzaError(StanzaCondition(error[0]), error[2], ErrorType(error[1])),
    )
